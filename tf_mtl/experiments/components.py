"""What a config can name: encoders, losses, metrics, optimizers, datasets and learning-rate
schedules by name, and how an epoch is cut (``epoch_batches``).

``tf_mtl.experiments.experiment`` builds a run from these tables and
``tf_mtl.experiments.config_checks`` checks a config against them before
anything is built.
"""

import inspect
import numbers

import keras

from tf_mtl import data as data_lib
from tf_mtl import encoders
from tf_mtl.dense.mtan import SegNetMTAN
from tf_mtl.dense.segnet import FILTERS as SEGNET_FILTERS, SegNet
from tf_mtl.dense.taskonomy_net import TaskonomyEncoder
from tf_mtl.experiments import dense_setup
from tf_mtl.experiments.attribute_metrics import AttributeScore
from tf_mtl.experiments.loss_plateau import LossPlateauHalving
from tf_mtl.transference import Transference

ENCODERS = {"mlp": encoders.MLP, "resnet_lite": encoders.ResNetLite,
            "resnet18": encoders.ResNet18, "lenet": encoders.LeNet, "etrnlp": encoders.ETRNLPNet,
            "movielens": data_lib.MovieLensEncoder,
            # Dense prediction (tf_mtl.dense): SegNet-MTAN's tasks come from the data.
            "segnet": SegNet, "segnet_mtan": SegNetMTAN,
            # 002's Xception-style Taskonomy encoder (its decoders are the heads).
            "taskonomy_xception": TaskonomyEncoder}


LOSSES = {  # Names configs use for losses that need arguments.
    "categorical_crossentropy_logits":
        lambda: keras.losses.CategoricalCrossentropy(from_logits=True),
    "sparse_categorical_crossentropy_logits":
        lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    "binary_crossentropy_logits": lambda: keras.losses.BinaryCrossentropy(from_logits=True),
    # Dense losses, a mean over valid pixels (tf_mtl.dense.losses; dense_setup).
    **{name: loss for name, (loss, _) in dense_setup.DENSE_LOSSES.items()},
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
                      "resnet18": ("width", 64), "lenet": ("hidden", 50),
                      "segnet": ("filters", SEGNET_FILTERS),
                      "segnet_mtan": ("filters", SEGNET_FILTERS),
                      # A cost in percent: width 0.5 is 002's half-size network.
                      "taskonomy_xception": ("size", 100)}


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
    # MTAN's .npy releases (tf_mtl.data.nyuv2 / cityscapes); ``generate`` writes a small one.
    **{name: (loader, dense_setup.loader_fields(name))
       for name, loader in dense_setup.LOADERS.items()},
}


MULTI_MNIST_SPEC = {t: (10, "sparse_categorical_crossentropy_logits") for t in ("left", "right")}


# ``config.lr_schedule``: a callback setting the optimizer's rate during training, named by
# ``name``; the section's other fields are its arguments, and the run's
# ``config.data.batch_size`` its ``batch_size``. Absent, or name "", the rate is the
# optimizer's (constant, or ``optimizer.halve_every_epochs``).
LR_SCHEDULES = {"loss_plateau": LossPlateauHalving}   # 002's t-test halving.


def lr_schedule_callback(config):
    """The callback ``config.lr_schedule`` names, built (None without one); its fields are
    checked here (no TensorFlow op runs): an unknown name or field, or a value the
    callback refuses, is a ``ValueError`` naming the field."""
    section = config.get("lr_schedule")
    fields = dict(section.to_dict() if hasattr(section, "to_dict") else section or {})
    name = fields.pop("name", None)
    if name in (None, ""):
        return None
    check_known("learning-rate schedule", "lr_schedule.name", name, LR_SCHEDULES)
    cls = LR_SCHEDULES[name]
    accepted = sorted(set(inspect.signature(cls).parameters) - {"batch_size"})
    unknown = sorted(set(fields) - set(accepted))
    if unknown:
        raise unknown_fields("lr_schedule", name, unknown, fields,
                             f" (the batch size is config.data.batch_size); it takes {accepted}")
    data = config.get("data")
    batch_size = data.get("batch_size") if data is not None else None
    try:
        return cls(batch_size=batch_size, **fields)
    except ValueError as e:
        raise ValueError(f"config.lr_schedule ({name}): {e}") from e


def epoch_batches(epoch_split, batches):
    """Batches per epoch for a training pass of ``batches``: one pass, or, with
    ``config.epoch_split = {"over_batches": m, "parts": k}``, ``batches // k`` where the
    pass has more than ``m`` batches (``002``'s code: a fifth of the loader past 10,000
    batches, "each epoch of 20% of our data"); the data then runs on across epochs
    (``tf_mtl.data.epochs.epoch_stream``). Absent or empty, or ``parts`` 1: one pass.
    A field other than these two, or a value outside ``parts >= 1``, ``over_batches >= 0``
    (ints), is a ``ValueError`` naming it."""
    fields = dict(epoch_split.to_dict() if hasattr(epoch_split, "to_dict")
                  else epoch_split or {})
    unknown = sorted(set(fields) - {"over_batches", "parts"})
    if unknown:
        raise ValueError("`config.epoch_split` takes 'over_batches' and 'parts'. Received: "
                         + ", ".join(f"config.epoch_split.{k}={fields[k]!r}" for k in unknown))
    parts, over = fields.get("parts", 1), fields.get("over_batches", 0)
    for field, value, low in (("parts", parts, 1), ("over_batches", over, 0)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"`config.epoch_split.{field}` must be an int >= {low}. "
                             f"Received: {field}={value!r}")
    return max(1, batches // parts) if batches > over else batches


def check_known(what, field, value, known):
    """``ValueError`` "Unknown <what>. Received: config.<field>=..." unless ``value`` is a
    key of ``known``."""
    if value not in known:
        raise ValueError(f"Unknown {what}. Received: config.{field}={value!r}; known: "
                         f"{sorted(known)}")


def unknown_fields(section, name, unknown, values, what_it_takes):
    """The ``ValueError`` for fields of ``config.<section>`` that its ``name`` does not
    take: "config.<section>.name=... does not take the field(s) [...]<what_it_takes>.
    Received: config.<section>.<field>=..."."""
    return ValueError(f"config.{section}.name={name!r} does not take the field(s) {unknown}"
                      f"{what_it_takes}. Received: "
                      + ", ".join(f"config.{section}.{k}={values[k]!r}" for k in unknown))


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
        raise unknown_fields("data", name, unused, given, "; leave them empty ('') or set a "
                             f"field it takes: {sorted(accepted)}")
    return name, given


def transference_probe(t):
    """The ``Transference`` probe of ``config.transference`` (``t``), as ``build_model``
    adds it; its arguments are checked here (no TensorFlow op runs)."""
    return Transference(order=t.order, every=t.every, method=t.method,
                        scale_by_lr=t.scale_by_lr, update_heads=t.update_heads,
                        log_pairs=t.log_pairs, chunk_size=t.chunk_size)


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
