"""The command line as people use it: --help, one-line refusals, a quiet start.

Help and refusals stop before TensorFlow runs anything, so they run in one process
(``command_runner.py``: TensorFlow imported once, one forked child per command line);
the start-up output is checked on real processes.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.path.join(ROOT, "tests", "cli", "command_runner.py")
QUICK = "--config=configs/quickstart.py:runlocal"
# Each command's own flags, as its --help must list them.
COMMANDS = {
    "train": ["config", "workdir", "strategy", "logical_cpus"],
    "group": ["scores", "objective", "splits", "budget", "costs", "time_limit"],
    "benchmark": ["bench", "steps", "repeats", "per_task_gradients", "time_limit", "memory",
                  "xla", "reference", "reference_script", "profile_dir"],
    "interference": ["config", "workdir"],
    "pairs": ["config", "workdir", "esa", "splits", "shard"],
    "evaluate_grouping": ["config", "groups", "workdir"],
    "compare_groupings": ["config", "workdir", "splits", "methods"],
    "compare": ["configs", "seeds", "workdir", "set"],
}
NOISE = ("onednn", "cuda", "absl::initializelog", "cpu_feature_guard", "tensorflow binary")


def _run_many(cases):
    proc = subprocess.run([sys.executable, RUNNER], input=json.dumps(cases), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


HELP_CASES = [{"entry": entry, "command": c, "args": ["--help"]}
              for c in COMMANDS for entry in ("launch", "console")]


def _refusal_cases(tmp):
    """name: (command, args, words the one line must hold)."""
    a_file = tmp / "a_file"
    a_file.write_text("")
    workdir = f"--workdir={tmp / 'run'}"
    train = [QUICK, workdir]
    return {
        "unknown flag": ("train", train + ["--epochz=3"], ["--epochz", "--workdir"]),
        "misspelt field": ("train", train + ["--config.epochz=3"],
                           ["unknown config field 'epochz'", "did you mean 'epochs'"]),
        "misspelt nested field": ("train", train + ["--config.optimizer.learning_ratez=1"],
                                  ["'optimizer.learning_ratez'", "'optimizer.learning_rate'"]),
        "bad enum": ("train", train + ["--strategy=mirorred"], ["--strategy", "mirrored"]),
        "bad config value type": ("train", train + ["--config.epochs=many"],
                                  ["--config.epochs=many"]),
        "no config file": ("train", ["--config=configs/nope.py", workdir],
                           ["configs/nope.py", "no config file"]),
        "unknown variant": ("train", ["--config=configs/quickstart.py:nope", workdir],
                            ["Unknown variant", "'nope'"]),
        "learning rate <= 0": ("train", train + ["--config.optimizer.learning_rate=-1"],
                               ["config.optimizer.learning_rate", "> 0", "-1"]),
        "epochs < 1": ("train", train + ["--config.epochs=0"], ["config.epochs", ">= 1"]),
        "batch size < 1": ("train", train + ["--config.data.batch_size=0"],
                           ["config.data.batch_size", ">= 1"]),
        "sharing ratio": ("train", ["--config=configs/celeba_task_routing.py:runlocal", workdir,
                                    "--config.model.encoder_kwargs.routing.sharing_ratio=1.5"],
                          ["sharing_ratio", "[0, 1]", "1.5"]),
        "unknown optimizer": ("train", train + ["--config.optimizer.name=sgdd"],
                              ["Unknown optimizer", "'sgdd'", "'sgd'"]),
        "workdir under a file": ("train", [QUICK, f"--workdir={a_file / 'run'}"],
                                 ["cannot write to --workdir=", "Not a directory"]),
        "workdir is a file": ("train", [QUICK, f"--workdir={a_file}"],
                              ["cannot write to --workdir=", "file"]),
        "missing required flag": ("train", [QUICK], ["--workdir"]),
        "positional argument": ("train", train + ["3"], ["unexpected argument", "'3'"]),
        "benchmark steps": ("benchmark", ["--bench=transference", "--steps=0"], ["--steps=0"]),
        "benchmark repeats": ("benchmark", ["--bench=transference", "--repeats=0"],
                              ["--repeats=0"]),
        "group scores": ("group", [f"--scores={tmp / 'none.json'}"], ["--scores="]),
        "interference lr": ("interference", ["--config=configs/interference_mdl.py:runlocal",
                                             workdir, "--config.optimizer.learning_rate=0"],
                            ["learning_rate"]),
        "pairs epochs": ("pairs", ["--config=configs/grouping_planted.py:runlocal", workdir,
                                   "--config.epochs=0"], ["config.epochs"]),
        "compare config file": ("compare", ["--configs=configs/nope.py", workdir],
                                ["configs/nope.py"]),
        "compare --set field": ("compare", [f"--configs={QUICK.split('=')[1]}", workdir,
                                            "--set=epochz=3"], ["epochz"]),
        "console script": ("console:train", train + ["--config.optimizer.learning_rate=0"],
                           ["tf-mtl-train: error:", "learning_rate"]),
    }


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """Every --help and refusal case, run by one ``command_runner.py`` process."""
    tmp = tmp_path_factory.mktemp("refusals")
    refusals = _refusal_cases(tmp)
    cases = HELP_CASES + [
        {"entry": "console" if c.startswith("console:") else "launch",
         "command": c.split(":")[-1], "args": a} for c, a, _ in refusals.values()]
    outs = _run_many(cases)
    return {"help": outs[:len(HELP_CASES)], "refusals": dict(zip(refusals, zip(
        refusals.values(), outs[len(HELP_CASES):]))), "tmp": tmp}


def test_help_lists_each_commands_flags_and_an_example_from_both_entry_points(many):
    for case, out in zip(HELP_CASES, many["help"]):
        text, where = out["stdout"], f"{case['entry']} {case['command']}"
        assert "Traceback" not in out["stderr"], (where, out["stderr"])
        assert "Example" in text, where
        # The example is a command line of this command, with its flags.
        assert "tf-mtl-" + case["command"].replace("_", "-") + " --" in text, where
        for flag in COMMANDS[case["command"]]:   # Booleans show as --[no]flag.
            assert f"--{flag}:" in text or f"--[no]{flag}:" in text, (where, flag, text)
        assert "python -m launch." + case["command"] in text, where


def _one_line_refusal(out, *words):
    lines = out["stderr"].splitlines()
    assert out["rc"] == 2, out
    assert len(lines) == 1, out["stderr"]
    assert "Traceback" not in out["stderr"]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_bad_flags_fields_and_values_end_in_one_line_and_status_2(many):
    for name, ((_, _, words), out) in many["refusals"].items():
        try:
            _one_line_refusal(out, *words)
        except AssertionError as e:
            raise AssertionError(f"{name}: {e}") from e
    assert not (many["tmp"] / "run").exists()   # Refused before anything was written.


def test_the_quickstart_starts_with_the_librarys_own_output(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "launch.train", QUICK, f"--workdir={tmp_path / 'run'}",
         "--config.tensorboard=False"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for line in (proc.stderr + proc.stdout).lower().splitlines():
        assert not any(word in line for word in NOISE), line
    assert "wrote:" in proc.stdout and "planted groups" in proc.stdout


def test_a_real_refusal_is_one_line_with_tensorflow_imported_quietly(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "launch.train", QUICK, f"--workdir={tmp_path / 'run'}",
         "--config.optimizer.learning_rate=-1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert proc.returncode == 2
    line = ("tf-mtl-train: error: `config.optimizer.learning_rate` must be a number > 0 (<= 0 "
            "does not descend). Received: learning_rate=-1.0")
    assert proc.stderr.splitlines() == [line], proc.stderr
    assert not (tmp_path / "run").exists()


def _startup():
    path = os.path.join(ROOT, "tf_mtl", "cli", "startup.py")
    spec = importlib.util.spec_from_file_location("_startup_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_logs_are_dropped_below_the_level_and_back_when_asked_for():
    startup = _startup()
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
            "STDERR\n"
            "I0000 00:00:1796652604.510188   15126 port.cc:153] oneDNN custom operations\n"
            "2025-09-17 14:44:05.157831: I external/local_xla/cudart_stub.cc:32] Could not\n"
            "E0000 00:00:1796652609.684932   16885 cuda_platform.cc:52] failed call to cuInit\n"
            "F0000 00:00:1796652609.1 1 x.cc:1] fatal\n"
            "/a/b.py:3: UserWarning: kept\n")
    assert startup.drop_logs(text, 3) == ("F0000 00:00:1796652609.1 1 x.cc:1] fatal\n"
                                          "/a/b.py:3: UserWarning: kept\n")
    assert "cuInit" in startup.drop_logs(text, 2)
    asks = startup.asks_for_logs
    assert asks(["x", "--verbosity=1"]) and asks(["x", "-v", "0"]) and asks(["x", "--v=info"])
    assert not asks(["x"]) and not asks(["x", "--verbosity=-1"])
    assert not asks(["x", "--", "--verbosity=1"])


def _package_quiets_console_scripts():
    with open(os.path.join(ROOT, "tf_mtl", "__init__.py")) as f:
        return "quiet_console_script" in f.read()


@pytest.mark.skipif(
    not _package_quiets_console_scripts(),
    reason="tf_mtl/__init__ imports TensorFlow before any command code can quiet it; "
           "the console scripts are quiet once it calls tf_mtl.cli.startup.quiet_console_script()")
def test_console_script_starts_quietly(tmp_path):
    import shutil
    command = shutil.which("tf-mtl-train", path=os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    proc = subprocess.run([command, QUICK, f"--workdir={tmp_path / 'run'}",
                           "--config.epochs=0"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120,
                          env={k: v for k, v in os.environ.items()
                               if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
