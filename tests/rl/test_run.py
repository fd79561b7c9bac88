"""The run on the real Meta-World environments: one short iteration of all five tasks,
resume after a kill equal to an uninterrupted run, refused configs."""

import json
import os

import numpy as np
import pytest

from configs.metaworld_sac import get_config
from tf_mtl.experiments.checkpointing import read_checkpoint
from tf_mtl.rl import run as rl_run


def _config(**overrides):
    c = get_config("runlocal")
    c.update(dict(iterations=1, env_steps_per_task=20, gradient_steps=3, batch_size=8,
                  max_episode_steps=10, hidden_units=(8, 8), tensorboard=False))
    c.transference.update(methods=("exact",), every=2)
    c.update(overrides)
    return c


def test_one_iteration_on_the_five_paper_environments(tmp_path):
    c = _config(tensorboard=True)
    c.transference.update(every=1)
    lines = []
    results = rl_run.run(c, str(tmp_path), log=lines.append)
    tasks = sorted(c.environments)
    assert results["tasks"] == tasks and len(lines) == 1
    assert "success [" in lines[0] and "transference self" in lines[0]
    with open(tmp_path / "progress.json") as f:
        (entry,) = json.load(f)
    assert sorted(entry["train"]) == tasks
    assert all(s["episodes"] == 2 for s in entry["train"].values())  # 20 steps, 10 a episode
    assert entry["transference"]["transference"]["steps"] == 3
    with open(tmp_path / "affinity.json") as f:
        scores = json.load(f)
    assert sorted(scores) == sorted(tasks + ["|".join(tasks)])
    assert all(np.isfinite(v) for row in scores.values() for v in row.values())
    for name in ("affinity.png", "affinity_epochs.json", "groups.json",
                 "results.json", "checkpoint.bin", "tensorboard"):
        assert os.path.exists(tmp_path / name), name
    meta, _ = read_checkpoint(tmp_path / "checkpoint.bin")
    assert meta["iteration"] == 1 and [b["size"] for b in meta["buffers"]] == [20] * 5


def test_resume_after_a_kill_equals_an_uninterrupted_run(tmp_path):
    c = _config(environments=("push-v3", "reach-v3"), iterations=2)
    rl_run.run(c, str(tmp_path / "whole"), log=lambda _: None)
    rl_run.run(_config(environments=("push-v3", "reach-v3"), iterations=1),
               str(tmp_path / "killed"), log=lambda _: None)
    # "Killed" after iteration 1: new objects read the checkpoint and continue.
    rl_run.run(c, str(tmp_path / "killed"), log=lambda _: None)
    whole, whole_arrays = read_checkpoint(tmp_path / "whole" / "checkpoint.bin")
    killed, killed_arrays = read_checkpoint(tmp_path / "killed" / "checkpoint.bin")
    assert whole["iteration"] == killed["iteration"] == 2
    assert whole["buffers"] == killed["buffers"]
    assert len(whole_arrays) == len(killed_arrays)
    for a, b in zip(whole_arrays, killed_arrays):
        np.testing.assert_array_equal(a, b)
    for name in ("affinity_epochs.json", "progress.json"):
        with open(tmp_path / "whole" / name) as f, open(tmp_path / "killed" / name) as g:
            a, b = json.load(f), json.load(g)
        for e in a + b:
            e.pop("seconds", None)
        assert a == b, name


@pytest.mark.parametrize("field, value, match", [
    ("batch_size", 64, "larger than a task's replay buffer.*Received: config.batch_size=64"),
    ("gradient_steps", 0, "Received: config.gradient_steps=0"),
    ("environments", ("reach-v3", "pull-v3"), "known: .*'window-open-v3'.*Received"),
])
def test_bad_configs_are_refused_before_anything_runs(tmp_path, field, value, match):
    with pytest.raises(ValueError, match=match):
        rl_run.run(_config(**{field: value}), str(tmp_path))
    assert not os.listdir(tmp_path)
