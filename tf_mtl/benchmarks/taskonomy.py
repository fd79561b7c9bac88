"""Taskonomy network step times and ``002``'s training cost (``--bench=taskonomy``).

Standley's network (``tf_mtl.dense.taskonomy_net``) with its losses (rotated L1 for depth
and normals) and SGD (momentum 0.9, weight decay 1e-4) on 256x256 batches, the compiled
train step driven by ``train_on_batch`` on one in-memory batch, the minimum over rounds,
one model at a time. Rows: the full-size encoder with 5 decoders (a 5-task network) and
with 1 decoder (a single), the half-size encoder with 1 decoder (``002``'s half-size single).

Cost of ``002``'s setting (31 full-size networks, one per task subset, and 5 half-size
singles, each trained ``EPOCHS`` passes over 3,974,199 training images; ``002`` §4.1-4.2:
"typically 4-8 passes", here 6): a full network with ``k`` decoders costs
``t(1) + (k - 1) (t(5) - t(1)) / 4`` per image (linear in the decoders, from the two
measured rows). The CPU-hours use this device's measured times. No GPU is measured here;
the GPU-hours are an estimate that keeps the measured ratios between networks and anchors
them on ``002``'s own figure: a full-size encoder's inference takes about 4 ms per image on
an RTX 2080 Ti, a training step about 3x an inference (forward + backward) — the estimate
is only as good as that anchor. Where TensorFlow sees a GPU, its measured rows come too.
"""

import math
import time

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.dense.taskonomy_losses import make_taskonomy_losses
from tf_mtl.dense.taskonomy_net import TaskonomyEncoder, taskonomy_decoders
from tf_mtl.model import MultiTaskModel

SIZE = 256
TRAIN_IMAGES = 3_974_199          # 002 §4.1.
EPOCHS = 6                        # 002 §4.2: "typically 4-8 passes".
ANCHOR_INFERENCE_S = 0.004        # 002 §4.2: a full-size encoder, per image, RTX 2080 Ti.
TRAIN_OVER_INFERENCE = 3.0        # Forward + backward ~ 3 forwards.
CASES = {"full, 5 decoders": ("full", "sdnke"), "full, 1 decoder": ("full", "d"),
         "half, 1 decoder": ("half", "d")}


def _model(size, tasks):
    keras.utils.set_random_seed(0)
    model = MultiTaskModel(TaskonomyEncoder(num_tasks=len(tasks), size=size),
                           taskonomy_decoders(tasks), make_taskonomy_losses(tasks, True))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=1e-4))
    return model


def _batch(tasks, batch):
    rng = np.random.default_rng(0)
    shape = (batch, SIZE, SIZE)
    channels = {"d": 1, "n": 3, "k": 1, "e": 1}
    y = {t: (rng.integers(0, 18, shape).astype(np.int32) if t == "s" else
             rng.normal(size=shape + (channels[t],)).astype(np.float32)) for t in tasks}
    w = {t: np.ones(shape, np.float32) for t in tasks}
    return rng.random(shape + (3,), dtype=np.float32), y, w


def _best(fn, steps, repeats):
    fn()   # Tracing and the optimizer's slots, untimed.
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            out = fn()
        np.asarray(tf.nest.flatten(out)[0])
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def _time_case(size, tasks, batch, steps, repeats):
    """Seconds per train step of one network; it is freed when this returns."""
    model = _model(size, tasks)
    x, y, w = (tf.nest.map_structure(tf.constant, p) for p in _batch(tasks, batch))
    return _best(lambda: model.train_on_batch(x, y, sample_weight=w), steps, repeats)


def _times(batch, steps, repeats):
    return {name: _time_case(size, tasks, batch, steps, repeats)
            for name, (size, tasks) in CASES.items()}


def setting_image_seconds(per_image):
    """Seconds per training image summed over ``002``'s 36 networks (module doc)."""
    single = per_image["full, 1 decoder"]
    per_decoder = (per_image["full, 5 decoders"] - single) / 4
    full = sum(math.comb(5, k) * (single + (k - 1) * per_decoder) for k in range(1, 6))
    return full + 5 * per_image["half, 1 decoder"]


def taskonomy_benchmark(batch=4, steps=2, repeats=2, **_):
    """The rows on the CPU (and a measured GPU where TensorFlow sees one), with ``002``'s
    setting's hours: measured on the device, and the GPU estimate of the module doc."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"`batch` must be an int >= 1. Received: batch={batch!r}")
    devices = ["CPU"] + (["GPU"] if tf.config.list_physical_devices("GPU") else [])
    rows = []
    for device in devices:
        with tf.device(f"/{device}:0"):
            times = _times(batch, steps, repeats)
        per_image = {name: seconds / batch for name, seconds in times.items()}
        hours = EPOCHS * TRAIN_IMAGES * setting_image_seconds(per_image) / 3600
        for name, seconds in times.items():
            rows.append((device, name, f"{seconds:.3f}", f"{per_image[name] * 1000:.1f}", "-"))
        rows.append((device, "002's 36 networks, measured here", "-", "-", f"{hours:,.0f}"))
        if device == "CPU":
            scale = ANCHOR_INFERENCE_S * TRAIN_OVER_INFERENCE / per_image["full, 1 decoder"]
            estimate = hours * scale
            rows.append(("GPU (estimate)", "002's 36 networks, anchored on 002's 4 ms", "-", "-",
                         f"{estimate:,.0f}"))
    return ("device", f"train step (256×256, batch {batch})", "s/step", "ms/image",
            "002 setting (h)"), rows
