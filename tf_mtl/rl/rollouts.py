"""Environment steps: one SAC iteration's data collection and the policy's evaluation.

Every task's environment steps in lockstep, so one policy call gives all ``m`` actions.
What an iteration collects depends only on (seed, iteration) and the weights: each
iteration starts new episodes on goal variations drawn from a generator seeded with
``(seed, iteration)``, and the policy's noise is stateless, seeded with
``(seed, environment step)``. A resumed run therefore collects exactly what an
uninterrupted one does, with no environment state in the checkpoint. An episode still
running when the iteration's steps are done is cut there (its transitions are
bootstrapped, as at any time limit).
"""

import numpy as np


def _episode_stats(returns, successes):
    """Means over the episodes; None where no episode ended (valid JSON, unlike NaN)."""
    return {"return": float(np.mean(returns)) if returns else None,
            "success": float(np.mean(successes)) if successes else None,
            "episodes": len(returns)}


def collect(sac, environments, buffers, steps, iteration, seed, random_actions=False):
    """``steps`` environment steps per task into ``buffers`` (``{task: ReplayBuffer}``).

    ``random_actions``: uniform actions in ``[-1, 1]`` (softlearning's initial
    exploration) instead of the policy's samples. Returns ``{task: {"return", "success",
    "episodes"}}`` over the episodes that ended in this iteration.
    """
    tasks = list(environments)
    rng = np.random.default_rng([seed, iteration, 0])
    observations = np.stack([environments[t].start_episode(rng) for t in tasks])
    running = np.zeros(len(tasks))
    succeeded = np.zeros(len(tasks), bool)
    returns, successes = {t: [] for t in tasks}, {t: [] for t in tasks}
    for step in range(steps):
        if random_actions:
            actions = rng.uniform(-1.0, 1.0, (len(tasks), sac.action_dim)).astype(np.float32)
        else:
            actions = sac.act(observations, seed=[seed * 4 + 3, iteration * steps + step])
        for i, task in enumerate(tasks):
            env = environments[task]
            next_obs, reward, terminal, over, success = env.step(actions[i])
            buffers[task].add(observations[i], actions[i], reward, next_obs, terminal)
            running[i] += reward
            succeeded[i] |= success
            if over:
                returns[task].append(running[i])
                successes[task].append(float(succeeded[i]))
                running[i], succeeded[i] = 0.0, False
                next_obs = env.start_episode(rng)
            observations[i] = next_obs
    return {t: _episode_stats(returns[t], successes[t]) for t in tasks}


def evaluate(sac, environments, episodes, seed):
    """``episodes`` episodes per task with the deterministic policy ``tanh(mu(s))``
    (softlearning's ``eval_deterministic``) on goal variations drawn from ``seed``: the
    same ones at every evaluation. Returns ``{task: {"return", "success", "episodes"}}``."""
    tasks = list(environments)
    rng = np.random.default_rng([seed, 1 << 30, 1])
    returns, successes = {t: [] for t in tasks}, {t: [] for t in tasks}
    for _ in range(episodes):
        observations = np.stack([environments[t].start_episode(rng) for t in tasks])
        total, succeeded = np.zeros(len(tasks)), np.zeros(len(tasks), bool)
        active = np.ones(len(tasks), bool)
        while active.any():
            actions = sac.act(observations, seed=[0, 0], deterministic=True)
            for i, task in enumerate(tasks):
                if not active[i]:
                    continue
                observations[i], reward, _, over, success = environments[task].step(actions[i])
                total[i] += reward
                succeeded[i] |= success
                active[i] = not over
        for i, task in enumerate(tasks):
            returns[task].append(total[i])
            successes[task].append(float(succeeded[i]))
    return {t: _episode_stats(returns[t], successes[t]) for t in tasks}
