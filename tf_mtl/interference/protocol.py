"""``000``'s protocol as one run: capacity × task pairing × loss weighting × trial.

``run(config, workdir)`` (``python -m launch.interference``):

1. trains one single-domain model per (domain, width, trial) and one
   multi-domain (MDL) model per (width, pairing, weighting, trial) — a
   ``MultiTaskModel`` fed ``tf_mtl.data.multi_domain`` batches — and saves each
   to ``workdir/models/<name>.keras``, with the settings it was trained under
   (seed, model, optimizer, batch, schedule, its domains' specs, weighting) in
   ``<name>.json``. A model already saved there is loaded, not trained again: a
   run stopped half-way resumes where it stopped (a model is written under a
   temporary name and renamed once complete); a saved model whose settings
   differ from the config's raises ValueError naming the differing settings;
2. evaluates each MDL model on each of its domains' test sets against the
   single-domain model of the same domain, width and trial
   (``tf_mtl.metrics.interference_transfer``);
3. measures task similarity: linear CKA between the single-domain models'
   encoder features on the probe set (``000``: 50 test samples per class of
   every domain), per width and trial;
4. writes the tables, t-tests and figures (``tf_mtl.interference.report``).

Weightings: ``"uniform"`` (``EqualWeights``), ``"uw"`` (``UncertaintyWeights(form="log1p")``,
``000`` §3.2) and ``"cov"`` (``CoV``, weights summing to the number of tasks).
The encoder is ``ResNetCifar`` (ResNet-32 with GroupNorm and Mish, ``000`` S1)
at each width (or a width-scaled MLP, ``config.model.encoder="mlp"``, for quick
runs); SGD with momentum and the learning rate multiplied by ``decay`` at the given
epochs (``000`` S1). Weight decay is coupled, as PyTorch's SGD in ``000``: an L2
term ``wd/2 ||w||^2`` on every encoder and head weight (``coupled_weight_decay``)
adds ``wd * w`` to the gradient before momentum (Keras's ``SGD(weight_decay=)``
would shrink weights decoupled, ``w -= lr * wd * w``). Multi-domain batches split
``batch_size`` evenly between the domains (``tf_mtl.data.multi_domain``); ``000``
mixes the domains' samples at random, so its batches hold varying shares.

Seeds: a single-domain model's initialization and shuffling come from
``config.seed``, its domain, width and trial; a multi-domain model's from
``config.seed``, its pairing, width and trial only — the same for every
weighting, so the weightings start from the same weights and see the same
batches, and the paired t-tests compare weightings from one initialization.
"""

import itertools
import json
import os
import zlib

import keras
import numpy as np
import tensorflow as tf

from tf_mtl import data as data_lib
from tf_mtl.interference import metrics
from tf_mtl.experiments import results
from tf_mtl.experiments.checkpointing import atomic_write_json
from tf_mtl.encoders import MLP, ResNetCifar
from tf_mtl.model import MultiTaskModel
from tf_mtl.updates import CoV, EqualWeights, UncertaintyWeights

WEIGHTINGS = {"uniform": EqualWeights, "uw": lambda: UncertaintyWeights(form="log1p"),
              "cov": CoV}
DOMAIN_KINDS = ("cifar100", "image_folder", "synthetic")


def domain_data(name, spec):
    """``(train, test)`` unbatched ``(image, label)`` datasets of domain ``name``."""
    kind = spec.get("kind")
    if kind == "cifar100":
        kw = {"data_dir": spec.get("data_dir") or None}
        return data_lib.cifar100("train", **kw), data_lib.cifar100("test", **kw)
    if kind == "image_folder":
        missing = [f for f in ("train_root", "test_root") if not spec.get(f)]
        if missing:
            raise ValueError(f"Domain '{name}' reads image folders: set "
                             + ", ".join(f"--config.domains.{name}.{f}" for f in missing)
                             + f". Received: {dict(spec)}")
        common = {"num_classes": spec.get("num_classes"), "class_seed": spec.get("class_seed", 0),
                  "image_size": spec.get("image_size", 32)}
        train = data_lib.image_folder(spec["train_root"], labels_file=spec.get("train_labels")
                                      or None, per_class=spec.get("train_per_class") or None,
                                      **common)
        test = data_lib.image_folder(spec["test_root"], labels_file=spec.get("test_labels")
                                     or None, classes=train.class_names,
                                     **{k: v for k, v in common.items()
                                        if k not in ("num_classes", "class_seed")})
        return train, test
    if kind == "synthetic":
        kw = {k: spec[k] for k in ("num_classes", "image_size", "share", "shared_seed", "noise")
              if k in spec}
        return (data_lib.synthetic_domain(spec["seed"], "train", num_examples=spec["num_train"], **kw),
                data_lib.synthetic_domain(spec["seed"], "test", num_examples=spec["num_test"], **kw))
    raise ValueError(f"Unknown domain kind. Received: config.domains.{name}.kind={kind!r}; "
                     f"known: {DOMAIN_KINDS}")


def pairings_of(config, domains):
    """The task pairings (sorted tuples): ``config.pairings`` ("a|b,a|c") or all pairs."""
    text = config.get("pairings") or ""
    if not text:
        return list(itertools.combinations(domains, 2))
    out = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        names = tuple(sorted(part.split("|")))
        unknown = sorted(set(names) - set(domains))
        if len(names) < 2 or unknown or len(set(names)) != len(names):
            raise ValueError(f"Each pairing joins 2 or more distinct domains with '|' "
                             f"(domains: {domains}). Received: config.pairings={text!r}")
        out.append(names)
    return out


def _seed(config, name):
    return (int(config.seed) * 7919 + zlib.crc32(name.encode())) % (2 ** 31)


def _optimizer(config, steps_per_epoch, boundaries):
    o = config.optimizer
    values = [o.learning_rate * o.decay ** i for i in range(len(boundaries) + 1)]
    lr = (keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(b * steps_per_epoch) for b in boundaries], values) if boundaries
        else o.learning_rate)
    return keras.optimizers.SGD(lr, momentum=o.momentum)


def coupled_weight_decay(model, x, weight_decay):
    """Sets an L2 regularizer ``weight_decay / 2 * ||w||^2`` on every encoder and head
    weight of ``model`` (built for inputs like ``x``): the train step adds its gradient
    ``weight_decay * w`` to the loss gradient before the optimizer, as PyTorch's
    ``SGD(weight_decay=)`` does (``000``). The update rule's own variables are not decayed.

    Example:
        >>> coupled_weight_decay(model, x_batch, 1e-4)
    """
    if not weight_decay:
        return
    if weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay!r}")
    model.build_for(x)
    for v in model.shared_variables + model.task_specific_variables:
        v.regularizer = keras.regularizers.L2(weight_decay / 2.0)


def encoder_of(model_config, width):
    """``ResNetCifar`` at ``width`` (``encoder="resnet_cifar"``), or a flattening MLP whose
    ``units`` are scaled by ``width`` (``encoder="mlp"``, for quick runs)."""
    m = model_config
    if m.encoder == "resnet_cifar":
        return ResNetCifar(depth=m.depth, width=width, norm=m.norm, activation=m.activation)
    if m.encoder == "mlp":
        return keras.Sequential([keras.layers.Flatten(),
                                 MLP([max(1, int(round(u * width))) for u in m.units])])
    raise ValueError("`config.model.encoder` must be 'resnet_cifar' or 'mlp'. "
                     f"Received: {m.encoder!r}")


def _build(config, width, tasks, num_classes, weighting="uniform"):
    return MultiTaskModel(
        encoder=encoder_of(config.model, width),
        heads={t: keras.layers.Dense(num_classes[t], name=f"head_{t}") for t in tasks},
        losses={t: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for t in tasks},
        update=WEIGHTINGS[weighting]())


def _fit(config, model, ds, schedule, seed):
    steps = config.steps_per_epoch or int(ds.cardinality())
    if steps < 1:
        raise ValueError("A training set is smaller than one batch. Received: "
                         f"{int(ds.cardinality())} batches")
    if config.steps_per_epoch:
        ds = ds.repeat()
    coupled_weight_decay(model, tf.nest.map_structure(
        lambda s: tf.zeros([1] + list(s.shape[1:]), s.dtype), ds.element_spec[0]),
        config.optimizer.weight_decay)
    model.compile(optimizer=_optimizer(config, steps, list(schedule.boundaries)),
                  jit_compile=bool(config.get("jit_compile", False)),
                  run_eagerly=bool(config.get("run_eagerly", False)))
    keras.utils.set_random_seed(seed)
    model.fit(ds, epochs=schedule.epochs, steps_per_epoch=config.steps_per_epoch or None,
              verbose=config.verbose)


def training_settings(config, kind, domains, weighting=None):
    """What a saved model's training depended on: ``kind`` ``"single"`` or ``"mdl"``."""
    c = config
    out = {"seed": c.seed, "model": c.model.to_dict(), "optimizer": c.optimizer.to_dict(),
           "batch_size": c.batch_size, "shuffle_buffer": c.shuffle_buffer,
           "steps_per_epoch": c.steps_per_epoch,
           "schedule": (c.single if kind == "single" else c.multi).to_dict(),
           "domains": {d: c.domains[d].to_dict() for d in domains}, "weighting": weighting}
    return json.loads(json.dumps(out))   # JSON's types, as read back.


def _read_json(path):
    with open(path) as f:
        return json.load(f)


class _Models:
    """Saved models of ``workdir/models``: trained once, loaded after (same settings only)."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "models")
        os.makedirs(self.dir, exist_ok=True)
        self.trained, self.loaded = [], []

    def get(self, name, train, settings):
        path = os.path.join(self.dir, name + ".keras")
        meta = os.path.join(self.dir, name + ".json")
        if os.path.exists(path):
            stored = _read_json(meta) if os.path.exists(meta) else {}
            diff = results.config_differences(stored, settings, ignored=())
            if diff:
                shown = "; ".join(f"{k}: saved {a!r}, config {b!r}" for k, a, b in diff[:8])
                raise ValueError(
                    f"{path} was trained under other settings ({shown}"
                    f"{'; ...' if len(diff) > 8 else ''}): use another workdir, or delete the "
                    f"model to train it again. Received: differing settings "
                    f"{[k for k, _, _ in diff]}")
            self.loaded.append(name)
            return keras.models.load_model(path, compile=False)
        model = train()
        partial = os.path.join(self.dir, name + ".partial.keras")
        model.save(partial)
        atomic_write_json(meta, settings)   # Absent or complete.
        os.replace(partial, path)
        self.trained.append(name)
        return model


def _name(kind, tasks, width, trial, weighting=None):
    parts = [kind, "+".join(tasks)] + ([weighting] if weighting else []) + [f"w{width:g}",
                                                                          f"t{trial}"]
    return "_".join(parts)


def probe_set(tests, per_class, num_classes):
    """Images of up to ``per_class`` test samples of each class of every domain (in domain
    order, then test-set order), as one ``[N, ...]`` array."""
    images = []
    for domain, ds in tests.items():
        counts = np.zeros(num_classes[domain], int)
        for x, y in ds.as_numpy_iterator():
            if counts[y] < per_class:
                counts[y] += 1
                images.append(x)
            if counts.min() >= per_class:
                break
    return np.stack(images)


def run(config, workdir):
    """Runs the protocol (module doc); returns ``{"files": [...], "trained": [...],
    "loaded": [...], "records": [...], "similarity": [...]}``."""
    from tf_mtl.interference import report
    domains = sorted(config.domains)
    if len(domains) < 2:
        raise ValueError(f"The protocol needs at least 2 domains. Received: config.domains="
                         f"{domains}")
    unknown = sorted(set(config.weightings) - set(WEIGHTINGS))
    if unknown or not config.weightings:
        raise ValueError(f"`config.weightings` must list names of {sorted(WEIGHTINGS)}. "
                         f"Received: {list(config.weightings)}")
    pairings = pairings_of(config, domains)
    # Decoded once, kept in memory: every model of the run reads the same examples
    # (000's domains at 32x32: ~0.6 GB per 50,000 training images).
    raw = {d: domain_data(d, config.domains[d]) for d in domains}
    data = {d: tuple(ds.cache() for ds in raw[d]) for d in domains}
    num_classes = {d: int(config.domains[d].num_classes) for d in domains}
    tests = {d: data[d][1].batch(config.eval_batch_size) for d in domains}
    store = _Models(workdir)
    single_correct, params, features = {}, {}, {}
    probe = probe_set({d: raw[d][1] for d in domains}, config.probe_per_class, num_classes)
    for width in config.widths:
        for trial in range(config.trials):
            for d in domains:
                name = _name("single", (d,), width, trial)

                def train(d=d, width=width, name=name):
                    keras.utils.set_random_seed(_seed(config, name))   # Initialization.
                    model = _build(config, width, [d], num_classes)
                    ds = data[d][0].shuffle(config.shuffle_buffer, seed=_seed(config, name))
                    ds = ds.batch(config.batch_size, drop_remainder=True).map(
                        lambda x, y, d=d: (x, {d: y}))
                    _fit(config, model, ds, config.single, _seed(config, name))
                    return model
                model = store.get(name, train, training_settings(config, "single", [d]))
                single_correct[(d, width, trial)] = metrics.correct_predictions(model, tests[d], d)
                features[(d, width, trial)] = metrics.representations(model, probe)
                params[width] = int(sum(np.prod(v.shape) for v in model.encoder.trainable_variables))
    records = []
    for width, pairing, weighting, trial in itertools.product(
            config.widths, pairings, config.weightings, range(config.trials)):
        name = _name("mdl", pairing, width, trial, weighting)
        # Not the weighting: the weightings of one (pairing, width, trial) share it.
        seed = _seed(config, _name("mdl", pairing, width, trial))

        def train(pairing=pairing, width=width, weighting=weighting, seed=seed):
            keras.utils.set_random_seed(seed)   # Initialization.
            model = _build(config, width, list(pairing), num_classes, weighting)
            ds = data_lib.multi_domain({d: data[d][0] for d in pairing},
                                       config.batch_size // len(pairing),
                                       shuffle=config.shuffle_buffer, seed=seed)
            _fit(config, model, ds, config.multi, seed)
            return model
        model = store.get(name, train, training_settings(config, "mdl", pairing, weighting))
        for d in pairing:
            multi = metrics.correct_predictions(model, tests[d], d)
            single = single_correct[(d, width, trial)]
            r = metrics.interference_transfer(single, multi)
            records.append({"weighting": weighting, "width": width, "params": params[width],
                            "pairing": "|".join(pairing), "domain": d, "trial": trial,
                            "perf_gain": r["perf_gain"], "interference": r["interference"],
                            "transfer": r["transfer"],
                            "single_accuracy": 100.0 * float(single.mean()),
                            "multi_accuracy": 100.0 * float(multi.mean())})
    similarity = [{"width": width, "params": params[width], "pairing": f"{a}|{b}",
                   "trial": trial, "cka": metrics.linear_cka(features[(a, width, trial)],
                                                             features[(b, width, trial)])}
                  for width in config.widths for trial in range(config.trials)
                  for a, b in itertools.combinations(domains, 2)]
    files = report.write(workdir, records, similarity, list(config.weightings),
                                      figures=config.get("figures", True))
    return {"files": files, "trained": store.trained, "loaded": store.loaded,
            "records": records, "similarity": similarity}
