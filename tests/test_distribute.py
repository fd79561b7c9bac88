from fresh_process import run_check


def test_mirrored_two_replicas_match_single_device():
    """Training and affinities under MirroredStrategy (2 CPU replicas) equal one device."""
    proc = run_check("distributed_check.py")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "distributed check passed" in proc.stdout
