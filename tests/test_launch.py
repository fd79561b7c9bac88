import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_train_launcher_runs_the_quickstart_smoke_run(tmp_path):
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "launch.train", "--config=configs/quickstart.py:runlocal",
         f"--workdir={workdir}", "--config.optimizer.learning_rate=0.01"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("config.json", "metrics.csv", "model.keras", "affinity.json",
                 "affinity_epochs.json", "affinity.png", "groups.json"):
        assert (workdir / name).exists(), name
        assert str(workdir / name) in proc.stdout
    assert '"learning_rate": 0.01' in (workdir / "config.json").read_text()
    assert "planted groups" in proc.stdout and "serving:" in proc.stdout
    lines = (workdir / "metrics.csv").read_text().splitlines()
    assert len(lines) == 2 and "t0_loss" in lines[0]
