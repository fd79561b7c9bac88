from tests.fresh_process import run_check


def test_update_rules_under_two_replicas_match_single_device():
    """UW-PCGrad, MGDA-UB, GradNorm and IT-MTL (exact with a weighting, first
    order) under MirroredStrategy (2 CPU replicas) train as on one device."""
    proc = run_check("distributed_updates_check.py")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "distributed updates check passed" in proc.stdout
