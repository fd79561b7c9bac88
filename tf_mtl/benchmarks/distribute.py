"""Step time with 1 vs 2 replicas, plain and measuring on a schedule
(``python -m launch.benchmark --bench=distribute``).

Two logical CPU devices (``tf_mtl.distribute.set_logical_cpus(2)``) in a fresh
process, since devices are configured before TensorFlow initialises: one replica
is the default strategy on the first, two replicas ``MirroredStrategy`` over both
(they share the machine's cores, so two replicas show the cost of the strategy's
machinery, not a speed-up). Model: 4 tasks on an MLP ``[256, 256, 128]`` (input 256,
global batch 64), SGD momentum 0.9; the train function ``fit`` uses is called on an
iterator over one repeated in-memory batch (the host schedule picks each step's
compiled function). Cases: the plain step; exact order-1 transference ``every=10`` (steps
timed in whole cycles of 10, so one measured step in ten); the same ``every=1``
(every step measured), for scale. Repeats run in interleaved rounds; medians with
the min–max spread.
"""

import json
import os
import subprocess
import sys
import time

TASKS, UNITS, BATCH = 4, [256, 256, 128], 64
CASES = [("plain", None), ("exact order 1, every=10", 10), ("exact order 1, every=1", 1)]


def distribute_benchmark(steps=5, repeats=7, **_):
    """Runs the cases in a child process with two logical CPUs; returns ``(columns, rows)``;
    a row is ``(replicas, case, median ms per step, min–max over the repeats, ratio of the
    medians to the plain step with as many replicas)``. The repeats run in rounds, each
    round timing every case once, so a change of the machine's load hits all cases alike."""
    proc = subprocess.run(
        [sys.executable, "-m", "tf_mtl.benchmarks.distribute", str(steps), str(repeats)],
        capture_output=True, text=True, timeout=3600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:
        raise RuntimeError(f"The distribute benchmark's process failed:\n{proc.stderr[-3000:]}")
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = []
    for replicas in (1, 2):
        plain = _median(results[f"{replicas}|plain"])
        for name, _ in CASES:
            times = results[f"{replicas}|{name}"]
            rows.append((str(replicas), name, f"{_median(times) * 1e3:.1f}",
                         f"{min(times) * 1e3:.1f}–{max(times) * 1e3:.1f}",
                         f"{_median(times) / plain:.2f}"))
    return ("replicas", "case", "ms/step (median)", "min–max", "ratio to plain"), rows


def _median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _stepper(model, strategy, batch, steps, warmup=10):
    """A function timing ``steps`` steps of the model's train function (seconds per step),
    fed as ``fit`` feeds it (an iterator over the distributed dataset), synchronised on a
    log at the end; every compiled variant is traced before."""
    import numpy as np
    import tensorflow as tf
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    model.fit(ds, steps_per_epoch=1, verbose=0)      # builds; the first step
    train = model.make_train_function()
    iterator = iter(strategy.experimental_distribute_dataset(ds))
    for _ in range(warmup):                          # every compiled variant traced
        logs = train(iterator)
    float(np.asarray(logs["loss"]).ravel()[0])

    def timed():
        start = time.perf_counter()
        for _ in range(steps):
            logs = train(iterator)
        float(np.asarray(logs["loss"]).ravel()[0])
        return (time.perf_counter() - start) / steps
    return timed


def _child(steps, repeats):
    from tf_mtl import distribute
    distribute.set_logical_cpus(2)
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_mtl.encoders import MLP
    from tf_mtl.model import MultiTaskModel
    from tf_mtl.transference import Transference

    tasks = [f"t{i}" for i in range(TASKS)]
    rng = np.random.default_rng(0)
    batch = (rng.standard_normal((BATCH, UNITS[0])).astype("float32"),
             {t: rng.standard_normal((BATCH, 1)).astype("float32") for t in tasks})

    def build(every):
        keras.utils.set_random_seed(0)
        model = MultiTaskModel(MLP(UNITS), {t: keras.layers.Dense(1) for t in tasks},
                               {t: "mse" for t in tasks},
                               probes=[Transference(every=every)] if every else [])
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        return model

    strategies = {1: tf.distribute.get_strategy(),
                  2: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])}
    timers = {}
    for replicas, strategy in strategies.items():
        for name, every in CASES:
            with strategy.scope():
                model = build(every)
            # Whole cycles of 10 steps (one measured step in ten for every=10).
            timers[f"{replicas}|{name}"] = _stepper(model, strategy, batch, 10 * steps)
    out = {key: [] for key in timers}
    for _ in range(repeats):   # Rounds: each case once per round.
        for key, timed in timers.items():
            out[key].append(timed())
    print(json.dumps(out))


if __name__ == "__main__":
    _child(int(sys.argv[1]), int(sys.argv[2]))
