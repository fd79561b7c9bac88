"""Step time of every update rule next to ``EqualWeights`` and next to its pass floor
(``python -m launch.benchmark --bench=updates [--steps=5 --repeats=3]``).

Cases: 9 tasks on ResNet-lite (64×64×3, batch 32, two-class heads) and 2 tasks
on Lin et al.'s LeNet (36×36×1, batch 256, ten-class heads), SGD momentum 0.9,
the compiled train step driven by ``train_on_batch`` on an in-memory batch.

Timing: after tracing and one warm step, ``repeats`` rounds, each timing every
rule in turn (load from other processes, which only ever adds time, hits every
rule alike and drops out of the minimum); a rule's time is its minimum over the
rounds. Each round gives every rule about ``steps`` plain steps' worth of time
(``steps · t(plain) / t(rule)`` of its own steps, at least one), so a rule nine
times slower than the plain step is not run nine times as long; what remains is
mostly compiling some 30 train steps per case. ``--steps=1 --repeats=1`` is the
quickest (a smoke run, not a measurement).

The floor of a rule, in units of the plain step (1 forward + 1 backward), is
measured on the same model rather than assumed, by the same rounds. Its kind:

* ``"one"``: 1 — rules that need one weighted backward pass (loss weightings:
  weights from state or this step's losses);
* ``"per_task"``: ``t(1 forward + m per-task backwards) / t(plain)`` — rules
  that read the per-task shared gradients or their Gram matrix (PCGrad, MGDA
  on the shared parameters, CAGrad, Nash-MTL, UPGrad, ...), and the direction
  rules built from them (DB-MTL, MoCo);
* ``"features"``: ``t(1 forward + m backwards to the encoder's output + 1
  weighted backward) / t(plain)`` — rules on the Gram of the gradients w.r.t.
  the encoder's output (MGDA-UB, IMTL's default, Aligned-MTL-UB): ``m``
  backwards through the heads only. GradDrop is given this floor too: its
  ``m`` head backwards to the output, then one backward through the encoder
  with the masked cotangent;
* ``None``: not measured (GradNorm on the last shared layer: ``m`` partial
  backwards to the encoder's last kernel).

IT-MTL adds ``k · t(1 forward) / t(plain)`` for ``k`` exact-lookahead
candidates (first order: no forward); a direction candidate is scored in the
same lookahead chunks, one forward like a weight row.
"""

import functools
import time

import keras
import numpy as np
import tensorflow as tf

from tf_mtl import updates
from tf_mtl.encoders import LeNet, ResNetLite
from tf_mtl.gradients import record_step
from tf_mtl.model import MultiTaskModel


def _rules(tasks):
    """``{row: (make the rule, floor kind, exact IT-MTL candidates)}``; the first is the plain step."""
    pair = tasks[:2]
    return {
        "EqualWeights": (updates.EqualWeights, "one", 0),
        "UncertaintyWeights": (updates.UncertaintyWeights, "one", 0),
        "CoV": (updates.CoV, "one", 0),
        "DWA": (updates.DWA, "one", 0),
        "RLW": (updates.RLW, "one", 0),
        "GLS": (updates.GLS, "one", 0),
        "FAMO": (updates.FAMO, "one", 0),
        "STCH": (updates.STCH, "one", 0),
        "GradNorm (last layer)": (updates.GradNorm, None, 0),
        "GradNorm (all shared)": (lambda: updates.GradNorm(on="all_shared"), "per_task", 0),
        "PCGrad": (updates.PCGrad, "per_task", 0),
        "MGDA-UB": (updates.MGDA, "features", 0),
        "MGDA (shared)": (lambda: updates.MGDA(upper_bound=False), "per_task", 0),
        "CAGrad": (updates.CAGrad, "per_task", 0),
        "IMTL (features)": (updates.IMTL, "features", 0),
        "Nash-MTL": (updates.NashMTL, "per_task", 0),
        "Aligned-MTL": (updates.AlignedMTL, "per_task", 0),
        "Aligned-MTL-UB (features)": (lambda: updates.AlignedMTL(on="features"), "features", 0),
        "UPGrad": (updates.UPGrad, "per_task", 0),
        "DualProj": (updates.DualProj, "per_task", 0),
        "ConFIG": (updates.ConFIG, "per_task", 0),
        "GradVac": (updates.GradVac, "per_task", 0),
        "FairGrad": (updates.FairGrad, "per_task", 0),
        "ExcessMTL": (updates.ExcessMTL, "per_task", 0),
        "DB-MTL": (updates.DBMTL, "per_task", 0),
        "MoCo": (updates.MoCo, "per_task", 0),
        "GradDrop": (updates.GradDrop, "features", 0),
        "IT-PCGrad exact": (lambda: updates.ITMTL(["all", updates.PCGrad()]), "per_task", 2),
        "IT-PCGrad first order": (lambda: updates.ITMTL(["all", updates.PCGrad()],
                                                        lookahead="first_order"), "per_task", 0),
        "IT-MTL exact, 2 tasks + all": (
            lambda: updates.ITMTL([pair[0], pair[1], "all"]), "per_task", 3),
        "IT-MTL exact, all + CAGrad + UPGrad + DB-MTL": (
            lambda: updates.ITMTL(["all", updates.CAGrad(), updates.UPGrad(), updates.DBMTL()]),
            "per_task", 4),
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
    y = {f"task{i}": tf.constant(np.eye(classes, dtype=np.float32)[
        rng.integers(0, classes, batch_size)]) for i in range(num_tasks)}
    return tf.constant(x), y


def _interleaved_min(calls, steps, repeats):
    """Seconds per call of each of ``calls`` (the first is the plain step): the minimum
    over ``repeats`` rounds, each round timing every call in turn for about ``steps``
    times the first one's time (at least one call)."""
    for call in calls:  # trace, then one warm call that sizes the rounds
        call()
    warm = []
    for call in calls:
        start = time.perf_counter()
        call()
        warm.append(time.perf_counter() - start)
    counts = [max(1, round(steps * warm[0] / w)) for w in warm]
    best = [float("inf")] * len(calls)
    for _ in range(repeats):
        for i, (call, count) in enumerate(zip(calls, counts)):
            start = time.perf_counter()
            for _ in range(count):
                call()
            best[i] = min(best[i], (time.perf_counter() - start) / count)
    return best


def _floors(encoder, num_tasks, classes, batch, steps, repeats):
    """``{floor kind: plain steps}`` and ``"forward"``, measured on the plain model."""
    model = _model(encoder, num_tasks, classes, None)
    x, y = batch
    model.train_on_batch(x, y)

    def features():
        step = record_step(model, x, y)
        return step.feature_gram(), step.weighted_gradient()

    calls = [tf.function(f, autograph=False) for f in (
        lambda: record_step(model, x, y).weighted_gradient(),
        lambda: record_step(model, x, y).per_task(),
        features,
        lambda: model(x, training=True))]
    one, per_task, feature, forward = _interleaved_min(calls, steps, repeats)
    return {"one": 1.0, "per_task": per_task / one, "features": feature / one,
            "forward": forward / one}


CASES = {"resnet": ("9 tasks, ResNet-lite 64×64, batch 32", ResNetLite, 9, 2, (64, 64, 3), 32),
         "lenet": ("2 tasks, LeNet 36×36, batch 256", LeNet, 2, 10, (36, 36, 1), 256)}


def updates_benchmark(steps=5, repeats=3, cases=("resnet", "lenet"), **_):
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        raise ValueError(f"`cases` must be among {sorted(CASES)}. Received: cases={list(cases)}")
    rows = []
    for case in cases:
        label, encoder, m, classes, shape, batch_size = CASES[case]
        batch = _batch(m, batch_size, shape, classes)
        floors = _floors(encoder, m, classes, batch, steps, repeats)
        rules = _rules([f"task{i}" for i in range(m)])
        models = [_model(encoder, m, classes, make()) for make, _, _ in rules.values()]
        seconds = _interleaved_min([functools.partial(model.train_on_batch, *batch)
                                    for model in models], steps, repeats)
        for (name, (_, kind, candidates)), s in zip(rules.items(), seconds):
            ratio = s / seconds[0]
            if kind is None:
                rows.append((label, name, f"{1000 * s:.1f}", f"{ratio:.2f}", "-", "-"))
                continue
            floor = floors[kind] + candidates * floors["forward"]
            rows.append((label, name, f"{1000 * s:.1f}", f"{ratio:.2f}", f"{floor:.2f}",
                         f"{ratio / floor:.2f}"))
    return ("case", "rule", "ms/step", "× EqualWeights", "floor", "× floor"), rows
