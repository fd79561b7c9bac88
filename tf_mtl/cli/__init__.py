"""Command-line entry points (absl apps): parse flags, call library code.

Nine commands, one module each: ``train``, ``group``, ``benchmark``, ``interference``,
``pairs``, ``evaluate_grouping``, ``compare_groupings``, ``compare``, ``metaworld``. Each module's
``run`` is its console script (``tf-mtl-train``, ``tf-mtl-evaluate-grouping``, ...);
from a checkout, ``python -m launch.<module>`` runs the same. What they share is here,
in ``run_command(main)``:

* ``--help`` prints the command's module docstring (its usage, with an example) and
  the flags the command defines, for both entry points.
* A bad flag, config field or value ends in one line on stderr,
  ``tf-mtl-train: error: ...``, naming it and what is allowed, and exit status 2, before
  anything trains: unknown flags, bad enum values, misspelt ``--config.<field>``, a config
  file that does not exist, an unwritable ``--workdir`` (``writable_dir``), a file flag
  naming no file or not valid JSON (``existing_file``, ``read_json``), values no run can
  mean (``tf_mtl.experiments.config_checks.check_config``). The commands check their inputs
  in ``with checks():`` blocks, before they load data or train: a ``Refusal``, or a
  ``ValueError``/``TypeError`` in the library's refusal format (its message says what was
  "Received"), raised there is refused. Every error raised after that keeps its traceback
  (exit status 1), whatever its message; ``--verbosity=1`` shows a refusal's traceback too.
* ``--help`` (``--helpfull``, ``--helpshort``) exits with status 0. Flag parsing and its
  one-line errors are ``tf_mtl.cli.flag_parsing``.
* TensorFlow's start-up logs are off unless asked for (``tf_mtl.cli.startup``).
"""

import contextlib
import functools
import json
import os
import sys
import tempfile
import traceback

from absl import app, flags

from tf_mtl.cli import flag_parsing, startup

FLAGS = flags.FLAGS
# Added to every command's --help.
_HELP_FOOTER = """
TensorFlow's own start-up logs are dropped unless --verbosity=0 (or higher) or
TF_CPP_MIN_LOG_LEVEL is given. A bad flag or value ends in one line on stderr and exit
status 2 (--verbosity=1 adds its traceback). --helpfull lists absl's flags too.
"""
_CONFIG_HELP = """
--config=FILE.py[:arg] runs FILE's get_config(arg); --config.<field>=value overrides one of
its fields (e.g. --config.optimizer.learning_rate=0.01).
"""


class Refusal(Exception):
    """A command-line input refused: ``run_command`` prints its message as one line and
    exits with status 2."""


def command_name(module):
    """``tf_mtl.cli.compare_groupings`` -> ``tf-mtl-compare-groupings``."""
    return "tf-mtl-" + module.__name__.rsplit(".", 1)[-1].replace("_", "-")


def run_command(main, argv=None):
    """``app.run(main)`` as every command runs: ``main``'s module gives the usage and the
    flags of ``--help``; refused inputs end in one line and exit status 2 (module doc)."""
    startup.quiet_tensorflow(argv)   # Too late after `import tf_mtl`: launch/ calls it first.
    module = sys.modules[main.__module__]
    command = command_name(module)
    own = FLAGS.get_key_flags_for_module(module.__name__)
    _show_in_help(module, own)
    app.run(functools.partial(_main, main, command),
            argv=argv, flags_parser=functools.partial(
                flag_parsing.parse_flags, command=command, own=own,
                refuse=functools.partial(_exit, command)))


def _show_in_help(module, own):
    """absl's --help shows ``__main__``'s docstring and the key flags of the module named
    ``sys.argv[0]``: for a console script or ``python -m launch.x`` that is not the
    command's module, so its docstring and flags are put there."""
    text = (module.__doc__ or "").rstrip() + "\n"
    if flag_parsing.config_flags(own):
        text += _CONFIG_HELP
    text += _HELP_FOOTER
    # absl formats the docstring with '%' (sys.argv[0] for '%s'): keep ours literal.
    sys.modules["__main__"].__doc__ = text.replace("%", "%%")
    for flag in own:
        FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def _exit(command, message):
    sys.stderr.write(f"{command}: error: {one_line(message)}\n")
    sys.stderr.flush()
    sys.exit(2)


def one_line(text):
    """``text`` on one line (its lines joined by spaces)."""
    return " ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())


def _main(main, command, argv):
    if len(argv) > 1:   # No command takes positional arguments.
        _exit(command, f"unexpected argument(s) {' '.join(argv[1:])!r}: every input is a "
                       "flag, --name=value (see --help)")
    try:
        return main(argv)
    except Refusal as e:   # Only what checks() blocks refuse: later errors keep their traceback.
        if _verbosity() >= 1:
            traceback.print_exception(e)
        _exit(command, str(e))


def _verbosity():
    try:
        return int(FLAGS.verbosity)
    except (AttributeError, TypeError, ValueError, flags.Error):
        return -1


def is_refusal(error):
    """Whether ``error`` is in tf_mtl's refusal format: a ``ValueError``/``TypeError``
    whose message says what was "Received" (``checks`` refuses those)."""
    return isinstance(error, (ValueError, TypeError)) and "Received" in str(error)


@contextlib.contextmanager
def checks():
    """The block checks inputs before anything loads data or trains: a ``Refusal``, or a
    ``ValueError``/``TypeError`` in the library's refusal format (``is_refusal``), raised
    in it is refused (one line on stderr, exit status 2). Other errors, and any error
    raised outside such a block, keep their traceback."""
    try:
        yield
    except (ValueError, TypeError) as e:
        if not is_refusal(e):
            raise
        raise Refusal(str(e)) from e


@contextlib.contextmanager
def refusing(flag, value, *errors):
    """A block whose ``errors`` (default ``ValueError``, ``TypeError``) are refusals of
    ``--flag=value``, the message prefixed by the flag: for a flag's file or text that a
    library function reads."""
    try:
        yield
    except Refusal:
        raise
    except (errors or (ValueError, TypeError)) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise Refusal(f"--{flag}={value}: {reason}") from e


def read_json(path, flag, what="a JSON object"):
    """The JSON object in file ``path`` (the value of ``--flag``); a ``Refusal`` naming the
    flag and the file where it is missing, unreadable, not JSON or not an object."""
    existing_file(path, flag, f"a JSON file holding {what}")
    try:
        with open(path) as f:
            value = json.load(f)
    except OSError as e:
        raise Refusal(f"--{flag}={path}: cannot read it: {e.strerror or e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise Refusal(f"--{flag}={path}: not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise Refusal(f"--{flag}={path}: must hold {what}; it holds a JSON "
                      f"{type(value).__name__}")
    return value


def check_workdir(config, workdir):
    """``tf_mtl.experiments.experiment.check_workdir`` as a refusal: ``workdir`` holds
    another config's run, a finished one that cannot be read back, or (a multi-worker
    ``TF_CONFIG`` of several workers) any earlier run."""
    from tf_mtl.experiments import experiment   # (This package is imported before TensorFlow.)
    try:
        experiment.check_workdir(config, workdir, multi_worker=_several_workers(config))
    except ValueError as e:   # Its messages name --workdir and the file.
        raise Refusal(str(e)) from e


def _several_workers(config):
    """Whether ``config`` runs under ``"multiworker"`` with a ``TF_CONFIG`` cluster of
    several workers (read before the strategy exists, as ``distribute.is_chief_process``)."""
    if config.get("strategy") != "multiworker":
        return False
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster") or {}
    except (ValueError, AttributeError):
        return False   # TensorFlow reports a malformed TF_CONFIG itself.
    return sum(len(cluster.get(kind) or ()) for kind in ("chief", "worker")) > 1


def config_tasks(config):
    """The tasks ``config`` trains: from the config (``config_checks.config_tasks``), else
    from its validation data. Call it outside ``checks()``: loading data is not a check,
    and its errors keep their traceback."""
    from tf_mtl.experiments import config_checks
    from tf_mtl.grouping import pair_runs
    with checks():
        tasks = config_checks.config_tasks(config)
    return tasks if tasks is not None else pair_runs.config_tasks(config)


def writable_dir(path, flag="workdir"):
    """Makes directory ``path`` (a flag's value) and checks a file can be written in it;
    else a ``Refusal`` "cannot write to --workdir=...: <reason>". Returns ``path``."""
    try:
        if os.path.exists(path) and not os.path.isdir(path):
            raise Refusal(f"cannot write to --{flag}={path}: it is a file, not a directory")
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise Refusal(f"cannot write to --{flag}={path}: {e.strerror or e}") from e
    return path


def existing_file(path, flag, what="a file"):
    """``path`` (a flag's value) if it is a file; else a ``Refusal`` naming the flag."""
    if not os.path.isfile(path):
        reason = "it is a directory" if os.path.isdir(path) else "no such file"
        raise Refusal(f"--{flag}={path}: {reason}; give {what}")
    return path
