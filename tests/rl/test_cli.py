"""``python -m launch.metaworld``: --help, and refused inputs in one line with exit status 2,
before anything is built (tests/cli/command_runner.py: TensorFlow imported once)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "tests", "cli", "command_runner.py")
LOCAL = "--config=configs/metaworld_sac.py:runlocal"


def test_help_and_refusals(tmp_path):
    work = f"--workdir={tmp_path / 'run'}"
    cases = [["--help"],
             [LOCAL, work, "--config.batch_size=1000"],
             [LOCAL, work, "--config.environments=('reach-v3', 'pushh-v3')"],
             [LOCAL, work, "--config.transference.methods=('exact', 'second_order')"],
             ["--config=configs/metaworld_sac.py:runloc", work]]
    proc = subprocess.run(
        [sys.executable, RUNNER], cwd=ROOT, capture_output=True, text=True, timeout=300,
        input=json.dumps([{"entry": "launch", "command": "metaworld", "args": a}
                          for a in cases]))
    assert proc.returncode == 0, proc.stderr[-3000:]
    help_out, *refused = json.loads(proc.stdout)
    assert help_out["rc"] == 0 and "--workdir" in help_out["stdout"]
    assert "launch.metaworld --config=configs/metaworld_sac.py" in help_out["stdout"]
    wanted = ["Received: config.batch_size=1000", "known: ['assembly-v3'",
              "config.transference.methods=('exact', 'second_order')", "Received: 'runloc'"]
    for out, text in zip(refused, wanted):
        lines = out["stderr"].strip().splitlines()
        assert out["rc"] == 2 and len(lines) == 1, out
        assert lines[0].startswith("tf-mtl-metaworld: error: ") and text in lines[0], lines
    assert not os.path.exists(tmp_path / "run")
