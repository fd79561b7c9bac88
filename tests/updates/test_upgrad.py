"""UPGrad (tf_mtl.updates.dual_cone): the dual-cone property, SciPy projections,
hand-worked cases, a real train step, IT-MTL, saving. The helpers serve
test_dualproj.py too."""

import keras
import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.updates.dual_cone import DualProj, UPGrad

TASKS = ["a", "b", "c"]


def project(J, g):
    """Euclidean projection of ``g`` onto ``{d : J d >= 0}`` by SciPy's SLSQP (primal)."""
    res = scipy.optimize.minimize(
        lambda p: 0.5 * np.sum((p - g) ** 2), g, jac=lambda p: p - g,
        constraints=[{"type": "ineq", "fun": lambda p: J @ p, "jac": lambda p: J}],
        method="SLSQP", options={"ftol": 1e-15, "maxiter": 1000})
    # Dependent constraints (g_2 = -g_1 / 2) end it with a line-search message at the optimum:
    # check feasibility instead of ``success``.
    assert (J @ res.x).min() >= -1e-9 * np.abs(J).max() * np.linalg.norm(g), res
    return res.x


def reference(J, kind, pref=None, norm_eps=1e-4, reg_eps=1e-4):
    """TorchJD's aggregation written with SciPy's NNLS: ``G' = JJᵀ/trace`` (zero below
    ``norm_eps``), ``v = argmin_{v >= u} vᵀ(G' + reg_eps I)v``, which is NNLS in ``z = v - u``
    on ``A = [J'ᵀ; sqrt(reg_eps) I]``, ``b = -A u``; UPGrad: ``u = p_i e_i`` summed over i,
    DualProj: ``u = p``. Returns the direction ``sum_j v_j g_j``."""
    m = len(J)
    pref = np.full(m, 1.0 / m) if pref is None else np.asarray(pref, np.float64)
    trace = np.sum(J ** 2)
    Jn = np.zeros_like(J) if trace < norm_eps or trace == 0 else J / np.sqrt(trace)
    A = np.vstack([Jn.T, np.sqrt(reg_eps) * np.eye(m)])
    bounds = np.diag(pref) if kind == "upgrad" else pref[None]
    v = sum(u + scipy.optimize.nnls(A, -A @ u)[0] for u in bounds)
    return v @ J


def jacobians(count, seed):
    rng = np.random.default_rng(seed)
    for k in range(count):
        m = int(rng.integers(2, 7))
        J = rng.standard_normal((m, int(rng.integers(2, m + 4))))
        if k % 3 == 1:
            J[1] = -0.5 * J[0]                              # directly conflicting
        if k % 3 == 2:
            J = J * np.logspace(-3, 0, m)[:, None]          # norms over 3 decades
        yield J


def weights(rule, J):
    """The rule's ``combination`` on a step whose (float32) Gram matrix is ``JJᵀ``."""
    class Step:  # the one method the dual-cone rules read
        def gram(self):
            return tf.constant(J @ J.T, tf.float32)

    rule.build_tasks([f"t{i}" for i in range(len(J))])
    return rule.combination(Step(), tf.ones([len(J)])).numpy().astype(np.float64)


def direction(rule, J):
    return weights(rule, J) @ J


def check_dual_cone_property(rule, seed):
    """``<g_i, d> >= 0`` for every task, up to the float32 rounding of the Gram matrix and
    of the weights (relative to ``max ||g|| * sum_i |w_i| ||g_i||``: weights that cancel
    large gradients round to large absolute errors)."""
    for J in jacobians(40, seed=seed):
        w = weights(rule, J)
        norms = np.linalg.norm(J, axis=1)
        assert (J @ (w @ J)).min() >= -1e-6 * norms.max() * (np.abs(w) @ norms), J


def model(update, optimizer=None, tasks=TASKS):
    keras.utils.set_random_seed(0)
    enc = keras.Sequential([keras.layers.Dense(6, activation="tanh"), keras.layers.Dense(3)])
    out = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in tasks},
                                {t: "mse" for t in tasks}, loss_weights={"a": 2.0}, update=update)
    out.compile(optimizer=optimizer or keras.optimizers.SGD(0.1, momentum=0.9))
    return out


def batch(seed=3, tasks=TASKS):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((12, 4)).astype("float32")
    a = x[:, :1] + 0.1 * rng.standard_normal((12, 1)).astype("float32")
    y = {t: rng.standard_normal((12, 1)).astype("float32") for t in tasks}
    y["b"] = -2.0 * a                     # conflicts with "a"
    y["a"] = a
    return x, y


def check_train_step(rule, kind, task_scale=None, **ref_kwargs):
    """A train step (SGD + momentum, after one warm-up step) moves the encoder as a copy
    stepped along the reference direction of the loss-weighted task gradients (times
    ``task_scale(model)``, a composed weighting's weights, read before the step)."""
    m = model(rule)
    x, y = batch()
    m.train_on_batch(*batch(seed=9))           # momentum is not zero
    m.heads["b"].set_weights(m.heads["a"].get_weights())   # same head, opposite targets
    clone, opt = copy_model(m, x)
    with tf.GradientTape(persistent=True) as tape:
        pred = clone(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in clone.tasks]
    lw = np.array([clone.loss_weights[t] for t in clone.tasks])
    lw = lw if task_scale is None else lw * task_scale(m)
    grads = [tape.gradient(l, clone.shared_variables) for l in losses]
    J = np.stack([w * np.concatenate([g.numpy().ravel() for g in gs]) for w, gs in zip(lw, grads)])
    assert (J @ J.T).min() < 0               # some tasks conflict
    d = reference(J.astype(np.float64), kind, **ref_kwargs)
    pieces, start = [], 0
    for v in clone.shared_variables:
        pieces.append(tf.constant(d[start:start + v.numpy().size].reshape(v.shape), tf.float32))
        start += v.numpy().size
    opt.apply(pieces, clone.shared_variables)
    m.train_on_batch(x, y)
    for got, want in zip(m.shared_variables, clone.shared_variables):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6)


def check_save_load(rule, tmp_path):
    m = model(rule)
    m.train_on_batch(*batch())
    path = str(tmp_path / "model.keras")
    m.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.update) is type(m.update)
    assert loaded.update.get_config() == m.update.get_config()
    loaded.compile(optimizer=keras.optimizers.SGD(0.1))
    m.compile(optimizer=keras.optimizers.SGD(0.1))
    m.train_on_batch(*batch(4))
    loaded.train_on_batch(*batch(4))
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------- UPGrad
def test_every_task_gradient_has_a_nonnegative_inner_product():
    """The defining property, exact projection (no regularisation), 2–6 tasks."""
    check_dual_cone_property(UPGrad(norm_eps=0.0, reg_eps=0.0), seed=0)


def test_equals_the_mean_of_scipy_projections():
    for J in jacobians(20, seed=1):
        want = np.mean([project(J, g) for g in J], axis=0)
        got = direction(UPGrad(norm_eps=0.0, reg_eps=0.0), J)
        np.testing.assert_allclose(got, want, atol=1e-5 * np.linalg.norm(J, axis=1).max())


@pytest.mark.parametrize("pref", [None, [0.2, 1.0, 0.5]])
def test_torchjd_defaults_match_the_nnls_reference(pref):
    for J in jacobians(20, seed=2):
        if len(J) != 3:
            continue
        got = direction(UPGrad(pref_vector=pref), J)
        np.testing.assert_allclose(got, reference(J, "upgrad", pref),
                                   atol=1e-5 * np.linalg.norm(J, axis=1).max())


def test_two_tasks_by_hand():
    """g1 = (1, 0), g2 = (-2, 1): <g1, g2> = -2 < 0, so each is projected onto the other's
    half-space boundary: g1 + (2/5) g2 = (0.2, 0.4), g2 + 2 g1 = (0, 1); mean (0.1, 0.7)."""
    J = np.array([[1.0, 0.0], [-2.0, 1.0]])
    np.testing.assert_allclose(direction(UPGrad(reg_eps=0.0), J), [0.1, 0.7], atol=1e-6)


def test_torchjd_documented_example():
    """TorchJD's docstring: UPGrad()(tensor([[-4., 1., 1.], [6., 1., 1.]])) is
    tensor([0.2929, 1.9004, 1.9004]) (its defaults: norm_eps = reg_eps = 1e-4)."""
    J = np.array([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    np.testing.assert_allclose(direction(UPGrad(), J), [0.2929, 1.9004, 1.9004], atol=1e-4)


def test_non_conflicting_gradients_give_the_mean():
    J = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.0, 0.3, 1.0]])
    np.testing.assert_allclose(direction(UPGrad(reg_eps=0.0), J), J.mean(0), atol=1e-6)
    np.testing.assert_allclose(direction(UPGrad(reg_eps=0.0, pref_vector=[1, 0, 0]), J), J[0],
                               atol=1e-6)


def test_a_gram_below_norm_eps_is_not_projected():
    J = 1e-3 * np.array([[1.0, 0.0], [-2.0, 1.0]])   # trace 6e-6 < 1e-4: TorchJD's zero Gram
    np.testing.assert_allclose(direction(UPGrad(reg_eps=0.0), J), J.mean(0), atol=1e-9)
    np.testing.assert_allclose(direction(UPGrad(norm_eps=0.0, reg_eps=0.0), J),
                               1e-3 * np.array([0.1, 0.7]), atol=1e-9)


def test_train_step_equals_stepping_a_copy():
    check_train_step(UPGrad(), "upgrad")


def test_composes_with_a_weighting():
    """With UW the rule acts on ½e^{-s_i} lw_i g_i (s after the warm-up step)."""
    check_train_step(UPGrad(weighting=tf_mtl.updates.UncertaintyWeights()), "upgrad",
                     task_scale=lambda m: 0.5 * np.exp(-m.update.weighting.log_vars.numpy()))


def test_itmtl_with_upgrad_runs_a_step():
    m = model(tf_mtl.updates.ITMTL(["all", UPGrad()]))
    logs = m.train_on_batch(*batch(), return_dict=True)
    assert np.isfinite(logs["loss"])


def test_save_and_load(tmp_path):
    check_save_load(UPGrad(pref_vector=[1.0, 2.0, 0.5], reg_eps=1e-3), tmp_path)


@pytest.mark.parametrize("rule", [UPGrad, DualProj])
@pytest.mark.parametrize("kwargs, match", [
    ({"pref_vector": [1.0, -1.0]}, "Received: pref_vector=\\[1.0, -1.0\\]"),
    ({"pref_vector": "mean"}, "Received: pref_vector='mean'"),
    ({"norm_eps": -1.0}, "Received: norm_eps=-1.0"),
    ({"reg_eps": float("nan")}, "Received: reg_eps=nan"),
    ({"max_iter": 0}, "Received: max_iter=0"),
    ({"weighting": "uw"}, "Received: weighting='uw'"),
])
def test_bad_arguments(rule, kwargs, match):
    with pytest.raises(ValueError, match=match):
        rule(**kwargs)


@pytest.mark.parametrize("rule", [UPGrad, DualProj])
def test_pref_vector_needs_one_entry_per_task(rule):
    with pytest.raises(ValueError, match="Received: pref_vector=\\[1.0, 2.0\\]"):
        model(rule(pref_vector=[1.0, 2.0]))
