"""The quiet start's stderr filter (tf_mtl/cli/startup.py) in a real process."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_ABORTING = r'''
import importlib.util, os
spec = importlib.util.spec_from_file_location("startup", {path!r})
startup = importlib.util.module_from_spec(spec); spec.loader.exec_module(startup)
with startup.filtered_stderr(3):
    os.write(2, b"I0000 00:00:1796652609.1 1 port.cc:153] oneDNN custom operations are on\n")
    os.write(2, b"plain text a library wrote\n")
    os.write(2, b"F0000 00:00:1796652609.2 1 cpu_feature_guard.cc:1] missing AVX\n")
    os.abort()   # as TensorFlow does after a FATAL log while it loads
'''


def test_a_fatal_abort_while_filtering_still_shows_the_fatal_line():
    script = _ABORTING.format(path=os.path.join(ROOT, "tf_mtl", "cli", "startup.py"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0
    assert "missing AVX" in proc.stderr and "plain text a library wrote" in proc.stderr
    assert "oneDNN" not in proc.stderr
