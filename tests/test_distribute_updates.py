import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_update_rules_under_two_replicas_match_single_device():
    """UW-PCGrad, MGDA-UB, GradNorm and IT-MTL (exact with a weighting, first
    order) under MirroredStrategy (2 CPU replicas) train as on one device."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, "distributed_updates_check.py")],
                          capture_output=True, text=True, timeout=600,
                          cwd=os.path.dirname(HERE))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "distributed updates check passed" in proc.stdout
