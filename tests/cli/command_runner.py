"""Runs many short command lines of the launchers, paying for TensorFlow's import once.

``python tests/cli/command_runner.py < cases.json`` (from the checkout's root) imports
TensorFlow and tf_mtl once, then runs each case in a forked child, as a fresh process
would run it, and prints ``[{"rc", "stdout", "stderr"}, ...]`` as JSON. A case is
``{"entry": "launch" | "console", "command": "train", "args": [...]}``:

* ``"launch"``: ``python -m launch.<command> args`` (``runpy``, as ``-m`` runs it);
* ``"console"``: what the ``tf-mtl-<command>`` console script runs: ``sys.argv[0]``
  the script's path, ``tf_mtl.cli.<command>.run()``;
* ``"fail": {"at": "module:function", "error": "message"}`` (optional): that function
  raises ``ValueError(message)`` instead of running: an error past the command's checks
  (where training would start), without running TensorFlow.

Only for what fails or stops before TensorFlow runs anything (``--help``, refused flags
and values): a child forked after TensorFlow's import must not run TensorFlow ops.
TensorFlow's start-up output is not seen here (the import happened before the fork).
"""

import importlib
import json
import os
import runpy
import sys
import tempfile
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fail(at, error):
    module, name = at.split(":")

    def failing(*args, **kwargs):
        raise ValueError(error)

    setattr(importlib.import_module(module), name, failing)


def _child(case):
    command, args = case["command"], list(case["args"])
    if case.get("fail"):
        _fail(case["fail"]["at"], case["fail"]["error"])
    if case["entry"] == "launch":
        sys.argv = [os.path.join(ROOT, "launch", command + ".py")] + args
        runpy.run_module(f"launch.{command}", run_name="__main__", alter_sys=True)
    else:
        script = "tf-mtl-" + command.replace("_", "-")
        sys.argv = [os.path.join(os.path.dirname(sys.executable), script)] + args
        importlib.import_module(f"tf_mtl.cli.{command}").run()


def run_case(case):
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                try:
                    _child(case)
                    code = 0
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                    if not isinstance(e.code, (int, type(None))):
                        print(e.code, file=sys.stderr)
                except BaseException:  # noqa: BLE001 - as the interpreter reports it.
                    traceback.print_exc()
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return {"rc": os.waitstatus_to_exitcode(status),
                "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace")}


def main():
    cases = json.load(sys.stdin)
    os.chdir(ROOT)
    sys.path.insert(0, ROOT)
    import launch  # noqa: F401  (TensorFlow, quietly)
    import tf_mtl  # noqa: F401
    # What the commands import, once (none of these defines a flag).
    for name in ("tf_mtl.benchmarks", "tf_mtl.interference.protocol",
                 "tf_mtl.grouping.comparison", "tf_mtl.grouping.serving",
                 "tf_mtl.grouping.pair_runs", "tf_mtl.experiments.runs", "configs.quickstart"):
        importlib.import_module(name)
    results = [run_case(case) for case in cases]
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":
    main()
