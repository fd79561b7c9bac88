"""Meta-World environments (v3, gymnasium API), imported only here and only when asked for.

``001`` §5.1.3 trains five Meta-World tasks together: "reach", "push", "press button top",
"open window" and "close window" — ``reach-v3``, ``push-v3``, ``button-press-topdown-v3``,
``window-open-v3`` and ``window-close-v3`` in Meta-World 3.x (``PAPER_ENVIRONMENTS``).
Each environment is Meta-World's multi-task form of that task (``metaworld.MT1``): 50
goal variations, the goal in the observation (39 numbers), 4 actions in ``[-1, 1]``; an
episode starts on a goal variation drawn from the caller's generator.

Episodes last ``max_episode_steps`` (default 150, Meta-World's path length when ``001``
was written — v3's own is 500): 600 environment steps per iteration are then four whole
episodes. The environment never reaches a true terminal state (``terminated`` stays
False), so every transition is bootstrapped. ``success`` is Meta-World's ``info["success"]``;
an episode succeeds if any of its steps does (Meta-World's evaluation).

Meta-World missing: ``ImportError`` naming the extra that installs it.
"""

import functools

import numpy as np

PAPER_TASKS = {"reach": "reach-v3", "push": "push-v3",
               "press button top": "button-press-topdown-v3",
               "open window": "window-open-v3", "close window": "window-close-v3"}
PAPER_ENVIRONMENTS = tuple(sorted(PAPER_TASKS.values()))
INSTALL_HINT = ('Meta-World is not installed: tf_mtl.rl needs it. Install the "rl" extra: '
                'pip install -e ".[rl]" (from the checkout; or pip install "tf_mtl[rl]")')


def import_metaworld():
    """The ``metaworld`` module, or ``ImportError`` saying which extra installs it."""
    try:
        import metaworld
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT}. ({e})") from e
    return metaworld


def known_environments():
    """Every Meta-World v3 environment name, sorted."""
    return sorted(import_metaworld().ALL_V3_ENVIRONMENTS)


def check_environments(names):
    """``names`` sorted, or ``ValueError`` naming the unknown ones and listing the known."""
    names = list(names)
    known = known_environments()
    unknown = [n for n in names if n not in known]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(
            f"Unknown or repeated Meta-World environments {unknown}; known: {known}. "
            f"Received: environments={names!r}")
    return sorted(names)


@functools.lru_cache(maxsize=64)
def goal_variations(name, seed):
    """``(environment class, its 50 goal variations)``: ``metaworld.MT1(name, seed=seed)``'s
    (about a second each: 50 resets; kept per process, the same for the same arguments)."""
    benchmark = import_metaworld().MT1(name, seed=seed)
    return benchmark.train_classes[name], tuple(benchmark.train_tasks)


class MetaWorldTask:
    """One Meta-World v3 environment with its 50 goal variations.

    Args:
        name: a v3 environment name (``known_environments()``).
        seed: seeds the goal variations (``metaworld.MT1(name, seed=seed)``).
        max_episode_steps: steps per episode.

    Example:
        >>> env = MetaWorldTask("reach-v3", seed=0)
        >>> obs = env.start_episode(np.random.default_rng(0))
        >>> obs, reward, terminal, done, success = env.step(np.zeros(4))
    """

    def __init__(self, name, seed=0, max_episode_steps=150):
        check_environments([name])
        if not isinstance(max_episode_steps, int) or not 1 <= max_episode_steps <= 500:
            raise ValueError("`max_episode_steps` must be an int in [1, 500] (Meta-World's "
                             f"limit). Received: max_episode_steps={max_episode_steps!r}")
        self.name, self.max_episode_steps = name, max_episode_steps
        env_class, self.variations = goal_variations(name, seed)
        self.env = env_class()
        self.observation_dim = int(self.env.observation_space.shape[0])
        self.action_dim = int(self.env.action_space.shape[0])
        self.steps = 0

    def start_episode(self, rng):
        """Resets to a goal variation drawn from ``rng``; returns the first observation."""
        self.env.set_task(self.variations[int(rng.integers(len(self.variations)))])
        observation, _ = self.env.reset(seed=int(rng.integers(2 ** 31)))
        self.steps = 0
        return np.asarray(observation, np.float32)

    def step(self, action):
        """``(observation, reward, terminal, episode_over, success)``."""
        observation, reward, terminated, truncated, info = self.env.step(
            np.asarray(action, np.float32))
        self.steps += 1
        over = bool(terminated or truncated or self.steps >= self.max_episode_steps)
        return (np.asarray(observation, np.float32), float(reward), bool(terminated), over,
                bool(info.get("success", 0.0)))

    def close(self):
        self.env.close()


def make_environments(names, seed=0, max_episode_steps=150):
    """``{name: MetaWorldTask}`` in sorted order (a task's index is its position)."""
    return {n: MetaWorldTask(n, seed, max_episode_steps) for n in check_environments(names)}
