import numpy as np
import pytest
import tensorflow as tf

from tests.updates import rule_checks
from tf_mtl.updates.aligned_mtl import AlignedMTL, alignment_matrix
from tf_mtl.updates.uncertainty import UncertaintyWeights


def _b(jac, mode="min"):
    return alignment_matrix(tf.constant(jac @ jac.T), mode).numpy()


@pytest.mark.parametrize("seed", range(6))
def test_aligned_gradients_are_orthogonal_with_equal_norms(seed):
    """Full rank: ĝ = Bᵀ J has Gram λ_min I (condition number 1)."""
    jac = rule_checks.random_jacobian(seed)
    aligned = _b(jac).T @ jac
    lam_min = np.linalg.eigvalsh(jac @ jac.T).min()
    np.testing.assert_allclose(aligned @ aligned.T, lam_min * np.eye(len(jac)),
                               atol=1e-8 * np.abs(jac @ jac.T).max())
    assert np.linalg.cond(aligned) < 1 + 1e-6


def test_aligned_gradients_are_the_closest_orthogonal_ones():
    """Procrustes (the paper's derivation): ĝ / sqrt(λ_min) is the orthogonal factor
    U Wᵀ of the SVD J = U S Wᵀ (rows are gradients here: Jᵀ = ... transposed)."""
    jac = rule_checks.random_jacobian(4, m=3, dim=7)
    u, _, wt = np.linalg.svd(jac, full_matrices=False)        # jac = u s wt
    lam_min = np.linalg.eigvalsh(jac @ jac.T).min()
    np.testing.assert_allclose(_b(jac).T @ jac, np.sqrt(lam_min) * u @ wt, atol=1e-8)


def test_rank_deficient_keeps_the_nonzero_eigen_directions():
    """Three gradients in a plane: one eigenvalue ~0 is dropped (tolerance λ_max m ε);
    the aligned gradients span the plane, orthogonal there with norm² = the
    smallest kept eigenvalue."""
    base = rule_checks.random_jacobian(1, m=2, dim=5)
    jac = np.vstack([base, 0.3 * base[0] - 1.2 * base[1]])
    values, vectors = np.linalg.eigh(jac @ jac.T)
    keep = values > values.max() * 3 * np.finfo(np.float32).eps
    assert keep.sum() == 2
    v, lam = vectors[:, keep], values[keep]
    expected = np.sqrt(lam.min()) * (v / np.sqrt(lam)) @ v.T
    np.testing.assert_allclose(_b(jac), expected, rtol=1e-6, atol=1e-9)
    aligned = _b(jac).T @ jac
    np.testing.assert_allclose(np.linalg.svd(aligned, compute_uv=False),
                               [np.sqrt(lam.min())] * 2 + [0.0], atol=1e-6)


@pytest.mark.parametrize("mode", ["median", "rmse"])
def test_scale_modes(mode):
    jac = rule_checks.random_jacobian(5, m=4, dim=9)
    lam = np.sort(np.linalg.eigvalsh(jac @ jac.T))
    scale = {"median": lam[1], "rmse": lam.mean()}[mode]   # torch's lower median of 4
    aligned = _b(jac, mode).T @ jac
    np.testing.assert_allclose(aligned @ aligned.T, scale * np.eye(4), atol=1e-8 * lam.max())


def _direction(gram_of, prefs=None):
    def direction(shared, feats, losses):
        src = shared if gram_of == "parameters" else feats
        lam, v = np.linalg.eigh(src @ src.T)
        b = np.sqrt(lam.min()) * (v / np.sqrt(lam)) @ v.T
        w = np.ones(len(lam)) if prefs is None else np.array(prefs)
        return (b @ w) @ shared
    return direction


@pytest.mark.parametrize("on", ["parameters", "features"])
def test_train_step_equals_stepping_a_copy(on):
    net = rule_checks.model(AlignedMTL(on=on))
    rule_checks.check_step(net, *rule_checks.batch(), _direction(on))


def test_preferences_weight_the_aligned_gradients():
    net = rule_checks.model(AlignedMTL(preferences=[1.0, 0.5, 2.0]))
    rule_checks.check_step(net, *rule_checks.batch(), _direction("parameters", [1.0, 0.5, 2.0]))


@pytest.mark.parametrize("kwargs, match", [
    ({"on": "feature"}, "Received: on='feature'"),
    ({"scale_mode": "max"}, "Received: scale_mode='max'"),
    ({"preferences": [1.0, "x"]}, r"Received: preferences=\[1.0, 'x'\]"),
    ({"preferences": []}, r"Received: preferences=\[\]"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AlignedMTL(**kwargs)


def test_preferences_must_match_the_tasks():
    with pytest.raises(ValueError, match=r"Received: preferences=\[1.0, 2.0\]"):
        rule_checks.model(AlignedMTL(preferences=[1.0, 2.0]))


def test_itmtl_config_and_saving(tmp_path):
    rule_checks.check_itmtl_step(AlignedMTL())
    rule_checks.check_config_round_trip(AlignedMTL(on="features", scale_mode="rmse",
                                                   preferences=[1.0, 2.0, 3.0]))
    rule_checks.check_save_load(lambda: AlignedMTL(on="features"), tmp_path)


def test_composes_with_a_weighting():
    """UW at init scales every task gradient by ½: the aligned sum of the ½ g_i."""
    net = rule_checks.model(AlignedMTL(weighting=UncertaintyWeights()))
    ref = _direction("parameters")
    rule_checks.check_step(net, *rule_checks.batch(), lambda s, f, l: ref(0.5 * s, f, l))


def test_xla_steps_equal_the_steps_without_it():
    rule_checks.check_xla_step(lambda: AlignedMTL(on="features"))
