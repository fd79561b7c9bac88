"""``--bench=rl``: multi-task SAC on Meta-World at ``001`` D.3's sizes, and what it costs here.

Five tasks (``tf_mtl.rl.environments.PAPER_ENVIRONMENTS``), policy and critics of six
400-unit layers, 128 samples per task per gradient step. Rows:

* environment steps per second: the five MuJoCo environments alone (uniform actions),
  and data collection as a run does it (one policy call for the five, then five steps);
* gradient steps per second: a plain SAC step, and steps whose critic update also
  measures order-1 transference (exact; first-order) on the critic, with the cost of one
  measurement as a ratio to a plain step;
* an iteration (600 environment steps per task, 600 gradient steps, a measurement every
  ``every`` steps) and ``iterations`` of them (``001`` gives no iteration count: the
  config's 500 = 300k environment steps per task) at these rates.

Each compiled step is traced and warmed up first; times are medians over ``repeats``.
Needs Meta-World (``pip install -e ".[rl]"``).
"""

import time

import numpy as np

from tf_mtl.rl import environments as envs
from tf_mtl.rl.critic_transference import transference_probes
from tf_mtl.rl.replay import ReplayBuffer
from tf_mtl.rl.rollouts import collect
from tf_mtl.rl.run import sample_batch
from tf_mtl.rl.sac import MultiTaskSAC


def _median_seconds(fn, count, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(count):
            fn()
        times.append((time.perf_counter() - start) / count)
    return float(np.median(times))


def rl_benchmark(steps=5, repeats=3, hidden_units=(400,) * 6, batch_size=128, every=10,
                 iterations=500, env_steps=200, **_):
    """``(columns, rows)``; ``steps`` gradient steps and ``env_steps`` environment steps
    per task are timed ``repeats`` times."""
    environments = envs.make_environments(envs.PAPER_ENVIRONMENTS, seed=0)
    tasks = list(environments)
    first = environments[tasks[0]]
    buffers = {t: ReplayBuffer(10 ** 5, first.observation_dim, first.action_dim)
               for t in tasks}
    rng = np.random.default_rng(0)

    def env_only():
        for env in environments.values():
            env.start_episode(rng)
            for _ in range(env_steps):
                env.step(rng.uniform(-1, 1, first.action_dim))

    env_seconds = _median_seconds(env_only, 1, repeats) / (env_steps * len(tasks))

    def learner(methods):
        return MultiTaskSAC(tasks, first.observation_dim, first.action_dim,
                            hidden_units=list(hidden_units),
                            probes=transference_probes(methods, every=1) if methods else ())

    plain = learner(())
    counter = iter(range(10 ** 9))
    collect(plain, environments, buffers, max(env_steps, batch_size), 0, 0, random_actions=True)
    plain.act(np.zeros((len(tasks), first.observation_dim)), seed=[0, 0])   # traces
    collect_seconds = _median_seconds(
        lambda: collect(plain, environments, buffers, env_steps, next(counter), 0),
        1, repeats) / (env_steps * len(tasks))
    batch = sample_batch(buffers, batch_size, rng)
    step = {}
    for name, methods in (("plain", ()), ("exact", ("exact",)),
                          ("first_order", ("first_order",))):
        sac = plain if name == "plain" else learner(methods)
        sac.train_step(batch)   # traces
        step[name] = _median_seconds(lambda s=sac: s.train_step(batch), steps, repeats)
    measure = {k: (step[k] - step["plain"]) / step["plain"] for k in ("exact", "first_order")}
    iteration = (600 * len(tasks) * collect_seconds + 600 * step["plain"]
                 + (600 // every) * step["plain"] * (measure["exact"] + measure["first_order"]))
    rows = [
        ("environment step, MuJoCo only (5 tasks)", f"{1 / env_seconds:.0f} steps/s",
         f"{1e3 * env_seconds:.2f} ms"),
        ("collection step (policy + environment)", f"{1 / collect_seconds:.0f} steps/s",
         f"{1e3 * collect_seconds:.2f} ms"),
        (f"gradient step, plain ({len(tasks)} x {batch_size})",
         f"{1 / step['plain']:.2f} steps/s", f"{step['plain']:.3f} s"),
        ("gradient step + exact transference", f"{1 / step['exact']:.2f} steps/s",
         f"{step['exact']:.3f} s; measurement = {measure['exact']:.2f}x a step"),
        ("gradient step + first-order transference", f"{1 / step['first_order']:.2f} steps/s",
         f"{step['first_order']:.3f} s; measurement = {measure['first_order']:.2f}x a step"),
        (f"one iteration (600 + 600 steps, both measurements every {every})", "",
         f"{iteration / 60:.1f} min"),
        (f"{iterations} iterations", "", f"{iterations * iteration / 3600:.1f} h"),
    ]
    for env in environments.values():
        env.close()
    return ("what", "rate", "time"), rows
