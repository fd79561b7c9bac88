"""The update rule's own variables get no weight decay from the compiled optimizer
(MultiTaskModel.compile excludes them); the network's variables still decay."""

import keras
import numpy as np
import tensorflow as tf

import tf_mtl
from tf_mtl import keras_internals, lookahead
from tf_mtl.updates.uncertainty import UncertaintyWeights

LR, DECAY, B1, B2, EPS = 0.05, 0.1, 0.9, 0.999, 1e-7


def _model(update=None, optimizer=None, build_first=False):
    keras.utils.set_random_seed(0)
    enc = keras.Sequential([keras.layers.Dense(4, activation="tanh", name="body")])
    model = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in "ab"},
                                  {t: "mse" for t in "ab"}, loss_weights={"a": 2.0},
                                  update=update or UncertaintyWeights())
    if build_first:
        model.build_for(_batch(0)[0])
    model.compile(optimizer=optimizer or keras.optimizers.AdamW(LR, weight_decay=DECAY,
                                                                epsilon=EPS))
    return model


def _batch(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 3)).astype("float32")
    return x, {t: rng.standard_normal((8, 1)).astype("float32") for t in "ab"}


class _AdamW:
    """Decoupled weight decay (``w -= w·decay·lr``) then Adam, Keras's form, in NumPy."""

    def __init__(self, decay):
        self.decay, self.m, self.v, self.t = decay, 0.0, 0.0, 0

    def step(self, w, g):
        self.t += 1
        w = w - w * self.decay * LR
        self.m = self.m + (g - self.m) * (1 - B1)
        self.v = self.v + (g * g - self.v) * (1 - B2)
        alpha = LR * np.sqrt(1 - B2 ** self.t) / (1 - B1 ** self.t)
        return w - self.m * alpha / (np.sqrt(self.v) + EPS)


def _gradients(model, x, y):
    """(d objective / d log-variances, d objective / d encoder kernel) by hand:
    objective ``sum ½e^{-s_i} lw_i L_i + ½ s_i``."""
    s = model.update.log_vars.numpy().astype(np.float64)
    lw = np.array([2.0, 1.0])
    w = 0.5 * np.exp(-s)
    kernel = model.encoder.layers[0].kernel
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        losses = tf.stack([keras.losses.MeanSquaredError()(y[t], pred[t]) for t in "ab"])
        weighted = tf.reduce_sum(tf.constant(w * lw, tf.float32) * losses)
    d_kernel = tape.gradient(weighted, kernel).numpy().astype(np.float64)
    return -w * lw * losses.numpy() + 0.5, d_kernel


def _check_steps(model, steps, seed=0):
    """Steps the model; the log-variances follow AdamW without decay, the encoder's kernel
    AdamW with it."""
    model.build_for(_batch(seed)[0])
    rule_opt, kernel_opt = _AdamW(0.0), _AdamW(DECAY)
    s = model.update.log_vars.numpy().astype(np.float64)
    kernel = model.encoder.layers[0].kernel
    k = kernel.numpy().astype(np.float64)
    for i in range(steps):
        x, y = _batch(seed + i)
        ds, dk = _gradients(model, x, y)
        s, k = rule_opt.step(s, ds), kernel_opt.step(k, dk)
        model.train_on_batch(x, y)
        np.testing.assert_allclose(model.update.log_vars.numpy(), s, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(kernel.numpy(), k, rtol=1e-4, atol=1e-6)
    return s


def test_log_variances_get_no_decay_while_the_encoder_decays():
    model = _model()
    s = _check_steps(model, 4)
    # With decay the log-variances would have been pulled towards 0 by ~lr·decay·s per step:
    decayed = _AdamW(DECAY)
    assert abs(s[0]) > 1e-3 and not np.allclose(decayed.step(s, 0.0 * s), s, atol=1e-6)
    opt = model.optimizer
    assert not keras_internals.optimizer_decays(opt, model.update.log_vars)
    assert keras_internals.optimizer_decays(opt, model.encoder.layers[0].kernel)


def test_a_model_loaded_from_a_file_keeps_the_exclusion(tmp_path):
    model = _model()
    model.train_on_batch(*_batch(0))
    path = str(tmp_path / "uw.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded.compile(optimizer=keras.optimizers.AdamW(LR, weight_decay=DECAY, epsilon=EPS))
    np.testing.assert_array_equal(loaded.update.log_vars.numpy(), model.update.log_vars.numpy())
    _check_steps(loaded, 2, seed=5)


def test_a_composed_weighting_and_earlier_exclusions_are_kept():
    """UW inside PCGrad: its log-variances are excluded too; an exclusion the user set
    before compile (by name, on a built model) still holds."""
    opt = keras.optimizers.AdamW(LR, weight_decay=DECAY)
    opt.exclude_from_weight_decay(var_names=["bias"])
    model = _model(tf_mtl.updates.PCGrad(weighting=UncertaintyWeights()), opt, build_first=True)
    model.train_on_batch(*_batch(0))
    decays = {v.path: keras_internals.optimizer_decays(opt, v) for v in model.trainable_variables}
    assert not decays[model.update.weighting.log_vars.path]
    assert all(not d for p, d in decays.items() if p.endswith("bias"))
    assert all(d for p, d in decays.items() if p.endswith("kernel"))


def test_the_lookahead_stays_faithful_with_a_rule_variable():
    """The lookahead's next shared weights for the real shared gradient equal the real
    AdamW step (it reads the same exclusions), with UW's variable in the optimizer."""
    model = _model()
    model.train_on_batch(*_batch(0))
    x, y = _batch(1)
    s = model.update.log_vars.numpy()
    with tf.GradientTape() as tape:
        pred = model(x, training=True)
        losses = tf.stack([keras.losses.MeanSquaredError()(y[t], pred[t]) for t in "ab"])
        weighted = tf.reduce_sum(tf.constant(0.5 * np.exp(-s) * [2.0, 1.0], tf.float32) * losses)
    grads = tape.gradient(weighted, model.shared_variables)
    predicted = lookahead.next_weights(model.optimizer, [g[None] for g in grads],
                                       model.shared_variables)
    model.train_on_batch(x, y)
    for got, want in zip(model.shared_variables, predicted):
        np.testing.assert_allclose(got.numpy(), want.numpy()[0], rtol=1e-5, atol=1e-6)
