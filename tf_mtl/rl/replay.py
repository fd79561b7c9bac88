"""One replay buffer per task: a NumPy ring buffer of transitions.

Each task's batch comes from its own buffer (``001`` D.3: 128 samples per task per
gradient step), so every task weighs the same in the critic's and the policy's losses
however many transitions each has. A buffer keeps the last ``capacity`` transitions
(softlearning's ``max_size``, 1e6); sampling is uniform with replacement
(softlearning's ``random_indices``) from a NumPy ``Generator`` the caller owns, so a run
seeded per iteration draws the same batches after a resume. ``state()`` and
``load_state()`` move a buffer into and out of a checkpoint.
"""

import numpy as np

FIELDS = ("observations", "actions", "rewards", "next_observations", "terminals")


class ReplayBuffer:
    """Ring buffer of ``(s, a, r, s', terminal)``.

    Args:
        capacity: transitions kept (the oldest are overwritten).
        observation_dim, action_dim: sizes of ``s`` and ``a``.

    Example:
        >>> buffer = tf_mtl.rl.ReplayBuffer(100, observation_dim=3, action_dim=2)
        >>> buffer.add(np.zeros(3), np.zeros(2), 1.5, np.ones(3), False)
        >>> buffer.sample(2, np.random.default_rng(0))["rewards"]
        Traceback (most recent call last):
        ValueError: A batch larger than the task's replay buffer: ... Received: batch_size=2
        >>> buffer.sample(1, np.random.default_rng(0))["rewards"]
        array([1.5], dtype=float32)
    """

    def __init__(self, capacity, observation_dim, action_dim):
        for name, value in (("capacity", capacity), ("observation_dim", observation_dim),
                            ("action_dim", action_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
        self.capacity = int(capacity)
        shapes = {"observations": (observation_dim,), "actions": (action_dim,), "rewards": (),
                  "next_observations": (observation_dim,), "terminals": ()}
        self.data = {k: np.zeros((self.capacity,) + s, np.float32) for k, s in shapes.items()}
        self.size, self.position = 0, 0

    def __len__(self):
        return self.size

    def add(self, observation, action, reward, next_observation, terminal):
        """Stores one transition (``terminal``: the episode ended in a true terminal state,
        not a time limit; only then is the next state's value not bootstrapped)."""
        for key, value in zip(FIELDS, (observation, action, reward, next_observation,
                                       float(terminal))):
            self.data[key][self.position] = value
        self.position = (self.position + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size, rng):
        """``batch_size`` transitions drawn uniformly with replacement: ``{field: array}``.

        A batch larger than the buffer is refused (the first iterations of a run with
        more samples per step than collected transitions would otherwise train on a
        handful of transitions repeated)."""
        if batch_size > self.size:
            raise ValueError(
                f"A batch larger than the task's replay buffer: `batch_size` must be at most "
                f"the {self.size} transitions it holds (collect more environment steps per "
                f"task before training, or sample fewer). Received: batch_size={batch_size}")
        index = rng.integers(0, self.size, size=batch_size)
        return {k: v[index] for k, v in self.data.items()}

    def state(self):
        """``(meta, arrays)`` for a checkpoint: only the filled part is stored."""
        return ({"size": self.size, "position": self.position},
                [self.data[k][:self.size] for k in FIELDS])

    def load_state(self, meta, arrays):
        if len(arrays) != len(FIELDS) or meta["size"] > self.capacity:
            raise ValueError(f"The saved buffer does not fit this one. Received: "
                             f"size={meta['size']} for capacity {self.capacity}")
        for key, value in zip(FIELDS, arrays):
            self.data[key][:len(value)] = value
        self.size, self.position = int(meta["size"]), int(meta["position"])
