"""The critic's transference (001 App. D.3) equals really stepping a copy of the critic and
its Adam optimizer: exact and first-order, through ``measure`` and inside the SAC step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.rl.critic import TwinQNetwork
from tf_mtl.rl.critic_transference import transference_probes
from tf_mtl.rl.sac import MultiTaskSAC

TASKS = ["a", "b", "c"]
OBS, ACT, B = 5, 2, 6


def _batch(rng):
    return {"observations": rng.normal(size=(3, B, OBS)),
            "actions": rng.uniform(-1, 1, (3, B, ACT)),
            "rewards": rng.normal(size=(3, B)) * np.array([[1.0], [3.0], [0.3]]),
            "next_observations": rng.normal(size=(3, B, OBS)),
            "terminals": (rng.uniform(size=(3, B)) < 0.2).astype(float)}


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(1)
    sac = MultiTaskSAC(TASKS, OBS, ACT, hidden_units=[8, 8], seed=3,
                       probes=transference_probes(["exact", "first_order"], every=1))
    for _ in range(3):  # Adam moments and bias correction away from their start.
        sac.train_step(_batch(rng))
    return sac, _batch(rng)


def _inputs(sac, batch):
    """The critic's ``{task: s ++ a}`` and the step's soft targets ``{task: y}``, as the
    step forms them (the target policy's noise is seeded with the step counter)."""
    task = np.repeat(np.arange(3), B)
    rows = {k: tf.constant(np.reshape(v, (3 * B,) + np.shape(v)[2:]), tf.float32)
            for k, v in batch.items()}
    states = sac.states(rows["observations"], task)
    next_states = sac.states(rows["next_observations"], task)
    next_a, next_logp = sac.policy.sample(next_states, sac._seed(1))
    next_q = sac.target_critic(tf.concat([next_states, next_a], -1)).numpy()
    alpha = np.exp(sac.log_alpha.numpy())[task]
    y = rows["rewards"].numpy() + 0.99 * (1 - rows["terminals"].numpy()) * (
        next_q.min(1) - alpha * next_logp.numpy())
    x = tf.concat([states, rows["actions"]], -1).numpy()
    return ({t: x[i * B:(i + 1) * B] for i, t in enumerate(TASKS)},
            {t: y[i * B:(i + 1) * B, None] for i, t in enumerate(TASKS)})


def _copy(sac):
    critic = TwinQNetwork([8, 8])
    critic.build((None, OBS + 3 + ACT))
    critic.set_weights(sac.critic.encoder.get_weights())
    opt = keras.optimizers.Adam.from_config(sac.critic.optimizer.get_config())
    opt.build(critic.trainable_variables)
    for dst, src in zip(opt.variables, sac.critic.optimizer.variables):
        dst.assign(src)
    return critic, opt


def _j_q(critic, x, y):
    """J_Q per task in NumPy: 0.5 mean((Q_1 - y)^2) + 0.5 mean((Q_2 - y)^2)."""
    out = []
    for t in TASKS:
        q = critic(x[t]).numpy()
        out.append(np.sum(0.5 * np.mean((q - y[t]) ** 2, axis=0)))
    return np.array(out)


def _stepped_copies(sac, x, y):
    """For each source (every task, then all): the real Adam step of a fresh copy on the
    source's gradient; returns ``{source: (J_Q after [m], weights delta)}`` and J_Q before."""
    results, before = {}, None
    for source in TASKS + ["a|b|c"]:
        critic, opt = _copy(sac)
        members = source.split("|")
        with tf.GradientTape() as tape:
            loss = tf.add_n([tf_mtl.rl.TwinBellmanLoss()(y[t], critic(x[t])) for t in members])
        weights = [v.numpy() for v in critic.trainable_variables]
        opt.apply(tape.gradient(loss, critic.trainable_variables), critic.trainable_variables)
        results[source] = (_j_q(critic, x, y), [v.numpy() - w for v, w in zip(
            critic.trainable_variables, weights)])
    critic, _ = _copy(sac)
    before = _j_q(critic, x, y)
    with tf.GradientTape(persistent=True) as tape:
        losses = [tf_mtl.rl.TwinBellmanLoss()(y[t], critic(x[t])) for t in TASKS]
    grads = [[g.numpy() for g in tape.gradient(l, critic.trainable_variables)] for l in losses]
    return results, before, grads


def _expected(sac, x, y):
    results, before, grads = _stepped_copies(sac, x, y)
    exact = {s: {t: 1 - after[j] / before[j] for j, t in enumerate(TASKS)}
             for s, (after, _) in results.items()}
    first = {s: {t: -sum(np.sum(g * d) for g, d in zip(grads[j], delta)) / before[j]
                 for j, t in enumerate(TASKS)} for s, (_, delta) in results.items()}
    return exact, first


def _assert_scores(got, want):
    for s in want:
        for t in TASKS:
            np.testing.assert_allclose(got[s][t], want[s][t], rtol=2e-3, atol=2e-6,
                                       err_msg=f"{s}>{t}")


def test_measure_equals_stepping_a_copy(trained):
    sac, batch = trained
    x, y = _inputs(sac, batch)
    exact, first = _expected(sac, x, y)
    _assert_scores(tf_mtl.transference.measure(sac.critic, x, y, method="exact"), exact)
    _assert_scores(tf_mtl.transference.measure(sac.critic, x, y, method="first_order"), first)
    # Asymmetric: a source's effect on another task is not the reverse one.
    assert abs(exact["a"]["b"] - exact["b"]["a"]) > 1e-4


def test_in_step_probes_equal_stepping_a_copy_and_the_step_is_the_all_tasks_source(trained):
    sac, batch = trained
    x, y = _inputs(sac, batch)
    exact, first = _expected(sac, x, y)
    results, _, _ = _stepped_copies(sac, x, y)
    before = [v.numpy() for v in sac.critic.encoder.trainable_variables]
    for probe in sac.critic.probes:
        probe.accumulator.reset_state()
    sac.train_step(batch)
    by_name = {p.name: p.scores() for p in sac.critic.probes}
    _assert_scores(by_name["transference"], exact)
    _assert_scores(by_name["transference_first_order"], first)
    # The critic's real update is the all-tasks source's step of the copy.
    for v, w, d in zip(sac.critic.encoder.trainable_variables, before, results["a|b|c"][1]):
        np.testing.assert_allclose(v.numpy() - w, d, rtol=1e-4, atol=1e-7)
