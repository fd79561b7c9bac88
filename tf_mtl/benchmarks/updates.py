"""Step time of every update rule next to ``EqualWeights`` and next to its pass floor
(``python -m launch.benchmark --bench=updates``).

Cases: 9 tasks on ResNet-lite (64×64×3, batch 32, two-class heads) and 2 tasks
on Lin et al.'s LeNet (36×36×1, batch 256, ten-class heads), SGD momentum 0.9,
the compiled train step driven by ``train_on_batch`` on an in-memory batch; each
rule's time is the minimum over rounds that time every rule in turn.

The floor of a rule, in units of the plain step (1 forward + 1 backward),
measured on the same model rather than assumed:
``t(1 forward + m per-task backwards) / t(plain)`` for rules that need the
per-task gradients (GradNorm on all shared variables, PCGrad, MGDA on the
shared parameters, IT-MTL), plus ``k · t(1 forward) / t(plain)`` for IT-MTL's
``k`` exact candidates (first order: no forward); 1 for rules that need none.
"""

import time

import keras
import numpy as np
import tensorflow as tf

from tf_mtl import updates
from tf_mtl.encoders import LeNet, ResNetLite
from tf_mtl.gradients import record_step
from tf_mtl.model import MultiTaskModel


def _rules(tasks):
    pair = tasks[:2]
    return {
        "EqualWeights": (updates.EqualWeights, False, 0),
        "UncertaintyWeights": (updates.UncertaintyWeights, False, 0),
        "CoV": (updates.CoV, False, 0),
        "DWA": (updates.DWA, False, 0),
        # m partial backwards (features -> last kernel): a floor between 1 and the per-task
        # one that is not measured here.
        "GradNorm (last layer)": (updates.GradNorm, None, 0),
        "GradNorm (all shared)": (lambda: updates.GradNorm(on="all_shared"), True, 0),
        "PCGrad": (updates.PCGrad, True, 0),
        "MGDA-UB": (updates.MGDA, False, 0),
        "MGDA (shared)": (lambda: updates.MGDA(upper_bound=False), True, 0),
        "IT-PCGrad exact": (lambda: updates.ITMTL(["all", updates.PCGrad()]), True, 2),
        "IT-PCGrad first order": (lambda: updates.ITMTL(["all", updates.PCGrad()],
                                                        lookahead="first_order"), True, 0),
        "IT-MTL exact, 2 tasks + all": (
            lambda: updates.ITMTL([pair[0], pair[1], "all"]), True, 3),
    }


def _model(encoder, num_tasks, classes, update):
    keras.utils.set_random_seed(0)
    tasks = [f"task{i}" for i in range(num_tasks)]
    model = MultiTaskModel(
        encoder(), {t: keras.layers.Dense(classes) for t in tasks},
        {t: keras.losses.CategoricalCrossentropy(from_logits=True) for t in tasks},
        update=update)
    model.compile(optimizer=keras.optimizers.SGD(5e-4, momentum=0.9))
    return model


def _batch(num_tasks, batch_size, shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, *shape), dtype=np.float32)
    y = {f"task{i}": np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch_size)]
         for i in range(num_tasks)}
    return x, y


def _floors(encoder, num_tasks, classes, batch, steps, repeats):
    """``(per-task floor, one forward)`` in units of the plain step's passes, measured."""
    model = _model(encoder, num_tasks, classes, None)
    x, y = batch
    x, y = tf.constant(x), {t: tf.constant(v) for t, v in y.items()}
    model.train_on_batch(x, y)
    one = tf.function(lambda: record_step(model, x, y).weighted_gradient(), autograph=False)
    each = tf.function(lambda: record_step(model, x, y).per_task(), autograph=False)
    fwd = tf.function(lambda: model(x, training=True), autograph=False)
    for fn in (one, each, fwd):
        fn()  # trace
    best = [float("inf")] * 3
    for _ in range(repeats):  # interleaved, minimum: as the rules are timed
        for i, fn in enumerate((one, each, fwd)):
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / steps)
    return best[1] / best[0], best[2] / best[0]


def _interleaved_min(models, batch, steps, repeats, warmup=2):
    """Seconds per step of each model: the minimum over ``repeats`` rounds, each round
    timing every model in turn, so that load from other processes on a shared machine
    (which only ever adds time) hits every rule alike and drops out of the minimum."""
    x, y = batch
    x, y = tf.constant(x), {t: tf.constant(v) for t, v in y.items()}
    for model in models:
        for _ in range(warmup):
            model.train_on_batch(x, y)
    best = [float("inf")] * len(models)
    for _ in range(repeats):
        for i, model in enumerate(models):
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)
            best[i] = min(best[i], (time.perf_counter() - start) / steps)
    return best


CASES = {"resnet": ("9 tasks, ResNet-lite 64×64, batch 32", ResNetLite, 9, 2, (64, 64, 3), 32),
         "lenet": ("2 tasks, LeNet 36×36, batch 256", LeNet, 2, 10, (36, 36, 1), 256)}


def updates_benchmark(steps=5, repeats=3, cases=("resnet", "lenet"), **_):
    rows = []
    for case in cases:
        label, encoder, m, classes, shape, batch_size = CASES[case]
        batch = _batch(m, batch_size, shape, classes)
        per_task, forward = _floors(encoder, m, classes, batch, steps, repeats)
        rules = _rules([f"task{i}" for i in range(m)])
        models = [_model(encoder, m, classes, make()) for make, _, _ in rules.values()]
        seconds = _interleaved_min(models, batch, steps, repeats)
        for (name, (_, needs_per_task, candidates)), s in zip(rules.items(), seconds):
            ratio = s / seconds[0]
            if needs_per_task is None:
                rows.append((label, name, f"{1000 * s:.1f}", f"{ratio:.2f}", "-", "-"))
                continue
            floor = (per_task if needs_per_task else 1.0) + candidates * forward
            rows.append((label, name, f"{1000 * s:.1f}", f"{ratio:.2f}", f"{floor:.2f}",
                         f"{ratio / floor:.2f}"))
    return ("case", "rule", "ms/step", "× EqualWeights", "floor", "× floor"), rows
