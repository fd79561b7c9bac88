"""DualProj (tf_mtl.updates.dual_cone): the mean gradient projected onto the dual cone.
Shared checks (bad arguments, pref_vector length) are in test_upgrad.py."""

import numpy as np
import pytest

import tf_mtl
from tests.updates.test_upgrad import (batch, check_dual_cone_property, check_save_load,
                                       check_train_step, direction, jacobians, model, project,
                                       reference)
from tf_mtl.updates.dual_cone import DualProj


def test_every_task_gradient_has_a_nonnegative_inner_product():
    check_dual_cone_property(DualProj(norm_eps=0.0, reg_eps=0.0), seed=10)


def test_equals_the_scipy_projection_of_the_mean():
    for J in jacobians(20, seed=11):
        got = direction(DualProj(norm_eps=0.0, reg_eps=0.0), J)
        np.testing.assert_allclose(got, project(J, J.mean(0)),
                                   atol=1e-5 * np.linalg.norm(J, axis=1).max())


@pytest.mark.parametrize("pref", [None, [0.2, 1.0, 0.5]])
def test_torchjd_defaults_match_the_nnls_reference(pref):
    for J in jacobians(20, seed=12):
        if len(J) == 3:
            np.testing.assert_allclose(direction(DualProj(pref_vector=pref), J),
                                       reference(J, "dualproj", pref),
                                       atol=1e-5 * np.linalg.norm(J, axis=1).max())


def test_two_tasks_by_hand():
    """g1 = (1, 0), g2 = (-2, 1): the mean (-0.5, 0.5) has <g1, ·> = -0.5 < 0, so it goes
    to g1's boundary: (0, 0.5), where <g2, ·> = 0.5 >= 0. (UPGrad gives (0.1, 0.7).)"""
    J = np.array([[1.0, 0.0], [-2.0, 1.0]])
    np.testing.assert_allclose(direction(DualProj(reg_eps=0.0), J), [0.0, 0.5], atol=1e-6)


def test_torchjd_documented_example():
    """TorchJD's docstring: DualProj()(tensor([[-4., 1., 1.], [6., 1., 1.]])) is
    tensor([0.5563, 1.1109, 1.1109])."""
    J = np.array([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]])
    np.testing.assert_allclose(direction(DualProj(), J), [0.5563, 1.1109, 1.1109], atol=1e-4)


def test_a_mean_inside_the_cone_is_kept():
    """Conflicting gradients whose mean is in the dual cone: no projection (unlike UPGrad)."""
    J = np.array([[1.0, 0.0], [-1.0, 1.0]])       # mean (0, 0.5): <g1,·> = 0, <g2,·> = 0.5
    np.testing.assert_allclose(direction(DualProj(reg_eps=0.0), J), [0.0, 0.5], atol=1e-6)
    J = np.array([[1.0, 0.2, 0.0], [0.5, 1.0, 0.1], [0.0, 0.3, 1.0]])   # no conflict
    np.testing.assert_allclose(direction(DualProj(reg_eps=0.0), J), J.mean(0), atol=1e-6)


def test_train_step_equals_stepping_a_copy():
    check_train_step(DualProj(), "dualproj")


def test_itmtl_with_dualproj_runs_a_step():
    m = model(tf_mtl.updates.ITMTL(["all", DualProj()]))
    assert np.isfinite(m.train_on_batch(*batch(), return_dict=True)["loss"])


def test_save_and_load(tmp_path):
    check_save_load(DualProj(pref_vector=[0.5, 1.0, 1.0]), tmp_path)
