"""The few Keras internals tf_mtl reads, each in one function.

Keras has no public API for these facts, and the lookahead and the train
step need them. Each function fails with a ``RuntimeError`` that names the
missing internal if a Keras release changes it
(``tests/test_keras_internals.py`` checks each against observable behaviour),
rather than producing silently wrong numbers.
"""


def _internal(obj, name, what):
    try:
        return getattr(obj, name)
    except AttributeError as e:
        import keras
        raise RuntimeError(
            f"tf_mtl reads {what} through the Keras internal `{type(obj).__name__}.{name}`, "
            f"which this Keras ({keras.__version__}) does not have. Install a Keras version "
            "tf_mtl supports (see setup.py).") from e


def optimizer_slot_index(optimizer, variable):
    """Index of ``variable``'s slots (momentum, Adam moments) in the optimizer's lists."""
    return _internal(optimizer, "_get_variable_index", "a variable's optimizer slots")(variable)


def optimizer_decays(optimizer, variable):
    """Whether ``optimizer.apply`` applies ``weight_decay`` to ``variable``
    (``exclude_from_weight_decay`` can exempt it)."""
    return bool(_internal(optimizer, "_use_weight_decay", "weight-decay exclusions")(variable))


def loss_tracker(model):
    """The ``Mean`` metric behind the ``"loss"`` log that ``compile`` creates."""
    tracker = _internal(model, "_loss_tracker", "the 'loss' metric")
    if tracker is None:
        raise RuntimeError("The model has no 'loss' tracker: compile it first.")
    return tracker


def synchronized_layers(model):
    """Names of layers (at any depth) that reduce across replicas in their
    forward pass: ``BatchNormalization(synchronized=True)``."""
    return [layer.name for layer in nested_layers(model) if getattr(layer, "synchronized", False)]


def nested_layers(layer):
    """``layer`` and every layer nested in it, at any depth."""
    return _internal(layer, "_flatten_layers", "nested layers")()


def maybe_symbolic_build(model, iterator=None, data_batch=None):
    """Keras's symbolic build before ``fit``/``evaluate`` (``Trainer._maybe_symbolic_build``),
    from the dataset's element spec instead of its first batch.

    Under a strategy Keras reads the first batch of a fresh pass over the training
    data, reduced across replicas (``strategy.reduce("MEAN", batch)``), to learn its
    shapes. That pass costs an iteration of the dataset — one that reshuffles each
    iteration then trains on another order than one device — and the reduce fails
    under ``MultiWorkerMirroredStrategy`` for nested data such as ``(x, {task: y})``
    (TensorFlow's reduce takes no nest there). The build reads shapes and dtypes only:
    the element spec of the distributed dataset (first replica's) has them.
    """
    import keras
    import tensorflow as tf
    build = _internal(keras.Model, "_maybe_symbolic_build", "the symbolic build before fit")
    if iterator is not None and data_batch is None and \
            model.distribute_strategy.num_replicas_in_sync > 1:
        dataset = _internal(iterator, "_distributed_dataset", "the dataset fit distributes")
        data_batch = tf.nest.map_structure(_first_replica_spec, dataset.element_spec)
        iterator = None
    return build(model, iterator=iterator, data_batch=data_batch)


def _first_replica_spec(spec):
    """The first replica's ``TensorSpec`` of a per-replica spec (itself otherwise)."""
    specs = getattr(spec, "_value_specs", None)
    return specs[0] if specs else spec
