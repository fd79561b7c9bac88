"""Sample-wise interference and transfer (``000`` §3.4, Eq. 2–3) and linear CKA task similarity.

For one task, a single-task (single-domain) model ``M`` splits the test set
``D`` into the samples it answers correctly, ``D_correct``, and the rest,
``D_incorrect``. A multi-task (multi-domain) model answers ``k`` samples of
``D_correct`` and ``k'`` of ``D_incorrect`` correctly. Then, in percent:

* ``perf_gain    = (k + k' - |D_correct|) / |D|``   (Eq. 2; the accuracy
  difference multi - single),
* ``interference = (|D_correct| - k) / |D_correct|`` (Eq. 3; what the
  multi-task model forgets of what the single-task model solves),
* ``transfer     = k' / |D_incorrect|``             (Eq. 3; what it solves of
  what the single-task model fails).

Undefined cases: when the single-task model answers every sample correctly,
``transfer`` has no sample to count (``|D_incorrect| = 0``); when it answers
none, ``interference`` has none (``|D_correct| = 0``). Such a value is
``UNDEFINED`` (``float("nan")``), never a division error: it means "no
sample to measure on", and tables aggregate with NaN-aware means that report
how many values were defined. ``perf_gain`` is always defined (``|D| >= 1``).

Task similarity (``000`` §3.4): the linear Centered Kernel Alignment
(Kornblith et al., 2019) between two models' representations of one probe set,

    CKA(X, Y) = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F),

with ``X_c``, ``Y_c`` the column-centered ``[n, p]`` feature matrices (the
feature-space form of HSIC(XX^T, YY^T) / sqrt(HSIC(XX^T, XX^T) HSIC(YY^T, YY^T))).
It is invariant to orthogonal transforms and isotropic scaling of either
representation, and 1 for identical ones. A representation with no variance
has no defined CKA: ``UNDEFINED``.
"""

import numpy as np
import tensorflow as tf

from tf_mtl.routing import task_paths

UNDEFINED = float("nan")


def _as_bool_vector(name, value):
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if array.dtype != np.bool_:
        raise ValueError(f"`{name}` must hold booleans (True = the sample is answered "
                         f"correctly). Received: {name} of dtype {array.dtype}")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D array, one entry per test sample. "
                         f"Received: {name} of shape {array.shape}")
    return array


def interference_transfer(single_correct, multi_correct):
    """``000``'s PerfGain, Interference and Transfer of one task, in percent.

    Args:
        single_correct: boolean ``[N]``: the single-task model answers sample
            ``i`` correctly.
        multi_correct: boolean ``[N]``: the multi-task model does, on the same
            samples in the same order.

    Returns:
        ``{"perf_gain", "interference", "transfer"}`` (percent; ``UNDEFINED``
        where the module doc says) and the counts ``"n"`` (``|D|``),
        ``"single_correct"`` (``|D_correct|``), ``"kept"`` (``k``) and
        ``"gained"`` (``k'``).

    Example:
        >>> tf_mtl.metrics.interference_transfer([True, True, False, False],
        ...                                      [True, False, True, False])
        {'perf_gain': 0.0, 'interference': 50.0, 'transfer': 50.0, 'n': 4, ...}
    """
    single = _as_bool_vector("single_correct", single_correct)
    multi = _as_bool_vector("multi_correct", multi_correct)
    if single.shape != multi.shape:
        raise ValueError("`single_correct` and `multi_correct` must describe the same samples. "
                         f"Received: lengths {single.size} and {multi.size}")
    n, correct = int(single.size), int(single.sum())
    kept, gained = int((single & multi).sum()), int((~single & multi).sum())
    incorrect = n - correct
    return {
        "perf_gain": 100.0 * (kept + gained - correct) / n,
        "interference": 100.0 * (correct - kept) / correct if correct else UNDEFINED,
        "transfer": 100.0 * gained / incorrect if incorrect else UNDEFINED,
        "n": n, "single_correct": correct, "kept": kept, "gained": gained,
    }


def _features(name, value):
    array = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if array.ndim < 2:
        raise ValueError(f"`{name}` must be a [samples, features...] array. "
                         f"Received: {name} of shape {array.shape}")
    if array.shape[0] < 2:
        raise ValueError(f"`{name}` needs at least 2 samples (rows) for a centered "
                         f"similarity. Received: {name} of shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"`{name}` must be real numbers. Received: dtype {array.dtype}")
    array = array.reshape(array.shape[0], -1).astype(np.float64)
    return array - array.mean(axis=0, keepdims=True)


def linear_cka(X, Y):
    """Linear CKA between representations ``X`` ``[n, p]`` and ``Y`` ``[n, q]`` of the same
    ``n`` samples (trailing dimensions are flattened). A float in [0, 1]; ``UNDEFINED`` when
    either has no variance.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(50, 4))
        >>> round(tf_mtl.metrics.linear_cka(x, 3.0 * x + 1.0), 6)   # scale and shift: 1
        1.0
    """
    x, y = _features("X", X), _features("Y", Y)
    if x.shape[0] != y.shape[0]:
        raise ValueError("`X` and `Y` must represent the same samples (rows). Received: "
                         f"{x.shape[0]} and {y.shape[0]} rows")
    if max(x.shape[1], y.shape[1]) <= x.shape[0]:   # Feature form: [p, q] products.
        cross = np.linalg.norm(y.T @ x) ** 2
        norms = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    else:  # Wider than long (flattened maps): the [n, n] Gram form is cheaper.
        k, l = x @ x.T, y @ y.T
        cross, norms = np.sum(k * l), np.linalg.norm(k) * np.linalg.norm(l)
    return float(cross / norms) if norms > 0 else UNDEFINED


# ------------------------------------------------------------------ models on data
def _batches(data, name, inputs_only=False):
    """``(x, y)`` batches from a ``tf.data.Dataset`` of ``(x, y[, ...])`` or an ``(x, y)``
    pair of arrays (``inputs_only``: also a dataset of ``x`` or one array ``x``)."""
    if isinstance(data, tf.data.Dataset):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return tf.data.Dataset.from_tensor_slices(tuple(data)).batch(256)
    if inputs_only and (isinstance(data, np.ndarray) or tf.is_tensor(data)):
        return tf.data.Dataset.from_tensor_slices(data).batch(256)
    raise ValueError(f"`{name}` must be a tf.data.Dataset of (x, y) batches or an (x, y) pair "
                     f"of arrays{' (or inputs x alone)' if inputs_only else ''}. "
                     f"Received: {type(data).__name__}")


def _task_output(model, outputs, task):
    if isinstance(outputs, dict):
        if task not in outputs:
            raise ValueError(f"The model answers for tasks {sorted(outputs)}: say which with "
                             f"`task`. Received: task={task!r}")
        return outputs[task]
    return outputs


def _labels(y, task):
    if isinstance(y, dict):
        if task not in y:
            raise ValueError(f"The data's labels are for tasks {sorted(y)}. "
                             f"Received: task={task!r}")
        return y[task]
    return y


def correct_predictions(model, data, task=None):
    """Boolean ``[N]``: ``model`` classifies each sample of ``data`` correctly.

    ``model`` is a Keras classifier returning logits or probabilities ``[B, C]``
    (``C >= 2``; the prediction is the arg-max) — a single-task Keras model or
    a ``MultiTaskModel`` (``task`` picks its head). Labels are class indices
    ``[B]`` / ``[B, 1]`` or one-hot ``[B, C]``; dict labels are read at ``task``.
    Runs in inference mode (``training=False``), batch by batch, in the order
    of ``data``, eagerly (no tracing: per-batch overhead is small next to a
    model's tracing time when many models are evaluated once each).

    Example:
        >>> single = tf_mtl.metrics.correct_predictions(single_model, test_ds)
        >>> multi = tf_mtl.metrics.correct_predictions(mdl_model, test_ds, task="cifar100")
    """
    out = []
    for batch in _batches(data, "data"):
        x, y = batch[0], _labels(batch[1], task)
        logits = _task_output(model, model(x, training=False), task)
        if logits.shape[-1] is not None and logits.shape[-1] < 2:
            raise ValueError("`correct_predictions` compares arg-max classes: the output needs "
                             f">= 2 classes. Received: output of shape {tuple(logits.shape)}")
        predicted = tf.argmax(logits, axis=-1, output_type=tf.int64)
        y = tf.convert_to_tensor(y)
        if y.shape.rank == logits.shape.rank and y.shape[-1] == logits.shape[-1]:
            y = tf.argmax(y, axis=-1, output_type=tf.int64)     # One-hot.
        y = tf.cast(tf.reshape(y, [-1]), tf.int64)
        out.append((predicted == y).numpy())
    return np.concatenate(out) if out else np.zeros([0], bool)


def evaluate_interference_transfer(single_model, multi_model, data, task=None):
    """``interference_transfer`` of ``multi_model`` against ``single_model`` on ``data``
    (one task's test set; ``task`` names the head of a multi-task model and the label
    of dict labels). Adds the two accuracies (percent) as ``single_accuracy`` and
    ``multi_accuracy``.

    Example:
        >>> tf_mtl.metrics.evaluate_interference_transfer(single, mdl, test_ds, task="a")
    """
    single = correct_predictions(single_model, data, task)
    multi = correct_predictions(multi_model, data, task)
    result = interference_transfer(single, multi)
    result.update(single_accuracy=100.0 * single.mean(), multi_accuracy=100.0 * multi.mean())
    return result


def representations(model, data):
    """``[N, features]``: what ``model`` represents each input of ``data`` by.

    A ``MultiTaskModel`` (or any model with ``forward(x) -> (features, outputs)``)
    gives its shared encoder's output — the features the heads read; another
    Keras model gives its output. Inference mode; trailing dimensions flattened.
    A ``MultiTaskModel`` with routing layers (task-specific paths: one
    representation per task, not one per input) raises ValueError, as does a
    forward whose features are a list of per-task outputs: compare one task's
    path by probing a single-task model instead.

    Example:
        >>> feats = tf_mtl.metrics.representations(single_model, probe_images)  # [N, F]
    """
    encoder = getattr(model, "encoder", None)
    if encoder is not None and task_paths.routing_layers(encoder):
        raise ValueError("`representations` needs one representation per input: the "
                         "model's encoder has routing layers (one path per task). "
                         f"Received: model {model.name!r} with routing layers "
                         f"{[l.name for l in task_paths.routing_layers(encoder)]}")
    forward = getattr(model, "forward", None)
    fn = (lambda x: forward(x, training=False)[0]) if forward else (
        lambda x: model(x, training=False))
    out = []
    for batch in _batches(data, "probe_set", inputs_only=True):
        x = batch[0] if isinstance(batch, tuple) else batch
        features = fn(x)
        if isinstance(features, (list, tuple, dict)):
            raise ValueError("`representations` needs one feature tensor per batch. "
                             f"Received: features as a {type(features).__name__} of "
                             f"{len(features)} per-task outputs")
        out.append(tf.reshape(features, [tf.shape(features)[0], -1]).numpy())
    return np.concatenate(out)


def task_similarity(models, probe_set):
    """``[T, T]`` linear CKA between the representations of ``models`` on ``probe_set``
    (``000``: each single-task model's features on 50 test samples per class of every
    domain). ``models`` is a list or a dict (rows and columns in its order). The
    diagonal is each model's CKA with itself: 1, or ``UNDEFINED`` where its
    representation has no variance.

    Example:
        >>> sim = tf_mtl.metrics.task_similarity({"a": model_a, "b": model_b}, probe_ds)
        >>> sim[0, 1]    # CKA(a, b)
    """
    models = list(models.values()) if isinstance(models, dict) else list(models)
    if len(models) < 2:
        raise ValueError(f"`models` must hold at least 2 models. Received: {len(models)}")
    features = [representations(m, probe_set) for m in models]
    n = len(models)
    matrix = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            matrix[i, j] = matrix[j, i] = linear_cka(features[i], features[j])
    return matrix
