"""A config checked before anything is built or written (``check_config``).

Names no component has and values no run can mean are refused as ``ValueError``s
naming the field and the value received, so that a command line refuses them in
one line before a workdir holds anything (``tf_mtl.cli``), and ``train`` refuses
them before it writes ``config.json``.
"""

import inspect
import math
import numbers

import keras

from tf_mtl import data as data_lib
from tf_mtl import distribute, grouping, lookahead
from tf_mtl.data.synthetic import synthetic_arrays, task_names as synthetic_task_names
from tf_mtl.experiments import dense_setup, reporting
from tf_mtl.experiments import results as results_lib
from tf_mtl.experiments.components import (CELEBA_PRESETS, ENCODER_WIDTH_ARGS, ENCODERS, LOSSES,
                                           MULTI_MNIST_SPEC, OPTIMIZERS, check_known,
                                           encoder_kwargs, epoch_batches, loader_kwargs,
                                           lr_schedule_callback, routed_encoder_kwargs,
                                           transference_probe)
from tf_mtl.gradients import PER_TASK_METHODS
from tf_mtl.routing.factory import KINDS as ROUTING_KINDS
from tf_mtl.updates import build_update

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
    elif name in dense_setup.LOADERS:
        tasks = dense_setup.config_tasks(name, loader_kwargs(data)[1])
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


def checked_epsilon(o):
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


def check_rule_reads_encoder(update, model):
    """A rule on the encoder's output (MGDA-UB, IMTL / Aligned-MTL on features) needs one
    representation every head reads; an encoder with per-task outputs has none."""
    encoder = ENCODERS.get(model.get("encoder")) if model is not None else None
    if getattr(encoder, "per_task_outputs", False) and update.reads_encoder_output:
        raise ValueError(
            f"config.rule: {update.name} acts on the task gradients w.r.t. the encoder's "
            f"output, and encoder {model.encoder!r} has one output per task, with shared "
            "layers inside the task paths (no representation every head reads, the premise "
            "of MGDA-UB's bound). Use the rule on the shared parameters (mgda: "
            "upper_bound=False; imtl, aligned_mtl: on=parameters). Received: "
            f"rule={update.name}, model.encoder={model.encoder!r}")


def check_config(config):
    """Refuses, before anything is built or written, names no component has (strategy,
    dataset and its fields, encoder, optimizer, loss, update rule and its arguments, the
    transference probe's arguments, grouping objective) and values no run can mean:
    ``epochs`` < 1, ``steps_per_epoch`` < 0, a learning rate <= 0 (gradient ascent) or not
    finite, a batch size < 1, an ``lr_schedule`` with an unknown name or field or a value it
    refuses (or beside ``optimizer.halve_every_epochs``), an ``epoch_split`` field other than
    ``over_batches`` (int >= 0) and ``parts`` (int >= 1), head or encoder widths < 1, a
    ``model.width`` <= 0, a routing
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
        checked_epsilon(optimizer)
    _check_lr_schedule(config)
    if config.get("epoch_split"):
        epoch_batches(config.epoch_split, 1)   # Its fields and values.
    if config.get("early_stopping_patience") is not None:
        at_least("early_stopping_patience", config.early_stopping_patience, 0)
    mode = config.get("early_stopping_mode")
    if mode is not None and mode not in ("auto", "min", "max"):
        raise ValueError("`config.early_stopping_mode` must be 'auto', 'min' or 'max'. "
                         f"Received: early_stopping_mode={mode!r}")
    _check_attribute_monitor(config)
    if config.get("report") is not None:
        if reporting.validation_every(config.report) and (
                "data" not in config or config.data.get("name") not in dense_setup.LOADERS):
            raise ValueError("`config.report` 'best_per_task...' picks epochs on the dense "
                             f"validation metrics ({sorted(dense_setup.LOADERS)} only). "
                             f"Received: report={config.report!r}")
    dense_setup.conventions(config)   # config.metric_conventions, where given.
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
            update = build_update(config.rule.to_dict())
        except (ValueError, TypeError) as e:
            raise (TypeError if isinstance(e, TypeError) else ValueError)(
                f"config.rule: {e}") from e
        check_rule_reads_encoder(update, model)
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
    if g is not None and g.get("time_limit") is not None and not g.time_limit > 0:
        raise ValueError("`config.grouping.time_limit` must be a positive number of seconds "
                         f"(None: the selection's default). Received: time_limit={g.time_limit!r}")
    tasks = config_tasks(config) if data is not None and "name" in data else None
    if tasks is not None:
        check_grouping(config, tasks)
        unknown = sorted(set((model.get("loss_weights") or {}) if model is not None else ())
                         - set(tasks))
        if unknown:
            raise ValueError(f"`config.model.loss_weights` names tasks that do not exist: "
                             f"{unknown}; the tasks are {tasks}. Received: loss_weights="
                             f"{dict(model.loss_weights)}")


def _check_lr_schedule(config):
    """``config.lr_schedule`` as the runner builds it (``components.lr_schedule_callback``),
    refused beside ``optimizer.halve_every_epochs``: the schedule sets a rate variable, which
    a Keras ``LearningRateSchedule`` does not have."""
    schedule = lr_schedule_callback(config)
    optimizer = config.get("optimizer")
    halve = optimizer.get("halve_every_epochs") if optimizer is not None else None
    if schedule is not None and halve:
        raise ValueError("`config.lr_schedule` sets the learning rate itself: leave "
                         "config.optimizer.halve_every_epochs at 0. Received: "
                         f"lr_schedule.name={config.lr_schedule.name!r}, "
                         f"halve_every_epochs={halve!r}")


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


def _check_attribute_monitor(config):
    """``early_stopping_monitor="[val_]all_attributes_<kind>"`` (``003``'s selection,
    ``experiment.attribute_score_logger``) needs ``<kind>_logits`` compiled for every task
    and mode "max" (Keras's "auto" takes a name without "acc" for a loss: "min")."""
    monitor = str(config.get("early_stopping_monitor") or "").removeprefix("val_")
    if not monitor.startswith("all_attributes_"):
        return
    kind = monitor.removeprefix("all_attributes_")
    metrics = config.get("metrics") or {}
    if kind not in ("precision", "recall", "fscore") or not metrics or any(
            f"{kind}_logits" not in list(names) for names in metrics.values()):
        raise ValueError(
            f"`config.early_stopping_monitor={config.early_stopping_monitor!r}` is the mean "
            "over every attribute of every task's precision_logits, recall_logits or "
            f"fscore_logits: config.metrics must give '{kind}_logits' to every task. "
            f"Received: metrics={dict(metrics)!r}")
    if config.get("early_stopping_mode") != "max":
        raise ValueError(
            f"`config.early_stopping_monitor={config.early_stopping_monitor!r}` is higher-"
            "is-better: set config.early_stopping_mode='max'. Received: "
            f"early_stopping_mode={config.get('early_stopping_mode')!r}")
