"""Builds and runs an experiment from an ``ml_collections`` config.

Launchers (``launch/train.py``) only parse flags and call ``train``; configs
(``configs/*.py``) only return a ``ConfigDict``. Everything between lives here.

Config fields:
    seed, epochs, steps_per_epoch (0 = whole dataset), verbose,
    strategy ("default" | "mirrored" | "multiworker" | "tpu": ``distribute.get_strategy``;
              batch sizes are global; in multi-worker runs only the chief writes files)
    seeds (None = one run; n or 0,3,7: one run per seed, ``tf_mtl.experiments.runs``), tensorboard,
    early_stopping_patience (0 = off; else stop on early_stopping_monitor, default
        "val_loss", in early_stopping_mode "auto" | "min" | "max", restore the best weights)
    derive_seeds (True: the routing masks' seed, model.encoder_kwargs.routing.seed, the
        encoder's own model.encoder_kwargs.seed (ETR-NLP) and the rule's seed, rule.seed, are
        offset by ``seed``, so the runs of ``seeds`` draw other
        partitions and PCGrad orders; False pins them as written)
    table_spread ("se" | "std": the seeds tables show mean ± standard error or ± std)
    data: name ("synthetic" | "celeba" | "multi_mnist" | "multi_mnist_pickle" |
          "movielens"), batch_size, and the loader's own arguments
          (celeba ``tasks`` may be "tag" or "mr_groups" for the presets).
          Empty fields ("" / None) are not passed (the loader's default
          applies); a non-empty field the loader does not take is an error
          (``DATASETS`` lists each loader's fields)
    model: encoder ("mlp" | "resnet_lite" | "resnet18" | "lenet" | "movielens"),
           encoder_kwargs, head_units and loss (used where the dataset does
           not fix them), loss_weights, per_task_gradients
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
import inspect
import json
import math
import numbers
import os
import shutil

import keras
import ml_collections

from tf_mtl import distribute, encoders, grouping, lookahead
from tf_mtl.experiments import checkpointing
from tf_mtl.experiments import evaluation
from tf_mtl import data as data_lib
from tf_mtl.experiments import results as results_lib
from tf_mtl.data import epochs as epoch_data
from tf_mtl.data.synthetic import synthetic_arrays, task_names as synthetic_task_names
from tf_mtl.experiments.attribute_metrics import AttributeScore
from tf_mtl.callbacks import AffinityLogger
from tf_mtl.gradients import PER_TASK_METHODS
from tf_mtl.model import MultiTaskModel
from tf_mtl.routing.factory import KINDS as ROUTING_KINDS
from tf_mtl.transference import Transference
from tf_mtl.updates import build_update
from tf_mtl.updates.build import DEFAULTS as UPDATE_DEFAULTS

ENCODERS = {"mlp": encoders.MLP, "resnet_lite": encoders.ResNetLite,
            "resnet18": encoders.ResNet18, "lenet": encoders.LeNet, "etrnlp": encoders.ETRNLPNet,
            "movielens": data_lib.MovieLensEncoder}
LOSSES = {  # Names configs use for losses that need arguments.
    "categorical_crossentropy_logits":
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
    "sparse_categorical_crossentropy_logits":
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    "binary_crossentropy_logits": lambda: keras.losses.BinaryCrossentropy(from_logits=True),
}
METRICS = {  # Names configs use for metrics that need arguments.
    "binary_accuracy_logits": lambda: keras.metrics.BinaryAccuracy(threshold=0.0),
    # Macro over a group's attributes, from logits (003/004's CelebA scores).
    "precision_logits": lambda: AttributeScore("precision"),
    "recall_logits": lambda: AttributeScore("recall"),
    "fscore_logits": lambda: AttributeScore("fscore"),
}
# The argument that sets each encoder's size, scaled by ``config.model.width``
# (``002`` §3.1 compares pairs with half-sized single-task networks).
ENCODER_WIDTH_ARGS = {"mlp": ("units", (64,)), "resnet_lite": ("filters", 64),
                      "resnet18": ("width", 64), "lenet": ("hidden", 50)}
CELEBA_PRESETS = {"tag": data_lib.CELEBA_TAG_TASKS, "mr_groups": data_lib.CELEBA_MR_GROUPS}


def make_loss(name):
    """A loss object for a config name (a ``LOSSES`` key or a Keras loss name)."""
    return LOSSES[name]() if name in LOSSES else name
OPTIMIZERS = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
              "adamw": keras.optimizers.AdamW}


# The config fields each loader takes (besides ``split``), declared rather than read off
# the signatures so that a field meant for a sibling loader (``source`` for the pickles)
# or a misspelt one is refused by name instead of reaching the loader as a TypeError.
DATASETS = {
    "synthetic": (data_lib.synthetic, (
        "batch_size", "shuffle", "num_tasks", "num_groups", "num_examples", "input_dim",
        "group_rank", "task_noise", "label_noise", "scale", "kind", "seed")),
    "celeba": (data_lib.celeba, (
        "tasks", "image_size", "batch_size", "data_dir", "shuffle", "seed", "download",
        "verify_checksums", "retries")),
    "multi_mnist": (data_lib.multi_mnist, (
        "source", "image_size", "batch_size", "seed", "shuffle", "data_dir", "download",
        "verify_checksums", "retries")),
    "multi_mnist_pickle": (data_lib.multi_mnist_pickle, (
        "path", "image_size", "batch_size", "seed", "shuffle")),
    "movielens": (data_lib.movielens, (
        "batch_size", "num_examples", "seed", "shuffle", "data_dir", "download",
        "verify_checksums", "retries")),
}
MULTI_MNIST_SPEC = {t: (10, "sparse_categorical_crossentropy_logits") for t in ("left", "right")}


def loader_kwargs(data_config):
    """``(name, kwargs)`` for the loader ``data_config.name`` names.

    Rule: an empty field (``""`` or None) is not passed, so the loader's own
    default applies; every other field must be one the loader takes
    (``DATASETS``), else a ``ValueError`` names it. A config can thus carry the
    fields of sibling loaders (``path`` for the pickles, ``source`` for TFDS
    MultiMNIST) left empty, and switching loaders from flags needs no removal.
    """
    fields = data_config.to_dict()
    name = fields.pop("name", None)
    check_known("dataset", "data.name", name, DATASETS)
    accepted = DATASETS[name][1]
    given = {k: v for k, v in fields.items() if v is not None and v != ""}
    unused = sorted(set(given) - set(accepted))
    if unused:
        raise ValueError(
            f"config.data.name={name!r} does not take the field(s) {unused}; leave them empty "
            f"('') or set a field it takes: {sorted(accepted)}. Received: "
            + ", ".join(f"config.data.{k}={given[k]!r}" for k in unused))
    return name, given


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
    """``dataset`` of ``(x, {task: y}[, w])`` with the labels of ``tasks`` only
    (``config.task_subset``: a network trained on some of the tasks)."""
    known = sorted(dataset.element_spec[1])
    unknown = sorted(set(tasks) - set(known))
    if unknown:
        raise ValueError(f"`config.task_subset` names tasks the dataset lacks: {unknown}. "
                         f"Received: {list(tasks)}; the dataset has {known}")
    keep = sorted(tasks)
    return dataset.map(lambda x, y, *rest: (x, {t: y[t] for t in keep}, *rest))


def encoder_kwargs(model_config):
    """The encoder's kwargs with its size argument scaled by ``model.width``."""
    kwargs = dict(model_config.encoder_kwargs)
    width = model_config.get("width", 1.0)
    if width == 1.0:
        return kwargs
    if model_config.encoder not in ENCODER_WIDTH_ARGS or not width > 0:
        raise ValueError("`config.model.width` scales the encoders "
                         f"{sorted(ENCODER_WIDTH_ARGS)} by a factor > 0. Received: "
                         f"width={width!r} with encoder={model_config.encoder!r}")
    name, default = ENCODER_WIDTH_ARGS[model_config.encoder]
    size = kwargs.get(name, default)
    scale = lambda n: max(1, int(round(n * width)))
    kwargs[name] = [scale(n) for n in size] if isinstance(size, (list, tuple)) else scale(size)
    return kwargs


def _tasks_of(dataset):
    return sorted(dataset.element_spec[1])


def routed_encoder_kwargs(kwargs, encoder, num_tasks, steps_per_epoch=None):
    """The encoder's arguments ``kwargs`` with ``num_tasks`` filled in where routing needs
    it (``routing`` option, ``"etrnlp"``), and ``routing.update_every_epochs`` (Δ in
    epochs, as ``003`` gives it) converted to ``update_every`` training steps."""
    kwargs = dict(kwargs)
    if encoder == "etrnlp":
        kwargs.setdefault("num_tasks", num_tasks)
    if kwargs.get("routing"):
        routing = {"num_tasks": num_tasks, **dict(kwargs["routing"])}
        epochs = routing.pop("update_every_epochs", None)
        if epochs is not None:
            if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or epochs <= 0:
                raise ValueError("routing.update_every_epochs must be a positive number of "
                                 f"epochs. Received: update_every_epochs={epochs!r}")
            if not steps_per_epoch:
                raise ValueError("routing.update_every_epochs needs the number of steps per "
                                 f"epoch. Received: steps_per_epoch={steps_per_epoch!r}")
            routing["update_every"] = max(1, int(round(epochs * steps_per_epoch)))
        kwargs["routing"] = routing
    return kwargs


def build_model(config, tasks, task_spec=None, steps_per_epoch=None):
    """The ``MultiTaskModel`` of ``config``; ``task_spec`` ({task: (units, loss)})
    comes from the dataset where it fixes the heads' shape and loss."""
    m = config.model
    spec = task_spec or {t: (m.head_units, m.loss) for t in tasks}
    kwargs, rule = seeded(config)
    check_known("encoder", "model.encoder", m.encoder, ENCODERS)
    probes = [transference_probe(config.transference)] if config.transference.enabled else []
    return MultiTaskModel(
        encoder=ENCODERS[m.encoder](**routed_encoder_kwargs(
            kwargs, m.encoder, len(tasks), steps_per_epoch)),
        heads={t: keras.layers.Dense(spec[t][0], name=f"head_{t}") for t in tasks},
        losses={t: make_loss(spec[t][1]) for t in tasks},
        loss_weights=dict(m.loss_weights) if m.loss_weights else None,
        probes=probes,
        per_task_gradients=m.per_task_gradients,
        lookahead_execution=m.get("lookahead_execution", "auto"),
        update=build_update(rule) if rule is not None else None,
    )


def transference_probe(t):
    """The ``Transference`` probe of ``config.transference`` (``t``), as ``build_model``
    adds it; its arguments are checked here (no TensorFlow op runs)."""
    return Transference(order=t.order, every=t.every, method=t.method,
                        scale_by_lr=t.scale_by_lr, update_heads=t.update_heads,
                        log_pairs=t.log_pairs, chunk_size=t.chunk_size)


def config_tasks(config):
    """The task names ``config`` trains, read off the config without loading data (the
    loaders name their tasks from these fields), or None for a dataset this does not
    know. A ``task_subset`` naming tasks the dataset lacks is a ``ValueError``."""
    data = config.get("data")
    name = data.get("name") if data is not None else None
    if name == "synthetic":
        num_tasks = data.get("num_tasks")
        if num_tasks is None or num_tasks == "":
            num_tasks = inspect.signature(synthetic_arrays).parameters["num_tasks"].default
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError("`config.data.num_tasks` must be an int >= 1. "
                             f"Received: num_tasks={num_tasks!r}")
        tasks = synthetic_task_names(num_tasks)
    elif name == "celeba":
        given = data.get("tasks")
        given = "tag" if given is None or given == "" else given
        given = CELEBA_PRESETS.get(given, given) if isinstance(given, str) else given
        given = given.to_dict() if hasattr(given, "to_dict") else given
        try:
            tasks = list(data_lib.celeba_task_spec(given))
        except ValueError as e:
            raise ValueError(f"`config.data.tasks`: {e}. Received: "
                             f"tasks={data.get('tasks')!r}") from e
    elif name in ("multi_mnist", "multi_mnist_pickle"):
        tasks = list(MULTI_MNIST_SPEC)
    elif name == "movielens":
        tasks = ["rating", "watch"]
    else:
        return None
    tasks = sorted(tasks)
    subset = config.get("task_subset")
    if subset:
        unknown = sorted(set(subset) - set(tasks))
        if unknown:
            raise ValueError(f"`config.task_subset` names tasks the dataset lacks: {unknown}. "
                             f"Received: {list(subset)}; the dataset has {tasks}")
        tasks = sorted(subset)
    return tasks


def check_grouping(config, tasks):
    """Refuses ``config.grouping.splits`` above the number of ``tasks`` when groups are
    selected at the end (grouping and transference enabled)."""
    g, t = config.get("grouping"), config.get("transference")
    if g is None or t is None or not (g.get("enabled") and t.get("enabled")):
        return
    if isinstance(g.splits, int) and g.splits > len(tasks):
        raise ValueError(f"`config.grouping.splits` must be at most the number of tasks "
                         f"({len(tasks)}: {list(tasks)}). Received: splits={g.splits!r}")


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
    epsilon = _checked_epsilon(o)  # None: Keras's default (1e-7), not papers' 1e-8.
    if epsilon is not None:
        kwargs["epsilon"] = float(epsilon)
    if o.weight_decay:
        kwargs["weight_decay"] = o.weight_decay
    return OPTIMIZERS[o.name](**kwargs)


def _checked_epsilon(o):
    """``config.optimizer.epsilon`` (``o``: the optimizer section), refused where the
    optimizer has none or it is not > 0."""
    epsilon = o.get("epsilon")
    if epsilon is not None:
        if o.get("name") not in ("adam", "adamw"):
            raise ValueError("`config.optimizer.epsilon` applies to 'adam' and 'adamw' only. "
                             f"Received: epsilon={epsilon!r} with name={o.get('name')!r}")
        if not epsilon > 0:
            raise ValueError("`config.optimizer.epsilon` must be > 0. "
                             f"Received: epsilon={epsilon!r}")
    return epsilon


def check_known(what, field, value, known):
    """``ValueError`` "Unknown <what>. Received: config.<field>=..." unless ``value`` is a
    key of ``known``."""
    if value not in known:
        raise ValueError(f"Unknown {what}. Received: config.{field}={value!r}; known: "
                         f"{sorted(known)}")


def check_config(config):
    """Refuses, before anything is built or written, names no component has (strategy,
    dataset and its fields, encoder, optimizer, loss, update rule and its arguments, the
    transference probe's arguments, grouping objective) and values no run can mean:
    ``epochs`` < 1, ``steps_per_epoch`` < 0, a learning rate <= 0 (gradient ascent) or not
    finite, a batch size < 1, head or encoder widths < 1, a ``model.width`` <= 0, a routing
    ``sharing_ratio``/``completion`` or ETR-NLP ``shared_ratio`` outside [0, 1], grouping
    ``splits`` < 1 or above the number of tasks (``config_tasks``), a ``task_subset`` the
    dataset lacks. Each is a ``ValueError`` naming the field and the value received. Only
    fields the config has are checked (``train`` calls it; so do the commands, for every
    config). Nothing here loads data or runs a TensorFlow op."""
    def number(value):
        return not isinstance(value, bool) and isinstance(value, numbers.Real)

    def at_least(field, value, low, kind="an int"):
        if not (number(value) and (kind != "an int" or float(value).is_integer())
                and value >= low):
            name = field.rsplit(".", 1)[-1]
            raise ValueError(f"`config.{field}` must be {kind} >= {low}. "
                             f"Received: {name}={value!r}")

    def ratio(field, value):
        if not (number(value) and 0 <= value <= 1):
            name = field.rsplit(".", 1)[-1]
            raise ValueError(f"`config.{field}` must be a number in [0, 1]. "
                             f"Received: {name}={value!r}")

    strategy = config.get("strategy")
    if strategy is not None and strategy not in distribute.STRATEGIES:
        raise ValueError(f"`config.strategy` must be one of {distribute.STRATEGIES}. "
                         f"Received: strategy={strategy!r}")
    if "epochs" in config:
        at_least("epochs", config.epochs, 1)
    if config.get("steps_per_epoch") is not None:
        at_least("steps_per_epoch", config.steps_per_epoch, 0)
    if config.get("batch_size") is not None:
        at_least("batch_size", config.batch_size, 1)
    data = config.get("data")
    if data is not None and data.get("batch_size") is not None:
        at_least("data.batch_size", data.batch_size, 1)
    if data is not None and "name" in data:
        loader_kwargs(data)   # The dataset's name and fields.
    optimizer = config.get("optimizer")
    if optimizer is not None and "name" in optimizer:
        check_known("optimizer", "optimizer.name", optimizer.name, OPTIMIZERS)
    lr = optimizer.get("learning_rate") if optimizer is not None else None
    if lr is not None and number(lr) and not math.isfinite(lr):
        raise ValueError("`config.optimizer.learning_rate` must be a finite number > 0. "
                         f"Received: learning_rate={lr!r}")
    if lr is not None and not (number(lr) and lr > 0):
        raise ValueError("`config.optimizer.learning_rate` must be a number > 0 (<= 0 does "
                         f"not descend). Received: learning_rate={lr!r}")
    if optimizer is not None and "epsilon" in optimizer:
        _checked_epsilon(optimizer)
    if config.get("early_stopping_patience") is not None:
        at_least("early_stopping_patience", config.early_stopping_patience, 0)
    mode = config.get("early_stopping_mode")
    if mode is not None and mode not in ("auto", "min", "max"):
        raise ValueError("`config.early_stopping_mode` must be 'auto', 'min' or 'max'. "
                         f"Received: early_stopping_mode={mode!r}")
    spread = config.get("table_spread")
    if spread is not None and spread not in results_lib.SPREADS:
        raise ValueError(f"`config.table_spread` must be one of {sorted(results_lib.SPREADS)}. "
                         f"Received: table_spread={spread!r}")
    model = config.get("model")
    if model is not None and "encoder_kwargs" in model and "encoder" in model:
        check_known("encoder", "model.encoder", model.encoder, ENCODERS)
        width = model.get("width")
        if width is not None and not (number(width) and math.isfinite(width) and width > 0):
            raise ValueError("`config.model.width` must be a finite number > 0. "
                             f"Received: width={width!r}")
        encoder_kwargs(model)   # A width other than 1 only for the encoders it scales.
        size = ENCODER_WIDTH_ARGS.get(model.encoder, (None,))[0]
        value = (model.encoder_kwargs or {}).get(size) if size else None
        if value is not None:   # The encoder's widths (units, filters, ...): >= 1 each.
            for n in (value if isinstance(value, (list, tuple)) else [value]):
                at_least(f"model.encoder_kwargs.{size}", n, 1)
    kwargs = model.get("encoder_kwargs") if model is not None else None
    if kwargs:
        if kwargs.get("shared_ratio") is not None:
            ratio("model.encoder_kwargs.shared_ratio", kwargs["shared_ratio"])
        routing = kwargs.get("routing") or {}
        for name in ("sharing_ratio", "completion"):
            if routing.get(name) is not None:
                ratio(f"model.encoder_kwargs.routing.{name}", routing[name])
        if routing and routing.get("kind") not in ROUTING_KINDS:
            raise ValueError("`config.model.encoder_kwargs.routing.kind` must be one of "
                             f"{sorted(ROUTING_KINDS)}. Received: kind={routing.get('kind')!r}")
        if routing:   # update_every_epochs, as build_model converts it to steps.
            routed_encoder_kwargs({"routing": dict(routing)}, model.get("encoder"), 1,
                                  steps_per_epoch=1)
    if model is not None and model.get("per_task_gradients") is not None:
        if model.per_task_gradients not in PER_TASK_METHODS:
            raise ValueError(f"`config.model.per_task_gradients` must be one of "
                             f"{PER_TASK_METHODS}. Received: "
                             f"per_task_gradients={model.per_task_gradients!r}")
    if model is not None and model.get("lookahead_execution") is not None:
        lookahead.check_execution(model.lookahead_execution)
    if model is not None and model.get("head_units") is not None:
        at_least("model.head_units", model.head_units, 1)
    if model is not None and isinstance(model.get("loss"), str):
        check_loss("model.loss", model.loss)
    if "rule" in config and config.rule is not None:
        try:   # The rule's name and arguments, as build_model builds it; no op runs.
            build_update(config.rule.to_dict())
        except (ValueError, TypeError) as e:
            raise (TypeError if isinstance(e, TypeError) else ValueError)(
                f"config.rule: {e}") from e
    transference = config.get("transference")
    if transference is not None and transference.get("enabled"):
        try:   # Its order, every, method, ... as build_model builds it.
            transference_probe(transference)
        except (ValueError, TypeError) as e:
            raise (TypeError if isinstance(e, TypeError) else ValueError)(
                f"config.transference: {e}") from e
    g = config.get("grouping")
    if g is not None and "objective" in g and g.objective not in grouping.OBJECTIVES:
        raise ValueError(f"`config.grouping.objective` must be one of {grouping.OBJECTIVES}. "
                         f"Received: objective={g.objective!r}")
    if g is not None and "splits" in g:
        at_least("grouping.splits", g.splits, 1)
    tasks = config_tasks(config) if data is not None and "name" in data else None
    if tasks is not None:
        check_grouping(config, tasks)
        unknown = sorted(set((model.get("loss_weights") or {}) if model is not None else ())
                         - set(tasks))
        if unknown:
            raise ValueError(f"`config.model.loss_weights` names tasks that do not exist: "
                             f"{unknown}; the tasks are {tasks}. Received: loss_weights="
                             f"{dict(model.loss_weights)}")


def check_loss(field, name):
    """``ValueError`` unless ``name`` is a ``LOSSES`` name or a Keras loss name."""
    if name in LOSSES:
        return
    try:
        keras.losses.get(name)
    except ValueError:
        raise ValueError(f"`config.{field}` must be a Keras loss name (e.g. 'mse', "
                         f"'binary_crossentropy') or one of {sorted(LOSSES)}. Received: "
                         f"{field.rsplit('.', 1)[-1]}={name!r}") from None


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
    check_config(config)
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
    model.compile(optimizer=build_optimizer(config, steps_per_epoch),
                  metrics=_compile_metrics(config, model.tasks),
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
    model = _compiled_model(config, train_ds, task_spec,
                            steps or epoch_data.count_batches(train_ds))
    check_grouping(config, model.tasks)
    # Only now, with the data loaded and the model built: a run refused before leaves no
    # config.json, so the corrected command is not taken for another config's run.
    checkpointing.atomic_write_json(files["config.json"],
                                    json.loads(config.to_json_best_effort()))
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=config.get("early_stopping_monitor", "val_loss"),
        mode=config.get("early_stopping_mode", "auto"), patience=config.early_stopping_patience,
        restore_best_weights=True) if config.early_stopping_patience else None
    checkpoint = checkpointing.EpochCheckpoint(files["checkpoint.bin"], early_stopping)
    initial_epoch, done = checkpoint.restore(model)
    checkpointing.truncate_csv(files["metrics.csv"], initial_epoch)
    callbacks = [keras.callbacks.CSVLogger(files["metrics.csv"], append=initial_epoch > 0)]
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
            epochs=config.epochs, steps_per_epoch=steps, initial_epoch=initial_epoch,
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
    kinds = {t: evaluation.kind_of_loss(task_spec[t][1] if task_spec else config.model.loss)
             for t in model.tasks}
    metrics = evaluation.resolve_metrics(dataset_key(config), model.tasks)
    test = evaluation.evaluate(model, test_ds, metrics, kinds)
    checkpointing.atomic_write_json(files["results.json"], {
        "seed": config.seed, "epochs_trained": checkpoint.epochs_done, "test": test,
        "extras": extras})
    return model


def _compile_metrics(config, tasks):
    metrics = {t: [METRICS[n]() if n in METRICS else n
                   for n in config.metrics.get(t, config.metrics.get("all", []))] for t in tasks}
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
                    objective=config.grouping.objective)
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
    c.grouping = ml_collections.ConfigDict({"enabled": False, "splits": 2, "objective": "tag"})
    return c
