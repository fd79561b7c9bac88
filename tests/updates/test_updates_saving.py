"""Every update rule saves with ``model.save``, reloads, and resumes with identical state."""

import keras
import numpy as np
import pytest

import tf_mtl
from tf_mtl import updates

RULES = {
    "uw": lambda: updates.UncertaintyWeights(),
    "uw_log1p": lambda: updates.UncertaintyWeights(form="log1p"),
    "cov": lambda: updates.CoV(),
    "dwa": lambda: updates.DWA(temperature=1.5, period=2),
    "gradnorm": lambda: updates.GradNorm(alpha=1.0, on="all_shared", learning_rate=0.05),
    "pcgrad": lambda: updates.PCGrad(seed=3),
    "mgda_ub": lambda: updates.MGDA(upper_bound=True, normalization="loss+"),
    "uw_pcgrad": lambda: updates.PCGrad(weighting=updates.UncertaintyWeights()),
    "it_uw_pcgrad": lambda: updates.ITMTL(["all", "a", updates.PCGrad(seed=1)],
                                          weighting=updates.UncertaintyWeights(),
                                          lookahead="first_order"),
}
TASKS = ["a", "b", "c"]


def _batch(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 4)).astype("float32")
    return x, {t: rng.standard_normal((8, 1)).astype("float32") for t in TASKS}


def _state(model):
    return [v.numpy().copy() for v in model.update.variables] + model.get_weights()


@pytest.mark.parametrize("name", sorted(RULES))
def test_save_reload_resume(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(
        keras.Sequential([keras.layers.Dense(5, activation="tanh")]),
        {t: keras.layers.Dense(1) for t in TASKS}, {t: "mse" for t in TASKS},
        update=RULES[name]())
    # Plain SGD has no slots: the rule's state is all that differs between runs.
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    for i in range(3):
        model.train_on_batch(*_batch(i))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.update) is type(model.update)
    assert loaded.update.get_config() == model.update.get_config()
    for a, b in zip(_state(model), _state(loaded)):
        np.testing.assert_array_equal(a, b)
    assert len(loaded.update.variables) == len(model.update.variables)
    assert len(model.update.variables) > 0 or name == "mgda_ub"  # MGDA keeps no state
    loaded.compile(optimizer=keras.optimizers.SGD(0.05))  # a custom compile is not restored
    for i in range(3, 5):  # resumes: the same next steps
        model.train_on_batch(*_batch(i))
        loaded.train_on_batch(*_batch(i))
    for a, b in zip(_state(model), _state(loaded)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
