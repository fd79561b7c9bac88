from fresh_process import run_check


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
