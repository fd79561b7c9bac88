"""Step time of task routing (``python -m launch.benchmark --bench=partition``).

8 tasks (two-class heads), ResNet-18 (width 64) on 64×64×3 inputs, Adam, the
compiled train step on an in-memory batch:

* ``plain``: the encoder without masks (one forward for all tasks);
* ``MR batched``: Maximum Roaming masks after every shared convolution, the
  step ``MultiTaskModel`` runs (one forward of the batch tiled once per task);
* ``MR loop``: the same model and update written as the reference code's per-task
  forwards — a loop of ``T`` forwards, task ``t``'s path on the batch
  (``tf_mtl.routing.task_paths.path_of``), their summed loss differentiated once and
  applied — compiled in one ``tf.function``. This is the single-step equivalent of
  the summed loss, not the reference code's loop of ``T`` optimizer steps;
* ``forward``: the same batched and looped inference forwards alone.

Each time is the minimum over ``repeats`` rounds that time every variant in
turn, interleaved (load from other processes only adds time).
"""

import time

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.routing import task_paths
from tf_mtl.encoders import ResNet18
from tf_mtl.model import MultiTaskModel


def _model(num_tasks, routing):
    keras.utils.set_random_seed(0)
    tasks = [f"task{i}" for i in range(num_tasks)]
    model = MultiTaskModel(
        ResNet18(routing=routing), {t: keras.layers.Dense(2) for t in tasks},
        {t: keras.losses.CategoricalCrossentropy(from_logits=True) for t in tasks})
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    return model


def loop_step(model):
    """One train step as ``T`` per-task forwards in a Python loop (the reference's way).
    ``model`` must be built."""
    variables = model.trainable_variables
    if not variables:
        raise ValueError("loop_step needs a built model. Received: a model without variables")

    @tf.function(autograph=False)
    def step(x, y):
        with tf.GradientTape() as tape:
            total = 0.0
            for i, t in enumerate(model.tasks):
                with task_paths.path_of(i, len(model.tasks)):
                    pred = model.heads[t](model.encoder(x, training=True), training=True)
                total += model.task_losses[t](y[t], pred)
        model.optimizer.apply(tape.gradient(total, variables), variables)
        task_paths.after_step(model)
        return total

    return step


def loop_forward(model):
    """The inference forward as ``T`` per-task forwards (one ``tf.function``)."""
    @tf.function(autograph=False)
    def forward(x):
        outs = []
        for i, t in enumerate(model.tasks):
            with task_paths.path_of(i, len(model.tasks)):
                outs.append(model.heads[t](model.encoder(x, training=False)))
        return outs
    return forward


def partition(steps=3, repeats=2, batch_size=16, image_size=64, num_tasks=8, **_):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((batch_size, image_size, image_size, 3), dtype=np.float32))
    y = {f"task{i}": tf.constant(np.eye(2, dtype=np.float32)[rng.integers(0, 2, batch_size)])
         for i in range(num_tasks)}
    routing = {"kind": "maximum_roaming", "num_tasks": num_tasks, "sharing_ratio": 0.8,
               "update_every": 2}
    plain, batched, looped = _model(num_tasks, None), _model(num_tasks, routing), \
        _model(num_tasks, routing)
    looped.build_for(x)      # before loop_step reads the trainable variables
    loop = loop_step(looped)
    batched_forward = tf.function(lambda x: batched(x, training=False), autograph=False)
    looped_forward = loop_forward(looped)
    runs = {"plain": lambda: plain.train_on_batch(x, y),
            "MR batched": lambda: batched.train_on_batch(x, y),
            "MR loop": lambda: loop(x, y),
            "MR batched forward": lambda: batched_forward(x),
            "MR loop forward": lambda: looped_forward(x)}
    for fn in runs.values():
        fn()  # compile
        fn()
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            best[name] = min(best[name], (time.perf_counter() - start) / steps)
    label = f"{num_tasks} tasks, ResNet-18 {image_size}×{image_size}, batch {batch_size}"
    rows = [(label, name, f"{1000 * s:.0f}", f"{s / best['plain']:.2f}",
             f"{s / best['MR loop']:.2f}") for name, s in best.items()]
    return ("case", "step", "ms/step", "× plain", "× MR loop"), rows
