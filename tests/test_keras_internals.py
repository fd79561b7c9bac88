"""Each Keras internal tf_mtl reads, checked against what Keras observably does."""

import keras
import numpy as np
import pytest

import tf_mtl
from tf_mtl import keras_internals


def test_slot_index_finds_the_momentum_apply_updates():
    variables = [keras.Variable(np.ones((2, 2), "float32")), keras.Variable(np.ones(3, "float32"))]
    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    opt.apply([np.full((2, 2), 1.0, "float32"), np.full(3, 2.0, "float32")], variables)
    for v, g in zip(variables, (1.0, 2.0)):
        momentum = opt.momentums[keras_internals.optimizer_slot_index(opt, v)].numpy()
        np.testing.assert_allclose(momentum, np.full(v.shape, -0.1 * g))


def test_weight_decay_exclusion_agrees_with_apply():
    variables = [keras.Variable(np.ones(2, "float32")), keras.Variable(np.ones(2, "float32"))]
    opt = keras.optimizers.AdamW(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[variables[1]])
    zero = [np.zeros(2, "float32")] * 2
    opt.apply(zero, variables)  # A zero gradient moves a weight only by its decay.
    for v in variables:
        decayed = not np.allclose(v.numpy(), 1.0)
        assert keras_internals.optimizer_decays(opt, v) == decayed


def test_loss_tracker_is_the_loss_metric_of_the_logs():
    model = tf_mtl.MultiTaskModel(keras.layers.Dense(2), {"a": keras.layers.Dense(1)},
                                  {"a": "mse"})
    model.compile(optimizer="sgd")
    tracker = keras_internals.loss_tracker(model)
    assert tracker in model.metrics and tracker.name == "loss"


def test_synchronized_layers_are_found_at_any_depth():
    inner = keras.Sequential([keras.layers.BatchNormalization(synchronized=True, name="sync")])
    encoder = keras.Sequential([keras.layers.Dense(3), keras.layers.BatchNormalization(), inner])
    model = tf_mtl.MultiTaskModel(encoder, {"a": keras.layers.Dense(1)}, {"a": "mse"})
    assert keras_internals.synchronized_layers(model) == ["sync"]
    names = [layer.name for layer in keras_internals.nested_layers(encoder)]
    assert names[0] == encoder.name and "sync" in names and len(names) == 5


def test_a_changed_keras_fails_with_a_clear_message():
    class NoInternals:
        pass

    with pytest.raises(RuntimeError, match="Keras internal `NoInternals._get_variable_index`"):
        keras_internals.optimizer_slot_index(NoInternals(), None)
    with pytest.raises(RuntimeError, match="`NoInternals._use_weight_decay`"):
        keras_internals.optimizer_decays(NoInternals(), None)
    with pytest.raises(RuntimeError, match="`NoInternals._loss_tracker`"):
        keras_internals.loss_tracker(NoInternals())
    with pytest.raises(RuntimeError, match="`NoInternals._flatten_layers`"):
        keras_internals.synchronized_layers(NoInternals())
