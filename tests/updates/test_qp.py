"""The exact QP solver: KKT conditions, brute force over active sets, SciPy's NNLS."""

import itertools

import numpy as np
import pytest
import scipy.optimize
import tensorflow as tf

from tf_mtl.updates.qp import dual_cone_weights, min_norm_weights, nonnegative_qp

_min_norm = tf.function(min_norm_weights)
_dual_cone = tf.function(dual_cone_weights)


def _jacobians(count, seed, tasks=(2, 8)):
    """Random task Jacobians ``[m, d]``: general, rank-deficient (``d < m``, two equal
    rows) and ill-conditioned (rows scaled over 6 decades)."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        m = int(rng.integers(tasks[0], tasks[1] + 1))
        d = int(rng.integers(1, m + 3))
        J = rng.standard_normal((m, d))
        if k % 4 == 1:
            J[1] = J[0]                                       # equal gradients
        if k % 4 == 2:
            J = J * np.logspace(-6, 0, m)[rng.permutation(m), None]
        if k % 4 == 3:
            J = rng.standard_normal((m, 2)) @ rng.standard_normal((2, d + 2))   # rank 2
        yield J


def _brute_min_norm(G):
    """min αᵀGα on the simplex: every support's equality-constrained stationary point."""
    m, best = len(G), np.inf
    for r in range(1, m + 1):
        for S in map(list, itertools.combinations(range(m), r)):
            kkt = np.block([[G[np.ix_(S, S)], np.ones((r, 1))],
                            [np.ones((1, r)), np.zeros((1, 1))]])
            a = np.linalg.lstsq(kkt, np.r_[np.zeros(r), 1.0], rcond=None)[0][:r]
            if a.min() >= -1e-12:
                full = np.zeros(m)
                full[S] = np.maximum(a, 0) / np.maximum(a, 0).sum()
                best = min(best, full @ G @ full)
    return best


def _brute_projection(G, u):
    """min vᵀGv over v >= u: every set F of free coordinates, the others at their bound."""
    m, best = len(G), u @ G @ u
    for r in range(1, m + 1):
        for F in map(list, itertools.combinations(range(m), r)):
            fixed = [i for i in range(m) if i not in F]
            z = np.linalg.lstsq(G[np.ix_(F, F)], -G[np.ix_(F, fixed)] @ u[fixed], rcond=None)[0]
            if np.all(z >= u[F] - 1e-12):
                v = u.copy()
                v[F] = np.maximum(z, u[F])
                best = min(best, v @ G @ v)
    return best


def test_min_norm_kkt_on_random_gram_matrices():
    """α >= 0, 1ᵀα = 1 (primal); (Gα)_i >= αᵀGα (dual: the multiplier of α_i >= 0 is
    (Gα)_i - αᵀGα); equality where α_i > 0 (complementary slackness)."""
    for J in _jacobians(240, seed=0):
        G = J @ J.T
        alpha = _min_norm(tf.constant(G)).numpy()
        scale = np.diag(G).max()
        value = alpha @ G @ alpha
        multipliers = G @ alpha - value
        assert alpha.min() >= 0 and abs(alpha.sum() - 1) < 1e-12
        assert multipliers.min() >= -1e-9 * scale, (J, alpha, multipliers)
        assert np.abs(alpha * multipliers).max() <= 1e-9 * scale, (J, alpha, multipliers)


def test_min_norm_matches_brute_force_over_active_sets():
    for J in _jacobians(120, seed=1, tasks=(2, 6)):
        G = J @ J.T
        alpha = _min_norm(tf.constant(G)).numpy()
        best = _brute_min_norm(G)
        # 1e-6 relative; an absolute floor where the min-norm point is 0 (rounding).
        assert alpha @ G @ alpha <= best * (1 + 1e-6) + 1e-12 * np.diag(G).max(), J


def test_min_norm_matches_scipy_nnls_on_the_jacobian():
    """SciPy's NNLS on the explicit ``A = [Jᵀ; 1ᵀ]``, ``b = (0, 1)`` (the identity in qp's
    docstring), normalised to the simplex, has the same value."""
    for J in _jacobians(80, seed=2):
        m, d = J.shape
        x, _ = scipy.optimize.nnls(np.vstack([J.T, np.ones((1, m))]), np.r_[np.zeros(d), 1.0])
        ref = x / x.sum()
        alpha = _min_norm(tf.constant(J @ J.T)).numpy()
        got, want = np.sum((alpha @ J) ** 2), np.sum((ref @ J) ** 2)
        assert got <= want * (1 + 1e-6) + 1e-12 * np.sum(J ** 2, 1).max(), J


@pytest.mark.parametrize("g1, g2", [([1.0, 0.0], [0.0, 1.0]), ([2.0, 0.0], [-1.0, 1.0]),
                                    ([1.0, 0.0], [3.0, 1.0]), ([1.0, 2.0], [1.0, 2.0])])
def test_two_tasks_closed_form(g1, g2):
    g1, g2 = np.array(g1), np.array(g2)
    G = np.stack([g1, g2]) @ np.stack([g1, g2]).T
    alpha = min_norm_weights(tf.constant(G)).numpy()
    diff = (g1 - g2) @ (g1 - g2)
    if diff == 0:   # equal gradients: every α is optimal, the point is g1
        np.testing.assert_allclose(alpha @ np.stack([g1, g2]), g1, rtol=1e-12)
        return
    gamma = np.clip((g2 - g1) @ g2 / diff, 0, 1)
    np.testing.assert_allclose(alpha, [gamma, 1 - gamma], atol=1e-12)


def test_the_case_that_defeated_frank_wolfe():
    """Frank–Wolfe (the authors' MinNormSolver, as tf_mtl had it: best pair, 250 steps,
    stop below 1e-5 change) ended at 0.020931, 19% above the optimum 0.0176085."""
    J = np.array([[-0.5, 1.0, 1.5, -0.5], [-0.2, -1.6, -0.4, 0.6],
                  [-0.1, 0.3, -0.2, 0.1], [0.6, 0.7, -2.0, -0.2]])
    G = J @ J.T
    for dtype in (tf.float32, tf.float64):
        alpha = min_norm_weights(tf.constant(G, dtype)).numpy().astype(np.float64)
        np.testing.assert_allclose(alpha @ G @ alpha, _brute_min_norm(G), rtol=1e-6)
    assert _brute_min_norm(G) == pytest.approx(0.0176085, rel=1e-5)


def test_dual_cone_kkt_on_random_gram_matrices():
    """v >= u (primal); Gv >= 0: the multipliers of v >= u, i.e. every g_i·d >= 0 (dual);
    (v - u)·Gv = 0 (complementary slackness); all rows of U in one call."""
    rng = np.random.default_rng(3)
    for J in _jacobians(200, seed=4):
        m = len(J)
        G = J @ J.T
        U = np.vstack([np.eye(m), np.full((1, m), 1.0 / m), rng.uniform(0, 1, (1, m))])
        V = _dual_cone(tf.constant(G), tf.constant(U)).numpy()
        scale = np.diag(G).max() * max(1.0, np.abs(V).max())
        assert V.shape == U.shape and (V >= U).all()
        assert (V @ G).min() >= -1e-9 * scale, J
        assert np.abs((V - U) * (V @ G)).max() <= 1e-9 * scale * max(1.0, np.abs(V).max()), J


def test_dual_cone_matches_brute_force_and_scipy_projection():
    """The value vᵀGv equals the best over free sets, and Jᵀv equals SciPy's (SLSQP)
    Euclidean projection of Jᵀu onto {d : Jd >= 0} in the primal."""
    rng = np.random.default_rng(5)
    for J in _jacobians(60, seed=6, tasks=(2, 5)):
        m, d = J.shape
        G = J @ J.T
        u = rng.uniform(0, 1, m)
        v = dual_cone_weights(tf.constant(G), tf.constant(u[None])).numpy()[0]
        scale = np.diag(G).max() * (1 + u.sum()) ** 2
        assert v @ G @ v <= _brute_projection(G, u) * (1 + 1e-6) + 1e-12 * scale, J
        target = u @ J
        res = scipy.optimize.minimize(
            lambda p: 0.5 * np.sum((p - target) ** 2), target, jac=lambda p: p - target,
            constraints=[{"type": "ineq", "fun": lambda p: J @ p, "jac": lambda p: J}],
            method="SLSQP", options={"ftol": 1e-14, "maxiter": 500})
        np.testing.assert_allclose(v @ J, res.x, atol=1e-6 * np.sqrt(scale))


def test_nonnegative_qp_against_scipy_nnls():
    """½xᵀAᵀAx - (Aᵀb)ᵀx over x >= 0 is NNLS: the same residual as scipy.optimize.nnls."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        A = rng.standard_normal((int(rng.integers(1, 9)), int(rng.integers(2, 8))))
        b = rng.standard_normal(len(A))
        x = nonnegative_qp(tf.constant(A.T @ A), tf.constant(-(A.T @ b)[None])).numpy()[0]
        _, residual = scipy.optimize.nnls(A, b)
        assert x.min() >= 0
        assert np.linalg.norm(A @ x - b) <= residual * (1 + 1e-9) + 1e-12


def test_xla_and_non_finite_input():
    G = np.array([[2.0, -1.0, 0.3], [-1.0, 1.5, 0.2], [0.3, 0.2, 1.0]])
    eager = min_norm_weights(tf.constant(G, tf.float32)).numpy()
    xla = tf.function(min_norm_weights, jit_compile=True)(tf.constant(G, tf.float32)).numpy()
    np.testing.assert_allclose(xla, eager, atol=1e-7)
    U = tf.constant(np.eye(3), tf.float32)
    np.testing.assert_allclose(
        tf.function(dual_cone_weights, jit_compile=True)(tf.constant(G, tf.float32), U).numpy(),
        dual_cone_weights(tf.constant(G, tf.float32), U).numpy(), atol=1e-7)
    G[0, 1] = np.nan     # a NaN gradient gives NaN weights (as a NaN loss would), not an error
    assert np.isnan(min_norm_weights(tf.constant(G)).numpy()).all()
