"""Builds and runs an experiment from an ``ml_collections`` config.

Launchers (``launch/train.py``) only parse flags and call ``train``; configs
(``configs/*.py``) only return a ``ConfigDict``. Everything between lives here.

Config fields:
    seed, epochs, steps_per_epoch (0 = whole dataset; also cuts validation and test to as
        many batches: a smoke run), verbose,
    epoch_split (absent = an epoch is one pass; {"over_batches": m, "parts": k}: a pass of
        more than m batches is cut into epochs of pass // k batches, ``002``'s epochs:
        ``components.epoch_batches``; steps_per_epoch, when set, wins)
    lr_schedule (absent or name "" = the optimizer's rate; {"name": "loss_plateau", ...}:
        ``002``'s halving on a t-test of the training loss, ``LossPlateauHalving``, its
        arguments the other fields, batch_size from data.batch_size; saved with each
        checkpoint: ``components.LR_SCHEDULES``)
    strategy ("default" | "mirrored" | "multiworker" | "tpu": ``distribute.get_strategy``;
              batch sizes are global; in multi-worker runs only the chief writes files)
    seeds (None = one run; n or 0,3,7: one run per seed, ``tf_mtl.experiments.runs``), tensorboard,
    early_stopping_patience (0 = off; else stop on early_stopping_monitor, default
        "val_loss", in early_stopping_mode "auto" | "min" | "max", restore the best weights;
        "val_all_attributes_fscore" (mode "max") is the F-score over every attribute of
        every task, ``003``'s selection: ``attribute_score_logger``)
    derive_seeds (True: the routing masks' seed, model.encoder_kwargs.routing.seed, the
        encoder's own model.encoder_kwargs.seed (ETR-NLP) and the rule's seed, rule.seed, are
        offset by ``seed``, so the runs of ``seeds`` draw other
        partitions and PCGrad orders; False pins them as written)
    table_spread ("se" | "std": the seeds tables show mean ± standard error or ± std)
    report (absent = "final" | "mean_last_<k>" | "best_per_task[_every_<k>]":
        ``tf_mtl.experiments.reporting``)
    metric_conventions (dense metrics: {kind: convention}, ``dense_setup.conventions``)
    data: name ("synthetic" | "celeba" | "multi_mnist" | "multi_mnist_pickle" |
          "movielens" | "nyuv2" | "cityscapes": ``dense_setup``), batch_size, and the
          loader's own arguments (celeba ``tasks`` may be "tag" or "mr_groups" for the presets).
          Empty fields ("" / None) are not passed (the loader's default
          applies); a non-empty field the loader does not take is an error
          (``DATASETS`` lists each loader's fields)
    model: encoder ("mlp" | "resnet_lite" | "resnet18" | "lenet" | "movielens" |
           "segnet" | "segnet_mtan"),
           encoder_kwargs, head_units and loss (used where the dataset does
           not fix them), loss_weights, per_task_gradients,
           task_steps ("summed" | "sequential": one optimizer step per task per batch,
           ``tf_mtl.per_task_steps``; a schedule's epochs then count T steps per batch)
    optimizer: name ("sgd" | "adam" | "adamw"), learning_rate, momentum,
               nesterov, weight_decay, halve_every_epochs (0 = constant),
               epsilon (Adam/AdamW only; None = Keras's default 1e-7)
    rule: the update rule (``tf_mtl.updates.build_update``): name ("equal" | "uw" |
            "cov" | "dwa" | "gradnorm" | "pcgrad" | "mgda" | "itmtl"), weighting,
            candidates ("left,right,all", "all,pcgrad"), lookahead and each rule's arguments
    transference: enabled, order, every, method, scale_by_lr, update_heads, plot,
                  log_pairs, chunk_size (None = default chunks)
    grouping: enabled, splits, objective — select groups from the measured
              affinities at the end (needs transference) and write groups.json
"""

import csv
import json
import os
import shutil

import keras
import ml_collections

from tf_mtl import distribute, grouping
from tf_mtl.experiments import checkpointing
from tf_mtl.dense import taskonomy_losses
from tf_mtl.experiments import dense_evaluation, dense_setup, dense_validation, reporting
from tf_mtl.experiments import evaluation
from tf_mtl import data as data_lib
from tf_mtl.experiments import results as results_lib
from tf_mtl.data import epochs as epoch_data
from tf_mtl.callbacks import AffinityLogger
from tf_mtl.model import MultiTaskModel
from tf_mtl.per_task_steps import optimizer_steps_per_batch
from tf_mtl.experiments.attribute_metrics import KINDS as ATTRIBUTE_KINDS
from tf_mtl.updates import build_update
from tf_mtl.updates.build import DEFAULTS as UPDATE_DEFAULTS
from tf_mtl.experiments.components import (CELEBA_PRESETS, DATASETS, ENCODERS, METRICS,
                                           MULTI_MNIST_SPEC, OPTIMIZERS, check_known,
                                           encoder_kwargs, epoch_batches, loader_kwargs,
                                           lr_schedule_callback, make_loss,
                                           routed_encoder_kwargs, transference_probe)
# A module import: config_checks -> tf_mtl.grouping -> comparison -> this module.
from tf_mtl.experiments import config_checks


def build_dataset(config, split, **overrides):
    """``(dataset, extras)`` for ``split``; extras holds e.g. the planted groups.
    With ``config.task_subset`` set, only those tasks' labels are kept. ``overrides``
    replace loader arguments (``shuffle=False``)."""
    ds, extras = _load(config, split, **overrides)
    subset = config.get("task_subset")
    return (restrict_tasks(ds, subset) if subset else ds), extras


def _load(config, split, **overrides):
    name, kwargs = loader_kwargs(config.data)
    kwargs.update(overrides)
    loader = DATASETS[name][0]
    if name in dense_setup.LOADERS:
        return dense_setup.load(name, split, kwargs)
    if name == "synthetic":
        ds, groups = loader(split, **kwargs)
        return ds, {"planted_groups": groups}
    if name == "celeba":
        tasks = kwargs.pop("tasks", "tag")
        tasks = CELEBA_PRESETS.get(tasks, tasks) if isinstance(tasks, str) else tasks
        spec = data_lib.celeba_task_spec(tasks)
        return loader(split, tasks=tasks, **kwargs), {"task_spec": spec}
    if name in ("multi_mnist", "multi_mnist_pickle"):
        if name == "multi_mnist_pickle" and "path" not in kwargs:
            raise ValueError("config.data.name='multi_mnist_pickle' needs the pickle's path. "
                             "Received: config.data.path=''")
        return loader(split=split, **kwargs), {"task_spec": MULTI_MNIST_SPEC}
    spec = {"watch": (1, "binary_crossentropy_logits"), "rating": (1, "mse")}
    return loader(split, **kwargs), {"task_spec": spec}


def restrict_tasks(dataset, tasks):
    """``dataset`` of ``(x, {task: y}[, w])`` with the labels (and per-task weights) of
    ``tasks`` only (``config.task_subset``: a network trained on some of the tasks)."""
    known = sorted(dataset.element_spec[1])
    unknown = sorted(set(tasks) - set(known))
    if unknown:
        raise ValueError(f"`config.task_subset` names tasks the dataset lacks: {unknown}. "
                         f"Received: {list(tasks)}; the dataset has {known}")
    keep = sorted(tasks)

    def kept(x, y, *rest):  # Per-task sample weights (dense validity masks) too.
        rest = tuple({t: w[t] for t in keep} if isinstance(w, dict) else w for w in rest)
        return (x, {t: y[t] for t in keep}, *rest)
    return dataset.map(kept)


def _tasks_of(dataset):
    return sorted(dataset.element_spec[1])


def build_model(config, tasks, task_spec=None, steps_per_epoch=None):
    """The ``MultiTaskModel`` of ``config``; ``task_spec`` ({task: (units, loss)})
    comes from the dataset where it fixes the heads' shape and loss."""
    m = config.model
    spec = task_spec or {t: (m.head_units, m.loss) for t in tasks}
    kwargs, rule = seeded(config)
    check_known("encoder", "model.encoder", m.encoder, ENCODERS)
    probes = [transference_probe(config.transference)] if config.transference.enabled else []
    return MultiTaskModel(
        encoder=ENCODERS[m.encoder](**dense_setup.encoder_arguments(routed_encoder_kwargs(
            kwargs, m.encoder, len(tasks), steps_per_epoch), m.encoder, tasks)),
        heads={t: dense_setup.make_head(t, *spec[t]) for t in tasks},
        losses={t: make_loss(spec[t][1]) for t in tasks},
        loss_weights=dict(m.loss_weights) if m.loss_weights else None,
        probes=probes,
        per_task_gradients=m.per_task_gradients,
        lookahead_execution=m.get("lookahead_execution", "auto"),
        update=build_update(rule) if rule is not None else None,
        task_steps=m.get("task_steps", "summed"),
    )


def seeded(config):
    """``(encoder kwargs, rule config or None)`` of ``config``, the routing masks' seed, an
    encoder's own ``seed`` (ETR-NLP's fixed primitives) and the rule's seed moved by
    ``config.seed`` unless ``config.derive_seeds`` is False: runs over seeds then differ in
    their partitions (``003`` averages over 5 partitionings), fixed primitives and PCGrad
    orders, not only in weights and data order.

    Example:
        >>> config.model.encoder_kwargs = {"routing": {"kind": "task_routing", "seed": 10, ...}}
        >>> config.seed = 3
        >>> seeded(config)[0]["routing"]["seed"]
        13
    """
    kwargs = encoder_kwargs(config.model)
    rule = config.rule.to_dict() if "rule" in config else None
    offset = config.seed if config.get("derive_seeds", True) else 0
    if offset and isinstance(kwargs.get("seed"), int):  # ETR-NLP's fixed primitives.
        kwargs["seed"] = kwargs["seed"] + offset
    if offset and kwargs.get("routing"):
        routing = dict(kwargs["routing"])
        kwargs["routing"] = {**routing, "seed": routing.get("seed", 0) + offset}
    if offset and rule is not None and "seed" in rule:
        rule["seed"] = rule["seed"] + offset
    return kwargs, rule


def build_optimizer(config, steps_per_epoch):
    o = config.optimizer
    check_known("optimizer", "optimizer.name", o.name, OPTIMIZERS)
    lr = o.learning_rate
    if o.halve_every_epochs:
        lr = keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=o.halve_every_epochs * steps_per_epoch, decay_rate=0.5,
            staircase=True)
    kwargs = {"learning_rate": lr}
    if o.name == "sgd":
        kwargs.update(momentum=o.momentum, nesterov=o.nesterov)
    epsilon = config_checks.checked_epsilon(o)  # None: Keras's default (1e-7), not papers' 1e-8.
    if epsilon is not None:
        kwargs["epsilon"] = float(epsilon)
    if o.weight_decay:
        kwargs["weight_decay"] = o.weight_decay
    return OPTIMIZERS[o.name](**kwargs)


def train(config, workdir):
    """Trains as ``config`` says into ``workdir``, resumably, then evaluates on the test split.

    Writes config.json, metrics.csv, checkpoint.bin (after every epoch), model.keras,
    results.json (the test metrics of ``tf_mtl.experiments.evaluation``), tb/ (TensorBoard, unless
    ``config.tensorboard`` is False) and the affinity files when transference is enabled.
    Started again on the same ``workdir`` after being killed, it continues from the last
    completed epoch (``tf_mtl.experiments.checkpointing``); on a finished ``workdir`` it trains nothing
    and returns the saved results; a ``workdir`` of another config is refused.

    Returns ``{"history": {...}, "test": {task: {metric: value}}, "model": the trained
    MultiTaskModel (loaded from model.keras when the run had finished before), "files": [...],
    "strategy": a description, **dataset extras}`` (plus ``affinity`` and ``selection`` where
    enabled). Under ``config.strategy`` the model, optimizer and rule state are built in its
    scope; a non-chief worker of a multi-worker run writes to a temporary directory it
    removes, and returns no files. Multi-worker runs do not resume: give every worker the
    same ``workdir`` (a shared filesystem); each refuses one holding a checkpoint or results.
    """
    config_checks.check_config(config)
    strategy = distribute.get_strategy(config.get("strategy", "default"))  # Before any op.
    if distribute.is_multi_worker(strategy):
        _check_multi_worker_workdir(config, workdir)
    own_dir = distribute.write_dir(workdir, strategy)
    try:
        with strategy.scope():
            result = _train_in(config, own_dir)
    finally:
        if own_dir != workdir:  # A non-chief's files were for the collective saves only.
            shutil.rmtree(own_dir, ignore_errors=True)
    result["strategy"] = f"{type(strategy).__name__}, {strategy.num_replicas_in_sync} replicas"
    if isinstance(result, _FinishedResult):  # Its model, if asked for, is built in the scope.
        result.loader = _in_scope(strategy, result.loader)
    if own_dir != workdir:
        result["files"] = []
    return result


def _check_multi_worker_workdir(config, workdir):
    """Every worker of a multi-worker run reads (never writes) the shared ``workdir`` and
    decides alike: another config's workdir, or one holding a checkpoint or results
    (only the chief keeps them, so workers could not resume together), is refused."""
    results_lib.check_workdir(workdir, json.loads(config.to_json_best_effort()))
    found = [n for n in ("checkpoint.bin", "results.json")
             if os.path.exists(os.path.join(workdir, n))]
    if found:
        raise ValueError(
            f"Multi-worker runs do not resume: --workdir={workdir} holds {found} of an "
            "earlier run. Use a new workdir, or continue this one with strategy='mirrored' "
            f"or 'default' (same numbers). Received: workdir={workdir!r}")


def check_workdir(config, workdir, multi_worker=False):
    """Refuses a ``workdir`` ``train`` could not continue: another config's run
    (``results.check_workdir``), a finished run (``results.json``) without the
    ``checkpoint.bin`` its model is read from, or (``multi_worker``: a run of several
    workers) any earlier run's checkpoint or results. Reads only; a new workdir passes."""
    if multi_worker:
        _check_multi_worker_workdir(config, workdir)
    results_lib.check_workdir(workdir, json.loads(config.to_json_best_effort()))
    if (os.path.exists(os.path.join(workdir, "results.json"))
            and not os.path.exists(os.path.join(workdir, "checkpoint.bin"))):
        raise ValueError(f"The finished run in {workdir} has results.json but no checkpoint.bin "
                         "to load its model from. Received: --workdir=" + str(workdir))


def _train_in(config, workdir):
    os.makedirs(workdir, exist_ok=True)
    check_workdir(config, workdir)
    files = {name: os.path.join(workdir, name) for name in
             ("config.json", "metrics.csv", "model.keras", "results.json", "checkpoint.bin")}
    if not os.path.exists(files["results.json"]):
        model = _train_and_test(config, workdir, files)
        result = _outputs(config, workdir, files, finished=False)
        result["model"] = model
        return result
    result = _FinishedResult(_outputs(config, workdir, files, finished=True))
    result.loader = lambda: _finished_model(config, files)
    return result


def _in_scope(strategy, load):
    def scoped():
        with strategy.scope():
            return load()
    return scoped


class _FinishedResult(dict):
    """``train``'s result for a run that had finished: ``["model"]`` builds the model and
    reads its final checkpoint only when asked for (skipping a finished seed builds nothing)."""

    loader = None

    def __missing__(self, key):
        if key != "model":
            raise KeyError(key)
        self["model"] = self.loader()
        return self["model"]

    def get(self, key, default=None):
        return self[key] if key == "model" else super().get(key, default)


def _compiled_model(config, dataset, task_spec, steps_per_epoch):
    """``config``'s model, compiled, with its and the optimizer's variables created."""
    model = build_model(config, _tasks_of(dataset), task_spec,
                        steps_per_epoch=steps_per_epoch)
    jit_compile = config.get("jit_compile")
    optimizer_steps = steps_per_epoch * optimizer_steps_per_batch(  # Epochs of a schedule.
        config.model.get("task_steps", "summed"), len(model.tasks))
    model.compile(optimizer=build_optimizer(config, optimizer_steps),
                  metrics=_compile_metrics(config, model.tasks, task_spec),
                  jit_compile="auto" if jit_compile is None else jit_compile)
    model.build_for(dataset.element_spec[0])
    model.optimizer.build(model.trainable_variables)
    return model


def _finished_model(config, files):
    """The model a finished run ended with: built and compiled as in training, its final
    state read from the last checkpoint (written after the best weights were restored)."""
    dataset, extras = build_dataset(config, "validation")
    model = _compiled_model(config, dataset, extras.get("task_spec"), 1)
    checkpointing.EpochCheckpoint(files["checkpoint.bin"]).restore(model)
    return model


def _train_and_test(config, workdir, files):
    keras.utils.set_random_seed(config.seed)
    train_ds, extras = build_dataset(config, "train", shuffle=False)
    val_ds, _ = build_dataset(config, "validation")
    test_ds, _ = build_dataset(config, "test")
    steps = config.steps_per_epoch
    if steps:  # A smoke run also validates and tests on `steps` batches only.
        val_ds, test_ds = val_ds.take(steps), test_ds.take(steps)
    task_spec = extras.pop("task_spec", None)
    epoch_steps = steps or epoch_batches(config.get("epoch_split"),
                                         epoch_data.count_batches(train_ds))
    model = _compiled_model(config, train_ds, task_spec, epoch_steps)
    config_checks.check_grouping(config, model.tasks)
    # Only now, with the data loaded and the model built: a run refused before leaves no
    # config.json, so the corrected command is not taken for another config's run.
    checkpointing.atomic_write_json(files["config.json"],
                                    json.loads(config.to_json_best_effort()))
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=config.get("early_stopping_monitor", "val_loss"),
        mode=config.get("early_stopping_mode", "auto"), patience=config.early_stopping_patience,
        restore_best_weights=True) if config.early_stopping_patience else None
    schedule = lr_schedule_callback(config)
    checkpoint = checkpointing.EpochCheckpoint(files["checkpoint.bin"], early_stopping, schedule)
    initial_epoch, done = checkpoint.restore(model)
    checkpointing.truncate_csv(files["metrics.csv"], initial_epoch)
    # The schedule first: it reads each batch's own loss and gives the others the mean back.
    callbacks = [schedule] if schedule is not None else []
    callbacks += dense_validation.validation_callbacks(  # Next: the others read its logs.
        config, val_ds, task_spec and {t: task_spec[t] for t in model.tasks},
        dense_setup.conventions(config) if config.data.name in dense_setup.LOADERS else None)
    callbacks += [attribute_score_logger({t: (task_spec[t][0] if task_spec else
                                              config.model.head_units) for t in model.tasks}),
                  keras.callbacks.CSVLogger(files["metrics.csv"], append=initial_epoch > 0)]
    callbacks += [early_stopping] if early_stopping else []
    tb = os.path.join(workdir, "tb") if config.get("tensorboard", True) else None
    if tb:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=tb, write_graph=False))
    if config.transference.enabled:
        callbacks.append(AffinityLogger(workdir, plot=config.transference.plot,
                                        tensorboard_dir=tb, initial_epoch=initial_epoch))
    callbacks.append(checkpoint)  # Last: it sees the epoch's early-stopping decision.
    if not done and initial_epoch < config.epochs and not checkpoint.stopped:
        shuffle = config.data.get("shuffle")
        stream, steps_per_epoch = epoch_data.epoch_stream(
            train_ds, batch_size=config.data.batch_size, seed=config.seed,
            epochs=config.epochs, steps_per_epoch=epoch_steps, initial_epoch=initial_epoch,
            shuffle=True if shuffle in (None, "") else bool(shuffle))
        model.fit(stream, validation_data=val_ds, epochs=config.epochs,
                  steps_per_epoch=steps_per_epoch, initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=config.verbose, shuffle=False)
    elif not done:  # Killed after the last epoch's checkpoint: only the ending is left.
        ending = keras.callbacks.CallbackList(callbacks, model=model)
        ending.on_train_begin()
        ending.on_train_end()
    tmp = os.path.join(workdir, f"model.tmp{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, files["model.keras"])
    test = reporting.reported(config.get("report", "final"),
                              _test_metrics(config, model, test_ds, task_spec),
                              _read_history(files["metrics.csv"]))
    checkpointing.atomic_write_json(files["results.json"], {
        "seed": config.seed, "epochs_trained": checkpoint.epochs_done, "test": test,
        "extras": extras})
    return model


def _test_metrics(config, model, test_ds, task_spec):
    if config.data.name == "taskonomy":   # 002 / 001 Table 7 report per-task test losses.
        return taskonomy_losses.evaluate_losses(model, test_ds)
    if config.data.name in dense_setup.LOADERS:
        return dense_evaluation.evaluate(model, test_ds, {t: task_spec[t] for t in model.tasks},
                                         dense_setup.conventions(config))
    kinds = {t: evaluation.kind_of_loss(task_spec[t][1] if task_spec else config.model.loss)
             for t in model.tasks}
    metrics = evaluation.resolve_metrics(dataset_key(config), model.tasks)
    return evaluation.evaluate(model, test_ds, metrics, kinds)


def attribute_score_logger(attributes):
    """A callback adding ``[val_]all_attributes_{precision,recall,fscore}`` to each
    epoch's logs where every task logs that score: its mean over every attribute of every
    task, as ``003`` reports and selects on (the mean of the 40 per-attribute F-scores
    of the reference code's ``saver.py``). A task's logged score (``AttributeScore``) is
    the mean over its ``attributes[task]`` attributes, so the all-attribute mean is their
    mean weighted by the attribute counts. It goes before the callbacks reading the logs."""
    def add(epoch, logs):
        for prefix in ("", "val_"):
            for kind in ATTRIBUTE_KINDS:
                keys = {t: f"{prefix}{t}_{kind}" for t in attributes}
                if all(k in logs for k in keys.values()):
                    logs[f"{prefix}{evaluation.ALL_ATTRIBUTES}_{kind}"] = sum(
                        attributes[t] * float(logs[k]) for t, k in keys.items()
                    ) / sum(attributes.values())

    return keras.callbacks.LambdaCallback(on_epoch_end=add)


def _compile_metrics(config, tasks, task_spec=None):
    conventions = dense_setup.conventions(config)

    def make(name, task):
        if name in dense_setup.DENSE_METRICS:  # Needs the task's classes and a convention.
            return dense_setup.make_metric(name, task_spec[task][0], conventions)
        return METRICS[name]() if name in METRICS else name

    metrics = {t: [make(n, t) for n in config.metrics.get(t, config.metrics.get("all", []))]
               for t in tasks}
    return {t: m for t, m in metrics.items() if m} or None


def dataset_key(config):
    """The ``tf_mtl.experiments.evaluation.DATASET_METRICS`` key of ``config``'s dataset."""
    name = config.data.name
    tasks = config.data.get("tasks", "tag")
    if name == "celeba" and (tasks == "mr_groups" or not isinstance(tasks, (str, list, tuple))):
        return "celeba_groups"
    return name


def _outputs(config, workdir, files, finished):
    with open(files["results.json"]) as f:
        saved = json.load(f)
    result = {"history": _read_history(files["metrics.csv"]), "test": saved["test"],
              **saved.get("extras", {})}
    if "planted_groups" in result:  # Tuples, as tf_mtl.data.synthetic gives them.
        result["planted_groups"] = [tuple(g) for g in result["planted_groups"]]
    if os.path.exists(os.path.join(workdir, "tb")):
        files["tb"] = os.path.join(workdir, "tb")
    if config.transference.enabled and distribute.is_chief():  # AffinityLogger: chief only
        files.update({n: os.path.join(workdir, n) for n in ("affinity.json",
                                                              "affinity_epochs.json")})
        if config.transference.plot:
            files["affinity.png"] = os.path.join(workdir, "affinity.png")
        with open(files["affinity.json"]) as f:
            result["affinity"] = json.load(f)
        if config.grouping.enabled:
            groups = os.path.join(workdir, "groups.json")
            g = config.grouping
            saved = (grouping.read_selection(groups, g.objective, g.splits)
                     if finished and os.path.exists(groups) else None)
            if saved is not None:  # Selected when the run finished: not computed again.
                result["selection"], files["groups.json"] = saved, groups
            else:
                chosen = grouping.select_groups_from_file(
                    files["affinity.json"], splits=config.grouping.splits,
                    objective=config.grouping.objective,
                    time_limit=config.grouping.get("time_limit"))
                result["selection"], files["groups.json"] = chosen["selection"], chosen["path"]
    result["files"] = sorted(files.values())
    return result


def _read_history(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}


def base_config():
    """Defaults every config starts from (override what differs)."""
    c = ml_collections.ConfigDict()
    c.seed, c.epochs, c.steps_per_epoch, c.verbose, c.runlocal = 0, 1, 0, 2, False
    c.strategy = "default"  # default|mirrored|multiworker|tpu (--strategy overrides it)
    c.early_stopping_patience = 0
    # What early stopping watches (a Keras log name) and whether lower ("min") or higher
    # ("max") is better; "auto" is Keras's guess from the name.
    c.early_stopping_monitor, c.early_stopping_mode = "val_loss", "auto"
    c.derive_seeds = True  # Routing and rule seeds offset by `seed` (see `seeded`).
    c.table_spread = "se"  # Seeds tables: mean ± "se" (standard error) or "std".
    c.task_subset = ()  # Train on these tasks only (empty: every task of the dataset).
    # Repeat the run per seed into DIR/seed_<s>/ (tf_mtl.experiments.runs): a count n (seeds seed..seed+n-1)
    # or a list (--config.seeds=0,3,7); None = one run in DIR. An untyped placeholder, so
    # that both parse. TensorBoard logs in DIR/tb unless False.
    c.seeds = ml_collections.config_dict.placeholder(object)
    c.tensorboard = True
    c.metrics = ml_collections.ConfigDict()  # {task or "all": [Keras metric names]}
    c.data = ml_collections.ConfigDict({"name": "synthetic", "batch_size": 64})
    c.model = ml_collections.ConfigDict({
        "encoder": "mlp", "encoder_kwargs": {"units": [64]}, "head_units": 1,
        "loss": "mse", "loss_weights": {}, "per_task_gradients": "loop",
        # One optimizer step on the summed losses per batch, or one per task ("sequential").
        "task_steps": "summed",
        # How lookahead forwards run (MultiTaskModel): auto|sequential|unrolled|vectorized.
        "lookahead_execution": "auto",
        "width": 1.0})  # Encoder size factor (ENCODER_WIDTH_ARGS), e.g. 0.5 = half width.
    # XLA for the whole train step; None is Keras's "auto" (no XLA on a CPU-only machine).
    c.jit_compile = ml_collections.config_dict.placeholder(bool)
    c.optimizer = ml_collections.ConfigDict({
        "name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": False,
        "weight_decay": 0.0, "halve_every_epochs": 0,
        # A typed None, so --config.optimizer.epsilon=1e-8 parses as a float.
        "epsilon": ml_collections.config_dict.placeholder(float)})
    # Not "update": ConfigDict.update is a method, so --config.update.name could not parse.
    c.rule = ml_collections.ConfigDict(dict(UPDATE_DEFAULTS))
    c.transference = ml_collections.ConfigDict({
        "enabled": False, "order": 1, "every": 10, "method": "exact",
        "scale_by_lr": False, "update_heads": False, "plot": True, "log_pairs": False,
        # A typed None (default chunks), so --config.transference.chunk_size=16 parses.
        "chunk_size": ml_collections.config_dict.placeholder(int)})
    # time_limit: seconds for the selection (a typed None: select_groups' default, 60 s past
    # 12 tasks; --config.grouping.time_limit=30 parses).
    c.grouping = ml_collections.ConfigDict({
        "enabled": False, "splits": 2, "objective": "tag",
        "time_limit": ml_collections.config_dict.placeholder(float)})
    return c
