"""One batched forward for every task's path through the shared encoder.

Two cases share one mechanism, the **chunk layout**: the encoder runs once on
a batch of ``N`` rows cut into consecutive chunks, chunk ``k`` holding
``sizes[k]`` rows that follow task ``tasks[k]``'s path; head ``t`` reads its
task's chunk.

* **Routing layers in the encoder** (``tf_mtl.routing.MaximumRoaming``,
  ``TaskRouting``, ``tf_mtl.routing.ETRNLP``: each task has its own path,
  ``003`` Eq. 2). The batch is tiled once per task, ``[T·B, ...]``; each
  routing layer applies task ``t``'s mask or branch to chunk ``t``. This
  equals ``T`` separate forwards, one per task path, in values and gradients:
  a parameter gets gradient only from the tasks whose path uses it.
* **Per-task inputs** (multi-domain data): ``model(x)`` with ``x`` a dict
  ``{task: x_t}``, one sub-batch per task, possibly of different sizes. The
  sub-batches are concatenated and run as one forward where their feature
  shapes and dtypes agree; otherwise the encoder runs once per task, each call
  with a one-chunk layout. With routing layers, chunk ``t`` is task ``t``'s
  inputs going through task ``t``'s path.

A layer that depends on the chunking reads ``current()`` while it runs.
Routing layers subclass ``RoutingLayer``; called outside a per-task forward
(no layout in scope) they raise ``ValueError``. ``path_of(t, T)`` puts one
task's path in scope for a plain batch. BatchNormalization normalizes each
chunk with its own statistics only as ``tf_mtl.routing.task_norm.TaskBatchNormalization``
(Keras's layer uses the whole batched forward's statistics).

Example:
    >>> with tf_mtl.routing.task_paths.path_of(2, num_tasks=8):
    ...     features = encoder(x)          # task 2's path alone
"""

import contextlib
import threading

import keras
import tensorflow as tf

from tf_mtl import keras_internals

_STATE = threading.local()  # Replicas trace in their own threads.


class Layout:
    """Chunks of one batched forward: chunk ``k`` has ``sizes[k]`` rows of task ``tasks[k]``.

    Args:
        num_tasks: ``T``, the model's number of tasks.
        tasks: task index (``0..T-1``, the model's ``tasks`` order) of each chunk.
        sizes: rows per chunk: ints or an int32 tensor ``[len(tasks)]``; ``None``
            for one chunk that is the whole batch.
        equal_chunks: whether every chunk is known to have the same size (a tiled
            batch), so ``[N, ...]`` reshapes to ``[K, N / K, ...]``.
    """

    def __init__(self, num_tasks, tasks, sizes, equal_chunks=False):
        self.num_tasks = int(num_tasks)
        self.tasks = [int(t) for t in tasks]
        if not self.tasks or any(not 0 <= t < self.num_tasks for t in self.tasks):
            raise ValueError(f"`tasks` must be task indices in [0, {self.num_tasks}). "
                             f"Received: tasks={tasks!r}")
        self.sizes = sizes
        self.equal_chunks = bool(equal_chunks)

    @property
    def num_chunks(self):
        return len(self.tasks)

    def row_chunks(self, batch):
        """``[N]`` int32: the chunk of each row of ``batch``."""
        if self.sizes is None:
            return tf.zeros([tf.shape(batch)[0]], tf.int32)
        return tf.repeat(tf.range(self.num_chunks), self.sizes)

    def expand(self, values, batch):
        """Per-task ``values [T, ...]`` -> per-row values for ``batch``: ``[N, ...]``,
        or ``[1, ...]`` (broadcasting) when the whole batch is one chunk."""
        if self.sizes is None:
            return tf.gather(values, self.tasks)
        return tf.gather(values, tf.repeat(tf.constant(self.tasks, tf.int32), self.sizes))

    def split(self, tensor):
        """``[N, ...]`` -> one tensor per chunk."""
        if self.sizes is None:
            return [tensor]
        return tf.split(tensor, self.sizes, num=self.num_chunks, axis=0)


def current():
    """The ``Layout`` of the per-task forward running now, or ``None``."""
    stack = getattr(_STATE, "stack", None)
    return stack[-1] if stack else None


@contextlib.contextmanager
def scope(layout):
    """Runs the enclosed calls with ``layout`` as the current chunk layout."""
    stack = _STATE.__dict__.setdefault("stack", [])
    stack.append(layout)
    try:
        yield layout
    finally:
        stack.pop()


def path_of(task, num_tasks):
    """Scope in which a plain batch follows task ``task``'s path (one chunk)."""
    return scope(Layout(num_tasks, [task], None))


class RoutingLayer(keras.layers.Layer):
    """Base of layers that route each task along its own path (masks, branches).

    Subclasses call ``self.layout()`` in ``call``: the current ``Layout``,
    checked against ``num_tasks``. Shape-preserving by default.
    """

    routes_tasks = True

    def __init__(self, num_tasks, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"`num_tasks` must be a positive int. Received: num_tasks={num_tasks!r}")
        self.num_tasks = num_tasks

    def layout(self):
        layout = current()
        if layout is None:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' applies each task's path to that task's "
                "chunk of a per-task forward: call it through MultiTaskModel (which tiles the "
                "batch once per task), or inside `tf_mtl.routing.task_paths.path_of(task, num_tasks)` or "
                "`tf_mtl.routing.task_paths.scope(layout)`. Received: a call outside a per-task forward")
        if layout.num_tasks != self.num_tasks:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' was built for num_tasks={self.num_tasks}, "
                f"but the model has {layout.num_tasks} tasks. Received: num_tasks={self.num_tasks}")
        return layout

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks}


def routing_layers(layer):
    """The ``RoutingLayer``s nested in ``layer`` (itself included)."""
    return [l for l in keras_internals.nested_layers(layer) if getattr(l, "routes_tasks", False)]


def after_step(model):
    """Lets the encoder's routing layers act once the optimizer has applied a step.

    Calls ``layer.on_train_step(iterations)`` (``iterations``: the optimizer's
    step count, now including this step) on every routing layer that has it,
    e.g. ``MaximumRoaming``'s plan update when due. Called by the train step.
    """
    for layer in routing_layers(model.encoder):
        hook = getattr(layer, "on_train_step", None)
        if hook is not None:
            hook(model.optimizer.iterations)


def _input_names(encoder):
    """The keys of a dict the encoder takes as one input: its ``shared_input_keys``
    attribute where it declares one (e.g. ``MovieLensEncoder``'s features), else the
    names of a functional encoder's inputs (empty when it has none)."""
    declared = getattr(encoder, "shared_input_keys", None)
    if declared is not None:
        return set(declared)
    try:
        return {getattr(t, "name", None) for t in encoder.inputs or []}
    except (AttributeError, ValueError):   # Not a functional model, or not built.
        return set()


def per_task_inputs(tasks, x, encoder=None):
    """``[x_t for t in tasks]`` when ``x`` is ``{task: x_t}``, ``None`` for one shared input.

    A dict is one shared input only when its keys are exactly the names of the
    inputs of ``encoder`` (a functional model with named inputs, or a layer that
    declares them as ``shared_input_keys``); any other
    dict must have exactly the tasks as keys (ValueError otherwise).
    """
    if not isinstance(x, dict):
        return None
    if encoder is not None and set(x) != set(tasks) and set(x) == _input_names(encoder):
        return None
    if set(x) != set(tasks):
        raise ValueError(
            f"Per-task inputs `x` must be a dict with exactly the model's tasks {sorted(tasks)} "
            "as keys (one sub-batch per task), not a mix of per-task and shared inputs (a "
            "dict shared by all tasks must have exactly the encoder's named inputs as keys). "
            f"Received: x with keys {sorted(map(str, x))}")
    return [x[t] for t in tasks]


def _rows(x):
    return tf.shape(tf.nest.flatten(x)[0])[0]


def _specs(x):
    return [(tuple(leaf.shape[1:]), tf.as_dtype(leaf.dtype)) for leaf in tf.nest.flatten(x)]


def _same_features(inputs):
    first = inputs[0]
    for other in inputs[1:]:
        try:
            tf.nest.assert_same_structure(first, other)
        except (ValueError, TypeError):
            return False
        if _specs(other) != _specs(first):
            return False
    return True


def is_batched(model, x):
    """Whether ``forward`` runs ``x`` as a chunked per-task forward."""
    return (per_task_inputs(model.tasks, x, model.encoder) is not None
            or bool(routing_layers(model.encoder)))


def forward(model, x, training=None):
    """``(features, {task: prediction})`` of ``model`` (a ``MultiTaskModel``) on ``x``.

    ``features`` is the encoder's output: for a chunked forward, all chunks
    (``[N, ...]``, chunks in ``tasks`` order); a list of per-task outputs where
    per-task inputs differ in feature shape.
    """
    tasks = model.tasks
    inputs = per_task_inputs(tasks, x, model.encoder)
    if inputs is None and not routing_layers(model.encoder):
        features = model.encoder(x, training=training)
        return features, {t: model._apply_head(t, features, training) for t in tasks}
    tiled = inputs is None
    if tiled:  # Routing: the same batch once per task path.
        inputs = [x] * len(tasks)
    if not _same_features(inputs):
        features = []
        for k, x_t in enumerate(inputs):  # Shapes differ: one encoder call per task.
            with path_of(k, len(tasks)):
                features.append(model.encoder(x_t, training=training))
        return features, {t: model._apply_head(t, f, training) for t, f in zip(tasks, features)}
    sizes = tf.stack([_rows(x_t) for x_t in inputs])
    layout = Layout(len(tasks), range(len(tasks)), sizes, equal_chunks=tiled)
    batched = tf.nest.map_structure(lambda *leaves: tf.concat(leaves, 0), *inputs)
    with scope(layout):
        features = model.encoder(batched, training=training)
    chunks = [tf.nest.pack_sequence_as(features, parts) for parts in
              zip(*[layout.split(f) for f in tf.nest.flatten(features)])]
    return features, {t: model._apply_head(t, c, training) for t, c in zip(tasks, chunks)}
