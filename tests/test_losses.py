"""Every form of task loss trains, saves and loads (tf_mtl.losses)."""

import keras
import numpy as np
import pytest

import tf_mtl
from tf_mtl.losses import FunctionLoss


def abs_error(y_true, y_pred):
    """A plain function (per-example losses), as users write them."""
    return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)


def _batch(n=8):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 5)).astype("float32")
    return x, {"a": rng.standard_normal((n, 1)).astype("float32"),
               "b": rng.standard_normal((n, 1)).astype("float32")}


FORMS = {
    "function": lambda: abs_error,
    "keras_function": lambda: keras.losses.mean_absolute_error,
    "loss_object": lambda: keras.losses.MeanAbsoluteError(),
    "name": lambda: "mae",
    "function_loss": lambda: FunctionLoss(abs_error),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_form_trains_saves_and_loads(form, tmp_path):
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([4]),
                                  {t: keras.layers.Dense(1) for t in "ab"},
                                  {"a": FORMS[form](), "b": "mse"})
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = _batch()
    logs = model.train_on_batch(x, y, return_dict=True)
    # The step's "a" loss is the batch mean absolute error of the model before the step
    # (recomputed here with NumPy on a fresh copy built from the same seed).
    keras.utils.set_random_seed(0)
    fresh = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([4]),
                                  {t: keras.layers.Dense(1) for t in "ab"}, {"a": "mae", "b": "mse"})
    expected = np.mean(np.abs(y["a"] - keras.ops.convert_to_numpy(fresh(x)["a"])))
    assert logs["a_loss"] == pytest.approx(expected, rel=1e-5)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded.compile(optimizer="sgd")  # MultiTaskModel's compile is not restored by Keras.
    np.testing.assert_allclose(loaded.evaluate(x, y, verbose=0, return_dict=True)["a_loss"],
                               model.evaluate(x, y, verbose=0, return_dict=True)["a_loss"],
                               rtol=1e-6)
    assert loaded.task_losses["a"].name == model.task_losses["a"].name


def test_a_function_from_an_unimported_module_is_refused_with_what_to_do():
    config = FunctionLoss(abs_error).get_config()
    config.update(fn_module="no_such_module_xyz", fn_qualname="abs_error")
    config["fn"] = {**config["fn"], "config": "no_such_function_xyz"}
    with pytest.raises(ValueError, match=r"register_keras_serializable.*custom_objects"):
        FunctionLoss.from_config(config)


def test_a_lambda_trains_and_loads_only_with_safe_mode_off(tmp_path):
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([4]), {"a": keras.layers.Dense(1)},
                                  {"a": lambda y, p: keras.ops.mean((y - p) ** 2, axis=-1)})
    model.compile(optimizer="sgd")
    x, y = _batch()
    model.train_on_batch(x, {"a": y["a"]})
    assert model.task_losses["a"].name == "lambda"
    path = str(tmp_path / "model.keras")
    with pytest.warns(UserWarning, match="lambda"):
        model.save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        keras.models.load_model(path)
    keras.models.load_model(path, safe_mode=False)


def test_bad_losses_name_the_task():
    with pytest.raises(ValueError, match=r"Unknown loss for task 'a'.*Received: losses\['a'\]"):
        tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([4]), {"a": keras.layers.Dense(1)},
                              {"a": "no_such_loss"})
    with pytest.raises(TypeError, match=r"losses\['a'\] must be"):
        tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([4]), {"a": keras.layers.Dense(1)}, {"a": 3})


def hinge(y_true, y_pred):
    """A user's function that shares its name with a Keras built-in loss."""
    return 7.0 * keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)


def test_a_users_function_named_like_a_keras_loss_loads_as_the_users(tmp_path):
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([4]), {"a": keras.layers.Dense(1)},
                                  {"a": hinge})
    model.compile(optimizer="sgd")
    x, y = _batch()
    y = {"a": y["a"]}
    expected = model.evaluate(x, y, verbose=0, return_dict=True)["a_loss"]
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.task_losses["a"]._fn is hinge    # not keras.losses.hinge
    loaded.compile(optimizer="sgd")
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["a_loss"] == pytest.approx(expected)


def test_a_partial_trains_but_is_refused_at_save_with_what_to_do(tmp_path):
    import functools
    loss = FunctionLoss(functools.partial(abs_error), name="my loss/with spaces")
    assert loss.name == "my_loss_with_spaces"   # a valid root name scope
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([4]), {"a": keras.layers.Dense(1)},
                                  {"a": loss})
    model.compile(optimizer="sgd")
    x, y = _batch()
    model.train_on_batch(x, {"a": y["a"]})
    with pytest.raises(ValueError, match=r"cannot be saved.*subclass keras.losses.Loss"):
        model.save(str(tmp_path / "model.keras"))
