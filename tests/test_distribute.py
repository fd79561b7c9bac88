import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def test_mirrored_two_replicas_match_single_device():
    """Training and affinities under MirroredStrategy (2 CPU replicas) equal one device."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, "distributed_check.py")],
                          capture_output=True, text=True, timeout=600,
                          cwd=os.path.dirname(HERE))
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "distributed check passed" in proc.stdout
