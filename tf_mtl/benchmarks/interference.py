"""Time of ``000``'s metrics and of a multi-domain train step
(``python -m launch.benchmark --bench=interference``).

Rows:

* ``interference_transfer`` on two boolean vectors of 10,000 samples;
* ``linear_cka`` between two 10,000 x 512 float32 representations (float64 inside);
* the train step of a two-task ``MultiTaskModel`` (``000``'s ResNet-32 with
  GroupNorm and Mish, 32x32x3, 100 classes per head, SGD momentum 0.9) on a
  multi-domain batch ``{a: 64 rows, b: 64 rows}`` next to the plain step on one
  batch of 128 rows that both heads read (the same total batch through the
  encoder), compiled, driven by ``train_on_batch`` on tensors already in memory.

The metric times are medians over ``repeats``; the two train steps of a width are
timed in alternating rounds of ``steps`` steps (``repeats`` rounds each, after a
warm-up) and each reports its fastest round, so that load from other processes
on a shared machine enters both alike.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.interference import metrics
from tf_mtl.encoders import ResNetCifar
from tf_mtl.model import MultiTaskModel


def _median_seconds(fn, repeats, inner=1):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return float(np.median(times))


def _model(width):
    keras.utils.set_random_seed(0)
    model = MultiTaskModel(
        ResNetCifar(depth=32, width=width),
        {t: keras.layers.Dense(100) for t in "ab"},
        {t: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for t in "ab"})
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return model


def interference_benchmark(steps=5, repeats=3, widths=(0.25, 0.5), samples=10_000,
                           features=512, batch_size=128, **_):
    """Returns ``(columns, rows)``; a row is ``(what, case, seconds, ratio)``."""
    rng = np.random.default_rng(0)
    rows = []
    single, multi = rng.random(samples) < 0.6, rng.random(samples) < 0.65
    t = _median_seconds(lambda: metrics.interference_transfer(single, multi), repeats, 20)
    rows.append(("interference_transfer", f"{samples} samples", f"{t:.2e}", ""))
    x = rng.normal(size=(samples, features)).astype(np.float32)
    y = (x @ rng.normal(size=(features, features)) * 0.1
         + rng.normal(size=(samples, features))).astype(np.float32)
    t = _median_seconds(lambda: metrics.linear_cka(x, y), repeats)
    rows.append(("linear_cka", f"{samples} x {features}, both", f"{t:.3f}", ""))
    half = batch_size // 2
    images = tf.constant(rng.random((batch_size, 32, 32, 3), dtype=np.float32))
    labels = tf.constant(rng.integers(0, 100, batch_size))
    for width in widths:
        plain, domains = _model(width), _model(width)
        plain_batch = (images, {"a": labels, "b": labels})
        domain_batch = ({"a": images[:half], "b": images[half:]},
                        {"a": labels[:half], "b": labels[half:]})
        cases = {"plain": (plain, plain_batch), "multi-domain": (domains, domain_batch)}
        for model, (bx, by) in cases.values():
            for _ in range(2):   # Warm-up: tracing and the first steps.
                model.train_on_batch(bx, by)
        rounds = {name: [] for name in cases}
        for _ in range(repeats):
            for name, (model, (bx, by)) in cases.items():
                start = time.perf_counter()
                for _ in range(steps):
                    model.train_on_batch(bx, by)
                rounds[name].append((time.perf_counter() - start) / steps)
        times = {name: min(r) for name, r in rounds.items()}
        base = times["plain"]
        rows.append(("train step", f"ResNet-32 {width:g}x, plain: one batch of {batch_size}",
                     f"{base:.3f}", "1.00"))
        rows.append(("train step", f"ResNet-32 {width:g}x, multi-domain: 2 x {half}",
                     f"{times['multi-domain']:.3f}", f"{times['multi-domain'] / base:.2f}"))
    return ("what", "case", "seconds", "ratio to plain"), rows
