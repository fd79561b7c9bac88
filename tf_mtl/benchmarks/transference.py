"""Transference's step time (``--bench=transference``) and where it goes (``--bench=breakdown``).

Each benchmark builds its models in one process, warms each compiled train step
up (tracing excluded), then times ``steps`` steps ``repeats`` times and reports
the median per-step time and its ratio to the plain MTL step.
"""

import json
import os
import resource
import subprocess
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.encoders import MLP, ResNet18, ResNetLite
from tf_mtl.model import MultiTaskModel
from tf_mtl.transference import Transference


def _celeba_like_batch(num_tasks, batch_size, image_size, seed=0, shape=None):
    rng = np.random.default_rng(seed)
    x = rng.random((batch_size, *(shape or (image_size, image_size, 3))), dtype=np.float32)
    y = {f"task{i}": np.eye(2, dtype=np.float32)[rng.integers(0, 2, batch_size)]
         for i in range(num_tasks)}
    return x, y


def _resnet_model(num_tasks, probes, per_task_gradients="loop", encoder=ResNetLite,
                  xla=False, execution="auto"):
    keras.utils.set_random_seed(0)
    tasks = [f"task{i}" for i in range(num_tasks)]
    model = MultiTaskModel(
        encoder(), {t: keras.layers.Dense(2) for t in tasks},
        {t: keras.losses.CategoricalCrossentropy(from_logits=True) for t in tasks},
        probes=probes, per_task_gradients=per_task_gradients, lookahead_execution=execution)
    model.compile(optimizer=keras.optimizers.SGD(5e-4, momentum=0.9), jit_compile=xla)
    return model


def time_steps(model, batch, steps=20, repeats=3, warmup=3):
    """Median seconds per compiled train step on a fixed in-memory batch.

    Steps run through ``train_on_batch`` (the same compiled ``train_step`` as
    ``fit``) on tensors already on the device, so input-pipeline waits do not
    enter the figure (timing through ``fit`` on a 2-core CPU showed per-step
    times quantized at ~1.02 s / ~2.05 s: waits, not compute).
    """
    x, y = batch
    x, y = tf.constant(x), {t: tf.constant(v) for t, v in y.items()}
    for _ in range(warmup):
        model.train_on_batch(x, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


MLP_UNITS = [512, 512, 256]
REFERENCE_SCRIPT = os.path.join("..", "shared", "anchors", "tag_reference_step.py")


def transference(steps=5, repeats=3, batch_size=32, image_size=64, per_task_gradients="loop",
                 memory=True, xla=False, reference=False, reference_script=REFERENCE_SCRIPT,
                 **_):
    """Probes every step vs the plain MTL step (ResNet-lite, 64x64, batch 32).

    Rows: the plain step; exact order-1 transference with each lookahead
    execution (``"auto"`` is what the model uses by default); first-order and
    its pass floor (one forward and ``m`` per-task backwards, over one forward
    and backward, each a compiled function); cosine; every subset of 5 tasks.
    With ``xla``, the plain, exact and first-order steps again under
    ``jit_compile=True`` (ratios to the XLA plain step). With ``reference``,
    the TAG reference step (``reference_script``, run in a subprocess under
    ``tf_keras``) measured in the same run, with ours over its ratio. With
    ``memory``, the ResNet-18 ``order=-1`` peak-memory rows (``memory_rows``).

    Returns ``(columns, rows)``; a row is ``(case, ms per step, ratio to plain)``.
    """
    cases = [
        ("plain, 9 tasks", 9, None, {}),
        ("exact order 1, 9 tasks (auto)", 9, dict(order=1), {}),
        ("exact order 1, 9 tasks, sequential", 9, dict(order=1), dict(execution="sequential")),
        ("exact order 1, 9 tasks, unrolled", 9, dict(order=1), dict(execution="unrolled")),
        ("exact order 1, 9 tasks, vectorized", 9, dict(order=1), dict(execution="vectorized")),
        ("first_order order 1, 9 tasks", 9, dict(order=1, method="first_order"), {}),
        ("cosine order 1, 9 tasks", 9, dict(order=1, method="cosine"), {}),
        ("plain, 5 tasks", 5, None, {}),
        ("exact all 31 subsets, 5 tasks", 5, dict(order=-1), {}),
    ]
    # A dense encoder, which TensorFlow's vectorizer batches whole (it loops
    # over convolutions whose filter differs per candidate).
    cases += [(f"MLP {MLP_UNITS}: plain, 9 tasks", 9, None, dict(mlp=True))]
    cases += [(f"MLP {MLP_UNITS}: exact order 1, {e}", 9, dict(order=1), dict(mlp=True, execution=e))
              for e in ("sequential", "unrolled", "vectorized")]
    if xla:
        cases += [("XLA plain, 9 tasks", 9, None, dict(xla=True)),
                  ("XLA exact order 1, 9 tasks", 9, dict(order=1), dict(xla=True)),
                  ("XLA first_order order 1, 9 tasks", 9, dict(order=1, method="first_order"),
                   dict(xla=True))]
    rows, plain = [], {}
    for name, m, probe, how in cases:
        probes = [Transference(every=1, **probe)] if probe else []
        mlp = how.get("mlp", False)
        model = _resnet_model(m, probes, per_task_gradients, xla=how.get("xla", False),
                              execution=how.get("execution", "auto"),
                              encoder=(lambda: MLP(MLP_UNITS)) if mlp else ResNetLite)
        batch = _celeba_like_batch(m, batch_size, image_size,
                                   shape=(MLP_UNITS[0],) if mlp else None)
        seconds = time_steps(model, batch, steps, repeats)
        key = (m, how.get("xla", False), mlp)
        if probe is None:
            plain[key] = seconds
        rows.append((name, f"{seconds * 1e3:.1f}", f"{seconds / plain[key]:.2f}"))
        if name.startswith("first_order"):
            floor = pass_floor(9, batch_size, image_size, steps, repeats, per_task_gradients)
            rows.append(("  its floor: (1 fwd + 9 bwd) / (1 fwd + 1 bwd)", "",
                         f"{floor:.2f}"))
        if reference and probe is not None and probe.get("method", "exact") == "exact" \
                and not how:
            ratio = reference_ratio(reference_script, m, batch_size, probe["order"], steps)
            ours = seconds / plain[key]
            rows.append((f"  TAG reference step (order {probe['order']}, {m} tasks)", "",
                         f"{ratio:.2f} (ours / reference: {ours / ratio:.2f})"))
    if memory:
        rows += memory_rows(batch_size, image_size)
    return ("case", "ms/step", "x plain"), rows


def reference_ratio(script, num_tasks, batch_size, order, steps):
    """The TAG reference step's time over its plain step, from its own process."""
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    proc = subprocess.run([sys.executable, script, "--tasks", str(num_tasks), "--batch",
                           str(batch_size), "--steps", str(max(steps, 3)), "--order", str(order)],
                          capture_output=True, text=True, env=env)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or "ratio=" not in line:
        raise RuntimeError(f"The reference step failed (is tf_keras installed? "
                           f"pip install tf_keras). Received: {proc.stderr[-500:]}")
    return float(line.split("ratio=")[1])


def pass_floor(num_tasks, batch_size, image_size, steps, repeats, per_task_gradients="loop"):
    """``t(1 forward + m per-task backwards) / t(1 forward + 1 backward)``, measured."""
    from tf_mtl.gradients import record_step
    model = _resnet_model(num_tasks, [], per_task_gradients)
    x, y = _celeba_like_batch(num_tasks, batch_size, image_size)
    x, y = tf.constant(x), {t: tf.constant(v) for t, v in y.items()}
    model.train_on_batch(x, y)
    one = tf.function(lambda: record_step(model, x, y).weighted_gradient(), autograph=False)
    each = tf.function(lambda: record_step(model, x, y, per_task=per_task_gradients).per_task(),
                       autograph=False)
    return (_median_seconds(each, steps, repeats) / _median_seconds(one, steps, repeats))


def memory_rows(batch_size=32, image_size=64, num_tasks=8):
    """Peak resident memory of one ResNet-18 ``order=-1`` step, each case in a fresh process.

    Rows ``(case, "<seconds> s/step", "<GiB> GiB peak")``: the plain step, all
    ``2^m - 1`` sources at once (the lookahead before chunking), and the
    default chunks.
    """
    sources = 2 ** num_tasks - 1
    rows = []
    for name, chunk in ((f"ResNet-18 plain, {num_tasks} tasks", "plain"),
                        (f"ResNet-18 exact, {sources} sources at once", sources),
                        (f"ResNet-18 exact, {sources} sources, default chunks", None)):
        code = (f"from tf_mtl.benchmarks.transference import _memory_child; "
                f"_memory_child({chunk!r}, {num_tasks}, {batch_size}, {image_size})")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode != 0:
            rows.append((name, "failed", proc.stderr.strip().splitlines()[-1][:80]))
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append((name, f"{result['seconds']:.1f} s/step",
                     f"{result['peak_gib']:.2f} GiB peak"))
    return rows


def _memory_child(chunk, num_tasks, batch_size, image_size):
    probes = [] if chunk == "plain" else [
        Transference(every=1, order=-1, method="exact", chunk_size=chunk)]
    model = _resnet_model(num_tasks, probes, encoder=ResNet18)
    x, y = _celeba_like_batch(num_tasks, batch_size, image_size)
    model.train_on_batch(x, y)  # Trace and first step.
    start = time.perf_counter()
    model.train_on_batch(x, y)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB -> GiB
    print(json.dumps({"seconds": seconds, "peak_gib": peak}))


def _median_seconds(fn, steps, repeats, warmup=2):
    for _ in range(warmup):
        tf.nest.map_structure(lambda t: t.numpy(), fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            out = fn()
        tf.nest.map_structure(lambda t: t.numpy(), out)
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


def breakdown(steps=10, repeats=3, batch_size=32, image_size=64, num_tasks=9,
              per_task_gradients="loop", profile_dir=None, **_):
    """Where the exact order-1 step's time goes (ResNet-lite, 64x64, batch 32, 9 tasks).

    Each phase is its own compiled function on the same model and batch, each
    one the previous plus one more piece, so consecutive differences are the
    pieces' costs: the forward pass; one backward (the plain step's); ``m``
    per-task backwards instead; the lookahead weights of the ``m + 1`` sources;
    their lookahead forwards (the whole probe); the whole train step. With
    ``profile_dir``, also writes a TensorFlow profiler trace of the whole step
    (open it in TensorBoard's profile tab).

    Returns ``(columns, rows)``: ``(phase, ms, added ms, x plain step)``.
    """
    from tf_mtl import lookahead, transference
    from tf_mtl.gradients import combine, record_step
    model = _resnet_model(num_tasks, [Transference(every=1, order=1, method="exact")],
                          per_task_gradients)
    plain = _resnet_model(num_tasks, [], per_task_gradients)
    x, y = _celeba_like_batch(num_tasks, batch_size, image_size)
    x, y = tf.constant(x), {t: tf.constant(v) for t, v in y.items()}
    model.train_on_batch(x, y)
    plain.train_on_batch(x, y)
    rows_ = transference.source_weights(model, transference.sources_matrix(model.tasks, 1)[1])

    def record():
        return record_step(model, x, y, per_task=per_task_gradients)

    phases = {
        "forward (losses)": lambda: record().losses,
        "+ 1 backward (plain gradient)": lambda: record().weighted_gradient(),
        "+ m per-task backwards instead": lambda: record().per_task(),
        "+ lookahead weights (m+1 sources)": lambda: lookahead.next_weights(
            model.optimizer, combine((s := record()).per_task(), rows_,
                                     s.regularization_gradient()), model.shared_variables),
        "+ lookahead forwards (= probe)": lambda: transference.compute(
            model, record(), rows_)[0],
    }
    rows, previous = [], 0.0
    step_time = time_steps(plain, (x, y), steps, repeats)
    for name, fn in phases.items():
        seconds = _median_seconds(tf.function(fn, autograph=False), steps, repeats)
        rows.append((name, seconds, seconds - previous))
        previous = seconds
    full = time_steps(model, (x, y), steps, repeats)
    rows.append(("whole step with probe (+ heads, optimizer, logs)", full, full - previous))
    rows.append(("plain train step", step_time, float("nan")))
    if profile_dir:
        tf.profiler.experimental.start(profile_dir)
        for _ in range(3):
            model.train_on_batch(x, y)
        tf.profiler.experimental.stop()
    return (("phase", "ms", "added ms", "x plain step"),
            [(n, f"{t * 1e3:.1f}", f"{d * 1e3:.1f}", f"{t / step_time:.2f}")
             for n, t, d in rows])
