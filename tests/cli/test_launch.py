import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    import json
    results = json.loads((workdir / "results.json").read_text())
    assert set(results["test"]) == {f"t{i}" for i in range(6)}
    assert set(results["test"]["t0"]) == {"loss", "mse"}
    # TensorBoard: Keras's epoch scalars, and the affinity scalars and heatmap image.
    tags = _tensorboard_tags(workdir / "tb")
    assert {"epoch_loss", "epoch_t0_loss"} <= tags["train"] and "epoch_loss" in tags["validation"]
    assert {"transference/heatmap", "transference/t0>t1"} <= tags["affinity"]


def _tensorboard_tags(logdir):
    import tensorflow as tf
    tags = {}
    for run in os.listdir(logdir):
        for name in os.listdir(logdir / run):
            for event in tf.compat.v1.train.summary_iterator(str(logdir / run / name)):
                tags.setdefault(run, set()).update(v.tag for v in event.summary.value)
    return tags


def test_installed_distribution_ships_only_tf_mtl_and_its_commands(tmp_path):
    """launch/ and configs/ stay in the checkout: a wheel holds tf_mtl and console scripts."""
    import glob
    import zipfile
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheel = zipfile.ZipFile(glob.glob(str(tmp_path / "*.whl"))[0])
    top = {name.split("/")[0] for name in wheel.namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"tf_mtl"}
    entry = [n for n in wheel.namelist() if n.endswith("entry_points.txt")][0]
    scripts = wheel.read(entry).decode()
    for command in ("tf-mtl-train = tf_mtl.cli.train:run", "tf-mtl-group = tf_mtl.cli.group:run",
                    "tf-mtl-benchmark = tf_mtl.cli.benchmark:run",
                    "tf-mtl-interference = tf_mtl.cli.interference:run",
                    "tf-mtl-pairs = tf_mtl.cli.pairs:run",
                    "tf-mtl-evaluate-grouping = tf_mtl.cli.evaluate_grouping:run",
                    "tf-mtl-compare-groupings = tf_mtl.cli.compare_groupings:run"):
        assert command in scripts


def test_group_console_script(tmp_path):
    import json
    import shutil
    # The command of the environment running the tests, before any other on PATH.
    command = shutil.which("tf-mtl-group", path=os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    assert command, "pip install -e . installs the tf-mtl-group command"
    tasks = ["a", "b", "c", "d"]
    scores = {s: {t: (0.4 if (s in "ab") == (t in "ab") else -0.2) for t in tasks} for s in tasks}
    (tmp_path / "affinity.json").write_text(json.dumps(scores))
    proc = subprocess.run([command, f"--scores={tmp_path / 'affinity.json'}", "--splits=2"],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "a, b" in proc.stdout and (tmp_path / "groups.json").exists()


def test_train_launcher_runs_the_quickstart_under_mirrored_on_two_logical_cpus(tmp_path):
    """--strategy overrides config.strategy; --logical_cpus=2 gives MirroredStrategy two
    replicas on a CPU-only machine; the probe measures every 2 steps under it."""
    workdir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "launch.train", "--config=configs/quickstart.py:runlocal",
         f"--workdir={workdir}", "--strategy=mirrored", "--logical_cpus=2",
         "--config.transference.every=2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "strategy: MirroredStrategy, 2 replicas" in proc.stdout
    assert '"strategy": "mirrored"' in (workdir / "config.json").read_text()
    for name in ("metrics.csv", "model.keras", "affinity.json", "groups.json"):
        assert (workdir / name).exists(), name
    header, row = (workdir / "metrics.csv").read_text().splitlines()
    assert dict(zip(header.split(","), row.split(",")))["transference/steps"] == "2.0"
