import numpy as np
import pytest
import tensorflow as tf

from tests.updates import rule_checks
from tf_mtl.updates.gradvac import GradVac, gradvac_combination
from tf_mtl.updates.pcgrad import PCGrad
from tf_mtl.updates.uncertainty import UncertaintyWeights


def _reference(grads, goals, order, beta):
    """Wang et al. Alg. 2 on explicit vectors: returns (sum_i g'_i, new goals)."""
    goals = goals.copy()
    out = []
    for i, g in enumerate(grads):
        pc = g.copy()
        for j in order:
            if j == i:
                continue
            cos = pc @ grads[j] / (np.linalg.norm(pc) * np.linalg.norm(grads[j]))
            goal = goals[i, j]
            if cos < goal:
                pc = pc + np.linalg.norm(pc) * (goal * np.sqrt(1 - cos ** 2)
                                                - cos * np.sqrt(1 - goal ** 2)) / (
                    np.linalg.norm(grads[j]) * np.sqrt(1 - goal ** 2)) * grads[j]
            goals[i, j] = (1 - beta) * goal + beta * cos
        out.append(pc)
    return np.sum(out, 0), goals


def _via_gram(jac, goals, order, beta):
    coeffs, new = gradvac_combination(tf.constant(jac @ jac.T), tf.constant(goals, tf.float32),
                                      tf.constant(order, tf.int32), beta)
    return coeffs.numpy().astype(np.float64) @ jac, new.numpy()


def test_vaccine_reaches_the_goal_exactly():
    """Two tasks with goal 0.5 and cos 0: after the vaccine cos(g'_1, g_2) = 0.5."""
    jac = np.array([[1.0, 0.0], [0.0, 2.0]])
    goals = np.array([[0.0, 0.5], [0.5, 0.0]])
    coeffs, _ = gradvac_combination(tf.constant(jac @ jac.T), tf.constant(goals, tf.float32),
                                    tf.constant([0, 1]), 0.01)
    # g'_1 = g_1 + w g_2 with cos 1/2: w ||g_2|| / ||g_1|| = tan(30°).
    np.testing.assert_allclose(coeffs.numpy()[1], 1.0 + np.tan(np.pi / 6) / 2, rtol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_several_steps_match_the_algorithm_as_the_goals_evolve(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 6))
    goals = np.zeros((m, m))
    ref_goals, fired = goals.copy(), False
    for step in range(4):
        jac = rule_checks.random_jacobian(100 * seed + step, m=m, dim=m + 3)
        order = list(rng.permutation(m))
        got, goals = _via_gram(jac, goals, order, 0.3)
        want, ref_goals = _reference(jac, ref_goals, order, 0.3)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(goals, ref_goals, rtol=1e-5, atol=1e-6)
        fired |= not np.allclose(want, jac.sum(0))
    assert fired and np.any(goals != 0)


def test_order_is_pcgrads_draw():
    rule, pc = GradVac(seed=5), PCGrad(seed=5)
    rule.build_tasks(list("abcde"))
    pc.build_tasks(list("abcde"))
    for _ in range(5):
        np.testing.assert_array_equal(rule.order().numpy(), pc.order().numpy())


def test_train_steps_equal_stepping_a_copy_and_goals_evolve():
    rule = GradVac(beta=0.5, seed=2)
    net = rule_checks.model(rule)
    goals = np.zeros((3, 3))
    for i in range(3):
        probe = GradVac(seed=2)   # draws this step's order as the rule will
        probe.build_tasks(rule.tasks)
        probe.draws.assign(int(rule.draws.numpy()))
        order = list(probe.order().numpy())
        state = {}

        def direction(shared, feats, losses, state=state, goals=goals, order=order):
            state["d"], state["goals"] = _reference(shared, goals, order, 0.5)
            return state["d"]

        rule_checks.check_step(net, *rule_checks.batch(i), direction)
        goals = state["goals"]
        np.testing.assert_allclose(rule.goals.numpy(), goals, rtol=1e-4, atol=1e-6)
    assert np.any(goals != 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": 0.0}, "Received: beta=0.0"),
    ({"beta": 1.5}, "Received: beta=1.5"),
    ({"seed": "x"}, "Received: seed='x'"),
    ({"weighting": "uw"}, "Received: weighting='uw'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GradVac(**kwargs)


def test_itmtl_config_and_saving(tmp_path):
    rule_checks.check_itmtl_step(GradVac())
    rule_checks.check_config_round_trip(GradVac(beta=0.2, seed=4))
    _, loaded = rule_checks.check_save_load(lambda: GradVac(beta=0.5, seed=1), tmp_path)
    assert np.any(loaded.update.goals.numpy() != 0)


def test_composes_with_a_weighting():
    """UW at init scales every task gradient by ½: GradVac of the ½ g_i (goals 0)."""
    rule = GradVac(seed=3, weighting=UncertaintyWeights())
    net = rule_checks.model(rule)
    probe = GradVac(seed=3)
    probe.build_tasks(rule.tasks)
    order = list(probe.order().numpy())
    rule_checks.check_step(net, *rule_checks.batch(), lambda s, f, l: _reference(
        0.5 * s, np.zeros((3, 3)), order, 0.01)[0])


def test_xla_steps_equal_the_steps_without_it():
    rule_checks.check_xla_step(lambda: GradVac(beta=0.5))
