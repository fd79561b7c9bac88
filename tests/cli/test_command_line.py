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
    "metaworld": ["config", "workdir"],
    "standley": ["settings", "random_trials", "serve_on", "results_dir"],
}
NOISE = ("onednn", "cuda", "absl::initializelog", "cpu_feature_guard", "tensorflow binary")


def _run_many(cases):
    proc = subprocess.run([sys.executable, RUNNER], input=json.dumps(cases), cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


HELP_CASES = [{"entry": entry, "command": c, "args": ["--help"]}
              for c in COMMANDS for entry in ("launch", "console")]
# absl's other help flags: status 0 too.
OTHER_HELP_CASES = [{"entry": "console", "command": "train", "args": ["--helpfull"]},
                    {"entry": "launch", "command": "group", "args": ["--helpshort"]},
                    {"entry": "launch", "command": "pairs", "args": ["-?"]}]
GROUPING = "--config=configs/grouping_planted.py:runlocal"
# Directories the refused command lines name (under the test's tmp): none may be made.
UNMADE = ("run", "eval", "pairs", "compare_groupings", "interference", "compare")


def _refusal_cases(tmp):
    """name: (command, args, words the one line must hold)."""
    a_file = tmp / "a_file"
    a_file.write_text("")
    workdir = f"--workdir={tmp / 'run'}"
    train = [QUICK, workdir]
    (tmp / "bad.json").write_text('{"t0": {"t0" 1.0}}')
    (tmp / "list.json").write_text("[1, 2]")
    (tmp / "syntax_error.py").write_text("def get_config(:\n    pass\n")
    (tmp / "no_get_config.py").write_text("EPOCHS = 3\n")
    (tmp / "scores.json").write_text(json.dumps({"t0": {"t0": 1.0, "t1": 0.5},
                                                 "t1": {"t0": 0.5, "t1": 1.0}}))
    (tmp / "corrupt").mkdir()
    (tmp / "corrupt" / "config.json").write_text('{"seed" 0}')
    scores = f"--scores={tmp / 'scores.json'}"
    evaluate = [GROUPING, f"--workdir={tmp / 'eval'}"]
    compare_groupings = [GROUPING, f"--workdir={tmp / 'compare_groupings'}"]
    return {
        # Values no run can mean, refused before anything is written (no config.json).
        "grouping splits > tasks": ("train", train + ["--config.grouping.splits=10"],
                                    ["config.grouping.splits", "number of tasks (6",
                                     "splits=10"]),
        "grouping splits 0": ("train", train + ["--config.grouping.splits=0"],
                              ["config.grouping.splits", ">= 1", "splits=0"]),
        "grouping objective": ("train", train + ["--config.grouping.objective=foo"],
                               ["config.grouping.objective", "'tag'", "objective='foo'"]),
        "rule name": ("train", train + ["--config.rule.name=foo"],
                      ["config.rule", "rule.name", "'pcgrad'", "name='foo'"]),
        "transference method": ("train", train + ["--config.transference.method=foo"],
                                ["config.transference", "method", "'exact'", "method='foo'"]),
        "transference every": ("train", train + ["--config.transference.every=0"],
                               ["config.transference", "every", ">= 1", "every=0"]),
        "loss name": ("train", train + ["--config.model.loss=nope"],
                      ["config.model.loss", "Keras loss", "loss='nope'"]),
        "learning rate inf": ("train", train + ["--config.optimizer.learning_rate=inf"],
                              ["config.optimizer.learning_rate", "finite", "inf"]),
        "learning rate nan": ("train", train + ["--config.optimizer.learning_rate=nan"],
                              ["config.optimizer.learning_rate", "finite", "nan"]),
        "head units 0": ("train", train + ["--config.model.head_units=0"],
                         ["config.model.head_units", ">= 1", "head_units=0"]),
        "model width": ("train", train + ["--config.model.width=0"],
                        ["config.model.width", "> 0"]),
        # Files the commands read: each error names the flag and the file.
        "corrupt config.json": ("train", [QUICK, f"--workdir={tmp / 'corrupt'}"],
                                ["config.json", "not valid JSON", str(tmp / "corrupt")]),
        "group scores not JSON": ("group", [f"--scores={tmp / 'bad.json'}", "--splits=2"],
                                  [f"--scores={tmp / 'bad.json'}", "not valid JSON"]),
        "group scores not an object": ("group", [f"--scores={tmp / 'list.json'}"],
                                       ["--scores=", "JSON list"]),
        "group costs value": ("group", [scores, "--splits=2", "--costs=t0|t1=abc"],
                              ["--costs=t0|t1=abc", "must be a number", "'t0|t1=abc'"]),
        "group costs file": ("group", [scores, "--splits=2", f"--costs={tmp / 'none.json'}"],
                             [f"--costs={tmp / 'none.json'}", "No such file"]),
        "group splits > tasks": ("group", [scores, "--splits=3"], ["splits", "splits=3"]),
        "standley setting": ("standley", ["--settings=1,7"], ["--settings", "[1, 2, 3, 4]",
                                                               "--settings=1,7"]),
        "standley results_dir": ("standley", [f"--results_dir={tmp}"], [
            f"--results_dir={tmp / 'results.txt'}", "no such file", "002's results.txt"]),
        "groups not JSON": ("evaluate_grouping", evaluate + [f"--groups={tmp / 'bad.json'}"],
                            [f"--groups={tmp / 'bad.json'}", "not valid JSON"]),
        "groups without groups": ("evaluate_grouping", evaluate + [scores.replace(
            "--scores", "--groups")], ["--groups=", "at least one group"]),
        # Refused before --workdir is made.
        "compare_groupings methods": ("compare_groupings", compare_groupings + ["--methods=foo"],
                                      ["grouping method", "'foo'", "'tag'"]),
        "compare_groupings splits": ("compare_groupings", compare_groupings + ["--splits=0"],
                                     ["Split counts", "splits=['0']"]),
        "pairs splits > tasks": ("pairs", [GROUPING, f"--workdir={tmp / 'pairs'}",
                                           "--splits=9"], ["Split counts", "splits=[9]"]),
        "interference encoder": ("interference", [
            "--config=configs/interference_mdl.py:runlocal", f"--workdir={tmp / 'interference'}",
            "--config.model.encoder=foo"], ["config.model.encoder", "'mlp'", "'foo'"]),
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
        "config not Python": ("train", [f"--config={tmp / 'syntax_error.py'}", workdir],
                              ["syntax_error.py", "not valid Python (line 1"]),
        "config without get_config": ("train", [f"--config={tmp / 'no_get_config.py'}", workdir],
                                      ["no_get_config.py", "defines no get_config()"]),
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


# An error past the checks (where training starts): a library bug, even in the refusal
# format, keeps its traceback and exit status 1.
BUG = "Shapes (64, 1) and (64, 2) are incompatible. Received: a bug past the checks"


def _other_cases(tmp):
    return {
        "after the checks": {"entry": "launch", "command": "train",
                             "args": [QUICK, f"--workdir={tmp / 'after'}"],
                             "fail": {"at": "tf_mtl.experiments.runs:run", "error": BUG}},
        "verbose refusal": {"entry": "launch", "command": "train",
                            "args": [QUICK, f"--workdir={tmp / 'run'}", "--verbosity=1",
                                     "--config.rule.name=foo"]},
    }


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """Every --help and refusal case, run by one ``command_runner.py`` process."""
    tmp = tmp_path_factory.mktemp("refusals")
    refusals = _refusal_cases(tmp)
    others = _other_cases(tmp)
    cases = HELP_CASES + OTHER_HELP_CASES + list(others.values()) + [
        {"entry": "console" if c.startswith("console:") else "launch",
         "command": c.split(":")[-1], "args": a} for c, a, _ in refusals.values()]
    outs = _run_many(cases)
    n, m = len(HELP_CASES), len(HELP_CASES) + len(OTHER_HELP_CASES)
    return {"help": outs[:n], "other help": outs[n:m],
            "others": dict(zip(others, outs[m:m + len(others)])),
            "refusals": dict(zip(refusals, zip(refusals.values(), outs[m + len(others):]))),
            "tmp": tmp}


def test_help_lists_each_commands_flags_and_an_example_from_both_entry_points(many):
    for case, out in zip(HELP_CASES, many["help"]):
        text, where = out["stdout"], f"{case['entry']} {case['command']}"
        assert out["rc"] == 0, (where, out)
        assert "Traceback" not in out["stderr"], (where, out["stderr"])
        assert "Example" in text, where
        # The example is a command line of this command, with its flags.
        assert "tf-mtl-" + case["command"].replace("_", "-") + " --" in text, where
        for flag in COMMANDS[case["command"]]:   # Booleans show as --[no]flag.
            assert f"--{flag}:" in text or f"--[no]{flag}:" in text, (where, flag, text)
        assert "python -m launch." + case["command"] in text, where


def test_every_help_flag_exits_0(many):
    for case, out in zip(OTHER_HELP_CASES, many["other help"]):
        assert out["rc"] == 0 and "Usage:" in out["stdout"], (case, out)


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
    tmp = many["tmp"]
    for name in UNMADE:   # Refused before anything was written: no workdir, no config.json.
        assert not (tmp / name).exists(), name
    assert (tmp / "corrupt" / "config.json").read_text() == '{"seed" 0}'
    assert not (tmp / "groups.json").exists()   # tf-mtl-group writes it beside the scores.


def test_an_error_past_the_checks_keeps_its_traceback(many):
    out = many["others"]["after the checks"]
    assert out["rc"] == 1, out
    assert "Traceback" in out["stderr"] and "error:" not in out["stderr"], out["stderr"]
    assert out["stderr"].strip().splitlines()[-1] == f"ValueError: {BUG}"
    assert not (many["tmp"] / "after" / "config.json").exists()


def test_verbosity_1_shows_a_refusals_traceback(many):
    out = many["others"]["verbose refusal"]
    assert out["rc"] == 2 and "Traceback" in out["stderr"], out
    last = out["stderr"].strip().splitlines()[-1]
    assert last.startswith("tf-mtl-train: error: config.rule:") and "name='foo'" in last


def _launch_train(tmp_path, *flags, timeout):
    """``python -m launch.train`` on the runlocal quickstart, with TensorFlow's logs as a
    user gets them (no TF_CPP_MIN_LOG_LEVEL of the test environment's)."""
    return subprocess.run(
        [sys.executable, "-m", "launch.train", QUICK, f"--workdir={tmp_path / 'run'}", *flags],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})


def test_the_quickstart_starts_with_the_librarys_own_output(tmp_path):
    proc = _launch_train(tmp_path, "--config.tensorboard=False", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for line in (proc.stderr + proc.stdout).lower().splitlines():
        assert not any(word in line for word in NOISE), line
    assert "wrote:" in proc.stdout and "planted groups" in proc.stdout


def test_a_real_refusal_is_one_line_with_tensorflow_imported_quietly(tmp_path):
    proc = _launch_train(tmp_path, "--config.optimizer.learning_rate=-1", timeout=120)
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


def test_console_script_starts_quietly(tmp_path):
    """The installed ``tf-mtl-train``, started outside the checkout: no TensorFlow start-up
    logs (``tf_mtl/__init__`` quiets them before it imports TensorFlow)."""
    import shutil
    with open(os.path.join(ROOT, "tf_mtl", "__init__.py")) as f:
        assert "quiet_console_script()" in f.read(), (
            "tf_mtl/__init__ must call tf_mtl.cli.startup.quiet_console_script() before it "
            "imports TensorFlow")
    command = shutil.which("tf-mtl-train", path=os.pathsep.join(
        [os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    assert command, "tf-mtl-train is not installed (pip install -e .)"
    proc = subprocess.run([command, f"--config={ROOT}/configs/quickstart.py:runlocal",
                           f"--workdir={tmp_path / 'run'}", "--config.epochs=0"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={k: v for k, v in os.environ.items()
                               if k != "TF_CPP_MIN_LOG_LEVEL"})
    for line in (proc.stderr + proc.stdout).lower().splitlines():
        assert not any(word in line for word in NOISE), line
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "config.epochs" in proc.stderr
