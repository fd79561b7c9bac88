"""Replay buffers (ring, sampling, checkpoint state, batch > buffer) and the Meta-World
environments (the paper's five, unknown names, Meta-World missing)."""

import builtins

import numpy as np
import pytest

from tf_mtl.rl import environments
from tf_mtl.rl.replay import FIELDS, ReplayBuffer


def _filled(capacity, count):
    buffer = ReplayBuffer(capacity, observation_dim=2, action_dim=1)
    for i in range(count):
        buffer.add([i, -i], [i / 10], float(i), [i + 1, -i - 1], i % 3 == 0)
    return buffer


def test_ring_buffer_keeps_the_last_transitions():
    buffer = _filled(4, 6)
    assert len(buffer) == 4
    np.testing.assert_array_equal(np.sort(buffer.data["rewards"]), [2, 3, 4, 5])
    np.testing.assert_array_equal(buffer.data["terminals"][buffer.data["rewards"] == 3], [1.0])
    rng = np.random.default_rng(0)
    draws = [buffer.sample(4, rng) for _ in range(20)]
    batch = {k: np.concatenate([d[k] for d in draws]) for k in FIELDS}
    assert set(batch["rewards"]) == {2.0, 3.0, 4.0, 5.0}
    # Each transition's fields stay together.
    np.testing.assert_array_equal(batch["observations"][:, 0], batch["rewards"])
    np.testing.assert_array_equal(batch["next_observations"][:, 0], batch["rewards"] + 1)


def test_sampling_is_a_function_of_the_generator():
    buffer = _filled(10, 10)
    a = buffer.sample(5, np.random.default_rng(7))
    b = buffer.sample(5, np.random.default_rng(7))
    for k in FIELDS:
        np.testing.assert_array_equal(a[k], b[k])


def test_state_round_trip():
    buffer = _filled(8, 5)
    meta, arrays = buffer.state()
    copy = ReplayBuffer(8, 2, 1)
    copy.load_state(meta, arrays)
    copy.add([9, 9], [0.9], 9.0, [9, 9], False)
    buffer.add([9, 9], [0.9], 9.0, [9, 9], False)
    for k in FIELDS:
        np.testing.assert_array_equal(copy.data[k], buffer.data[k])


def test_batch_larger_than_buffer_is_refused():
    with pytest.raises(ValueError, match="larger than the task's replay buffer.*"
                                         "Received: batch_size=6"):
        _filled(10, 5).sample(6, np.random.default_rng(0))
    with pytest.raises(ValueError, match="Received: capacity=0"):
        ReplayBuffer(0, 2, 1)


def test_paper_environments_exist_and_step():
    assert sorted(environments.PAPER_TASKS) == ["close window", "open window",
                                                 "press button top", "push", "reach"]
    assert environments.check_environments(list(environments.PAPER_ENVIRONMENTS)) == list(
        environments.PAPER_ENVIRONMENTS)
    env = environments.MetaWorldTask("reach-v3", seed=0, max_episode_steps=3)
    assert (env.observation_dim, env.action_dim) == (39, 4)
    first = env.start_episode(np.random.default_rng(5))
    again = env.start_episode(np.random.default_rng(5))
    np.testing.assert_array_equal(first, again)
    over = [env.step(np.zeros(4))[3] for _ in range(3)]
    assert over == [False, False, True]


def test_unknown_environment_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        environments.check_environments(["reach-v3", "pussh-v3"])
    message = str(info.value)
    assert "['pussh-v3']" in message and "'window-close-v3'" in message
    assert "Received: environments=['reach-v3', 'pussh-v3']" in message


def test_metaworld_missing_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_metaworld(name, *args, **kwargs):
        if name == "metaworld" or name.startswith("metaworld."):
            raise ImportError("No module named 'metaworld'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_metaworld)
    with pytest.raises(ImportError, match=r'pip install -e "\.\[rl\]"'):
        environments.known_environments()


def test_library_does_not_import_metaworld():
    import subprocess
    import sys
    code = ("import sys, tf_mtl, tf_mtl.rl, tf_mtl.rl.run; "
            "print(any(m.split('.')[0] in ('metaworld', 'mujoco') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
