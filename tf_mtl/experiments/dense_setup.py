"""Dense prediction in configs: the NYUv2 / Cityscapes loaders, dense heads, losses and metrics.

What ``config.data.name = "nyuv2" | "cityscapes"`` brings to a run (``experiment.py``
calls these; ``components.py`` lists the names):

* **data**: ``config.data`` holds the loader's arguments (``tf_mtl.data.nyuv2`` /
  ``cityscapes``: ``root``, ``tasks``, ``mask``, ``binary_classes``, ``augment``,
  ``batch_size``, ``shuffle``, ``seed``; Cityscapes also ``num_classes``). A missing or
  malformed ``root`` gets the loader's own error (the expected layout and where the release
  is published). ``generate`` (``{"n_train", "n_val", "height", "width"}``, the
  ``:runlocal`` configs) writes a small release in the exact layout to a temporary folder
  (``tf_mtl.data.dense_files``, once per process and size) and reads it instead: offline.
* **heads and losses** per task kind (``task_spec``): segmentation ``dense_head
  ("segmentation", C)`` + ``SegmentationCrossEntropy`` (``"segmentation_cross_entropy"``),
  depth ``DepthL1``, normals ``NormalCosine``, ``003``'s per-class tasks ``"binary"`` heads
  + ``BinaryPixelCrossEntropy``. The per-pixel validity travels as each task's sample
  weights (the loaders yield them; ``mask`` chooses where the normals' comes from).
* **Taskonomy** (``config.data.name = "taskonomy"``, ``tf_mtl.data.taskonomy``, ``002``):
  tasks are letters among ``"sdnke"``, heads ``TaskonomyDecoder``, losses
  ``tf_mtl.dense.taskonomy_losses`` (``config.data.rotate_loss``, a runner field like
  ``generate``, picks the rotated L1 for depth and normals), the encoder
  ``"taskonomy_xception"`` gets ``num_tasks``; ``generate`` writes square buildings
  (``tf_mtl.data.taskonomy_files.write_generated``) and reads them by name.
* **metrics** by name in ``config.metrics`` (``DENSE_METRICS``: ``miou``,
  ``pixel_accuracy``, ``abs_err``, ``rel_err``, ``mean``, ``median``, ``within_11.25``,
  ``within_22.5``, ``within_30``), with ``num_classes`` from the data and the conventions
  of ``config.metric_conventions`` (``{"segmentation": "confusion" | "mtan_legacy" |
  "binary", "depth": "batch_mean" | "pixel_mean", "normal": ...}``; see
  ``tf_mtl.dense.metrics``). A per-batch convention's batch is the validation batch,
  ``config.data.batch_size``.

Example:
    >>> task_spec("nyuv2", {})["normal"]
    (3, 'normal_cosine')
    >>> config_tasks("cityscapes", {"binary_classes": True})
    ['class_0', 'class_1', 'class_2', 'class_3', 'class_4', 'class_5', 'class_6', 'depth']
"""

import functools
import inspect
import os
import tempfile

import keras

from tf_mtl.data import dense as dense_data
from tf_mtl.data import dense_files, taskonomy_files
from tf_mtl.data.taskonomy import parse_tasks as taskonomy_tasks, taskonomy as taskonomy_loader
from tf_mtl.dense import losses as dense_losses
from tf_mtl.dense.taskonomy_losses import TaskonomyL1, TaskonomyRotateL1
from tf_mtl.dense.heads import dense_head
from tf_mtl.dense.taskonomy_net import TASK_CHANNELS as TASKONOMY_CHANNELS, TaskonomyDecoder
from tf_mtl.dense.streaming_metrics import (DEPTH_KINDS, NORMAL_KINDS, PIXEL_CONVENTIONS,
                                            SEGMENTATION_CONVENTIONS, SEGMENTATION_KINDS,
                                            DepthError, NormalError, SegmentationScore)

LOADERS = {"nyuv2": dense_data.nyuv2, "cityscapes": dense_data.cityscapes,
           "taskonomy": taskonomy_loader}
GENERATORS = {"nyuv2": dense_files.write_nyuv2_like,
              "cityscapes": dense_files.write_cityscapes_like,
              "taskonomy": taskonomy_files.write_generated}
RUNNER_FIELDS = {"taskonomy": ("rotate_loss",)}   # Besides generate: read here, not by the loader.
# Loss name -> (loss class, head kind).
DENSE_LOSSES = {
    "segmentation_cross_entropy": (dense_losses.SegmentationCrossEntropy, "segmentation"),
    "depth_l1": (dense_losses.DepthL1, "depth"),
    "normal_cosine": (dense_losses.NormalCosine, "normal"),
    "binary_pixel_cross_entropy": (dense_losses.BinaryPixelCrossEntropy, "binary"),
    "taskonomy_cross_entropy": (functools.partial(dense_losses.SegmentationCrossEntropy,
                                                  ignore_index=0), "taskonomy"),
    "taskonomy_l1": (TaskonomyL1, "taskonomy"),
    "taskonomy_rotate_l1": (TaskonomyRotateL1, "taskonomy"),
}
TASK_LOSSES = {"segmentation": "segmentation_cross_entropy", "depth": "depth_l1",
               "normal": "normal_cosine"}
# Metric name -> the task kind it scores.
DENSE_METRICS = {**{k: "segmentation" for k in SEGMENTATION_KINDS},
                 **{k: "depth" for k in DEPTH_KINDS}, **{k: "normal" for k in NORMAL_KINDS}}
CONVENTIONS = {"segmentation": SEGMENTATION_CONVENTIONS, "depth": PIXEL_CONVENTIONS,
               "normal": PIXEL_CONVENTIONS}
DEFAULT_CONVENTIONS = {"segmentation": "confusion", "depth": "batch_mean",
                       "normal": "batch_mean"}
GENERATE_FIELDS = ("n_train", "n_val", "height", "width")


def loader_fields(name):
    """The config fields of loader ``name`` (its keyword arguments, ``root`` and ``generate``)."""
    parameters = inspect.signature(LOADERS[name]).parameters
    return (tuple(p for p in parameters if p != "split") + ("generate",)
            + RUNNER_FIELDS.get(name, ()))


def _defaults(name):
    return {p.name: p.default for p in inspect.signature(LOADERS[name]).parameters.values()
            if p.default is not inspect.Parameter.empty}


def config_tasks(name, fields):
    """The sorted task names loader ``name`` yields for config fields ``fields`` (no data read)."""
    options = {**_defaults(name), **fields}
    if name == "taskonomy":
        return sorted(taskonomy_tasks(options["tasks"]))
    tasks = options["tasks"]
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    if options["binary_classes"] and "segmentation" in tasks:
        classes = dense_data.NYUV2_CLASSES if name == "nyuv2" else options["num_classes"]
        tasks = [t for t in tasks if t != "segmentation"] + dense_data.class_task_names(classes)
    return sorted(tasks)


def task_spec(name, fields):
    """``{task: (output channels, loss name)}`` of loader ``name`` with config ``fields``."""
    options = {**_defaults(name), **fields}
    if name == "taskonomy":
        dense = "taskonomy_rotate_l1" if options.get("rotate_loss") else "taskonomy_l1"
        return {t: (TASKONOMY_CHANNELS[t], "taskonomy_cross_entropy" if t == "s"
                    else dense if t in "dn" else "taskonomy_l1")
                for t in config_tasks(name, fields)}
    classes = dense_data.NYUV2_CLASSES if name == "nyuv2" else options["num_classes"]
    spec = {}
    for task in config_tasks(name, fields):
        if task.startswith("class_"):
            spec[task] = (1, "binary_pixel_cross_entropy")
        else:
            spec[task] = ({"segmentation": classes, "depth": 1, "normal": 3}[task],
                          TASK_LOSSES[task])
    return spec


_GENERATED = {}  # (name, sizes) -> the folder this process wrote.


def generated_root(name, generate):
    """A small release of ``name`` in the exact layout, written once per process and size."""
    generate = dict(generate)
    unknown = sorted(set(generate) - set(GENERATE_FIELDS))
    if unknown:
        raise ValueError(f"`config.data.generate` takes {list(GENERATE_FIELDS)}. "
                         f"Received: generate={generate!r}")
    key = (name, tuple(sorted(generate.items())))
    if key not in _GENERATED:
        root = os.path.join(tempfile.mkdtemp(prefix=f"tf_mtl_{name}_"), name)
        _GENERATED[key] = GENERATORS[name](root, **generate)
    return _GENERATED[key]


def load(name, split, kwargs):
    """``(dataset, {"task_spec": ...})`` of loader ``name`` for ``split``; ``kwargs`` are the
    config's non-empty data fields (``root`` absent: the loader refuses ``""`` by name)."""
    kwargs = dict(kwargs)
    generate = kwargs.pop("generate", None)
    root = generated_root(name, generate) if generate else kwargs.pop("root", "")
    kwargs.pop("root", None)
    spec = task_spec(name, kwargs)
    for field in RUNNER_FIELDS.get(name, ()):
        kwargs.pop(field, None)
    if name == "taskonomy" and generate:
        kwargs.setdefault("buildings", taskonomy_files.GENERATED_BUILDINGS)
    return LOADERS[name](root, split, **kwargs), {"task_spec": spec}


def make_loss(name):
    """The loss object of a ``DENSE_LOSSES`` name."""
    return DENSE_LOSSES[name][0]()


def make_head(task, units, loss):
    """A dense head where ``loss`` is a dense loss, else Keras ``Dense(units)``."""
    if loss in DENSE_LOSSES and DENSE_LOSSES[loss][1] == "taskonomy":
        return TaskonomyDecoder(units, name=f"head_{task}")
    if loss in DENSE_LOSSES:
        return dense_head(DENSE_LOSSES[loss][1], units, name=f"head_{task}")
    return keras.layers.Dense(units, name=f"head_{task}")


def encoder_arguments(kwargs, encoder, tasks):
    """SegNet-MTAN's ``tasks`` (its attention modules per task) filled in from the data."""
    if encoder == "segnet_mtan":
        return {**kwargs, "tasks": list(kwargs.get("tasks") or tasks)}
    if encoder == "taskonomy_xception":   # Its gradient scale is 1/sqrt(decoders).
        return {**kwargs, "num_tasks": len(tasks)}
    return kwargs


def conventions(config):
    """``{kind: convention}`` of ``config.metric_conventions``, checked, defaults filled in."""
    given = config.get("metric_conventions") or {}
    given = given.to_dict() if hasattr(given, "to_dict") else dict(given)
    unknown = sorted(set(given) - set(CONVENTIONS))
    if unknown:
        raise ValueError(f"`config.metric_conventions` takes the kinds {sorted(CONVENTIONS)}. "
                         f"Received: metric_conventions={given!r}")
    for kind, value in given.items():
        if value not in CONVENTIONS[kind]:
            raise ValueError(f"`config.metric_conventions.{kind}` must be one of "
                             f"{CONVENTIONS[kind]}. Received: {kind}={value!r}")
    return {**DEFAULT_CONVENTIONS, **given}


def make_metric(name, units, chosen):
    """The streaming metric ``name`` (``DENSE_METRICS``) for a task with ``units`` outputs
    under the conventions ``chosen`` (``conventions``)."""
    kind = DENSE_METRICS[name]
    if kind == "segmentation":
        return SegmentationScore(name, num_classes=units, convention=chosen["segmentation"])
    metric = DepthError if kind == "depth" else NormalError
    return metric(name, convention=chosen[kind])
