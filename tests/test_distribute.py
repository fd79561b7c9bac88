from tests.fresh_process import run_check


def test_mirrored_two_replicas_match_single_device():
    """Training and affinities under MirroredStrategy (2 CPU replicas) equal one device."""
    proc = run_check("distributed_check.py")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "distributed check passed" in proc.stdout


def test_get_strategy_names_and_bad_name():
    import pytest
    import tensorflow as tf

    from tf_mtl import distribute
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    with pytest.raises(ValueError, match="Received: strategy='horovod'"):
        distribute.get_strategy("horovod")
    with pytest.raises(ValueError, match="Received: count=0"):
        distribute.set_logical_cpus(0)


def test_one_process_is_the_chief_and_writes_to_the_workdir(tmp_path):
    from tf_mtl import distribute
    assert distribute.is_chief()
    assert distribute.write_dir(str(tmp_path)) == str(tmp_path)


def test_step_logs_are_unchanged_outside_multi_worker_runs():
    import tensorflow as tf

    from tf_mtl import distribute
    logs = {"loss": tf.constant(1.5)}
    assert distribute.step_logs(logs) is logs


def test_chief_process_from_tf_config(monkeypatch):
    import json

    from tf_mtl import distribute

    def chief(cluster, task):
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
        return distribute.is_chief_process("multiworker")
    workers = {"worker": ["localhost:1", "localhost:2"]}
    assert chief(workers, {"type": "worker", "index": 0})
    assert not chief(workers, {"type": "worker", "index": 1})
    with_chief = {"chief": ["localhost:0"], **workers}
    assert chief(with_chief, {"type": "chief", "index": 0})
    assert not chief(with_chief, {"type": "worker", "index": 0})
    assert distribute.is_chief_process("mirrored")   # one process: always


def test_every_multi_worker_worker_refuses_a_workdir_to_resume(tmp_path):
    """Each worker reads the shared workdir (never writes) and decides alike."""
    import pytest

    from tf_mtl.experiments import checkpointing
    from tf_mtl.experiments import experiment
    config = __import__("configs.quickstart", fromlist=["get_config"]).get_config("runlocal")
    experiment._check_multi_worker_workdir(config, str(tmp_path))   # new: trains
    checkpointing.atomic_write_json(str(tmp_path / "config.json"),
                                    __import__("json").loads(config.to_json_best_effort()))
    experiment._check_multi_worker_workdir(config, str(tmp_path))   # killed before epoch 1
    for name in ("checkpoint.bin", "results.json"):
        (tmp_path / name).write_text("")
        with pytest.raises(ValueError, match="Multi-worker runs do not resume") as e:
            experiment._check_multi_worker_workdir(config, str(tmp_path))
        assert name in str(e.value)
        (tmp_path / name).unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
