"""SegNet-MTAN step times on NYUv2-sized batches (``python -m launch.benchmark --bench=dense``).

``001`` Table 1's network and batch: SegNet-MTAN (filters 64..512, 3 tasks: 13-class
segmentation, depth, normals) on 288x384 images, batch 2, Adam 1e-4, the dense heads and
masked losses with per-pixel validity as sample weights. Rows, each the compiled train step
driven by ``train_on_batch`` on one in-memory batch, the minimum over rounds, one case after
the other (each model freed before the next is built):

* plain: equal weights, one forward and one backward;
* IT-MTL, 3 candidates (each task's gradient): the per-task gradients plus 3 exact Adam
  lookahead forwards;
* exact transference every step (``Transference(order=1, every=1)``): the per-task
  gradients plus one lookahead forward per task, scoring every pair;
* the evaluation forward (inference, batch 2), for the epoch estimate.

Each row's ratio is to the plain step on the same device. ``Table 1 (h)`` estimates one run
of ``configs/nyuv2.py`` from the measured times: 100 epochs x (398 train steps of batch 2 on
795 images + 327 evaluation forwards on 654), data loading excluded. A GPU row set is added
when TensorFlow sees a GPU (none on a CPU-only machine: no GPU estimate can be measured there).
"""

import time

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.dense.heads import dense_head
from tf_mtl.dense.losses import DepthL1, NormalCosine, SegmentationCrossEntropy
from tf_mtl.dense.mtan import SegNetMTAN
from tf_mtl.model import MultiTaskModel
from tf_mtl.transference import Transference
from tf_mtl.updates import ITMTL

TASKS = ("depth", "normal", "segmentation")
HEIGHT, WIDTH, BATCH, CLASSES = 288, 384, 2, 13
TRAIN_STEPS, EVAL_STEPS, EPOCHS = 398, 327, 100   # NYUv2: 795 / 654 images, batch 2; D.5.


def _model(update=None, probes=None):
    keras.utils.set_random_seed(0)
    heads = {"segmentation": dense_head("segmentation", CLASSES), "depth": dense_head("depth"),
             "normal": dense_head("normal")}
    losses = {"segmentation": SegmentationCrossEntropy(), "depth": DepthL1(),
              "normal": NormalCosine()}
    model = MultiTaskModel(SegNetMTAN(list(TASKS)), heads, losses, update=update, probes=probes)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8))
    return model


def _batch(seed=0):
    rng = np.random.default_rng(seed)
    shape = (BATCH, HEIGHT, WIDTH)
    normal = rng.normal(size=shape + (3,)).astype(np.float32)
    y = {"segmentation": rng.integers(-1, CLASSES, shape).astype(np.int32),
         "depth": rng.uniform(0.5, 10.0, shape + (1,)).astype(np.float32),
         "normal": normal / np.linalg.norm(normal, axis=-1, keepdims=True)}
    weights = {"segmentation": (y["segmentation"] >= 0).astype(np.float32),
               "depth": np.ones(shape, np.float32), "normal": np.ones(shape, np.float32)}
    x = rng.random(shape + (3,), dtype=np.float32)
    return x, y, weights


# --cases key -> (row name, model factory).
CASES = {"plain": ("plain (equal weights)", lambda: _model()),
         "itmtl": ("IT-MTL, 3 candidates (exact)", lambda: _model(ITMTL(list(TASKS)))),
         "transference": ("exact transference every step", lambda: _model(
             probes=[Transference(order=1, every=1, method="exact")]))}


def _best(fn, steps, repeats):
    """Seconds per call of ``fn``: one untimed call (tracing; the optimizer's slots exist
    from ``build``), then the minimum over ``repeats`` rounds of ``steps`` calls."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            out = fn()
        np.asarray(tf.nest.flatten(out)[0])   # Wait for the device.
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def _times(cases, steps, repeats):
    """``{case: seconds per train step}`` and the evaluation forward's seconds. One model
    at a time (three full-size SegNet-MTANs with Adam state and lookaheads do not fit a
    small machine's memory together), so load from other processes is not shared alike."""
    batch = tuple(tf.nest.map_structure(tf.constant, part) for part in _batch())
    best = {}
    for key in cases:
        name, make = CASES[key]
        best.update(_time_case(name, make(), batch, steps, repeats))
    return best


def _time_case(name, model, batch, steps, repeats):
    """``{name: s/step}`` (and the plain model's evaluation forward); the model is freed
    when this returns."""
    x, y, w = batch
    out = {name: _best(lambda: model.train_on_batch(x, y, sample_weight=w), steps, repeats)}
    if name.startswith("plain"):
        out["evaluation forward"] = _best(tf.function(lambda: model(x, training=False)),
                                          steps, repeats)
    return out


def dense_benchmark(steps=2, repeats=2, cases=tuple(CASES), **_):
    """The rows of ``cases`` (keys of ``CASES``; ``"plain"`` is always run, the ratios'
    denominator) on the CPU, and on the GPU where TensorFlow sees one."""
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        raise ValueError(f"Unknown dense benchmark cases; known: {sorted(CASES)}. "
                         f"Received: cases={list(cases)!r}")
    cases = ["plain"] + [c for c in CASES if c in cases and c != "plain"]
    devices = ["CPU"] + (["GPU"] if tf.config.list_physical_devices("GPU") else [])
    rows = []
    for device in devices:
        with tf.device(f"/{device}:0"):
            times = _times(cases, steps, repeats)
        plain, evaluation = times["plain (equal weights)"], times["evaluation forward"]
        for name, seconds in times.items():
            if name == "evaluation forward":
                rows.append((device, name, f"{seconds:.3f}", "-", "-"))
                continue
            hours = EPOCHS * (TRAIN_STEPS * seconds + EVAL_STEPS * evaluation) / 3600
            rows.append((device, name, f"{seconds:.3f}", f"{seconds / plain:.2f}",
                         f"{hours:.1f}"))
    return ("device", "step (SegNet-MTAN 288×384, batch 2)", "s/step", "× plain",
            "Table 1 run (h)"), rows
