"""Command-line entry points (absl apps): parse flags, call library code.

Eight commands, one module each: ``train``, ``group``, ``benchmark``, ``interference``,
``pairs``, ``evaluate_grouping``, ``compare_groupings``, ``compare``. Each module's
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
* ``--help`` (``--helpfull``, ``--helpshort``) exits with status 0.
* TensorFlow's start-up logs are off unless asked for (``tf_mtl.cli.startup``).
"""

import ast
import contextlib
import difflib
import functools
import json
import os
import re
import sys
import tempfile
import traceback

from absl import app, flags

from tf_mtl.cli import startup

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
            argv=argv, flags_parser=functools.partial(_parse_flags, command=command, own=own))


def _show_in_help(module, own):
    """absl's --help shows ``__main__``'s docstring and the key flags of the module named
    ``sys.argv[0]``: for a console script or ``python -m launch.x`` that is not the
    command's module, so its docstring and flags are put there."""
    text = (module.__doc__ or "").rstrip() + "\n"
    if _config_flags(own):
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


def _flag_values(argv, name):
    """The values given to ``--name`` in ``argv`` (``--name=v`` or ``--name v``)."""
    values = []
    for i, arg in enumerate(argv[1:], 1):
        if arg == "--":
            break
        match = re.match(rf"^--?{re.escape(name)}(?:=(.*))?$", arg)
        if match:
            value = match.group(1)
            if value is None and i + 1 < len(argv):
                value = argv[i + 1]
            if value is not None:
                values.append(value)
    return values


def _asks_for_help(argv):
    """Whether ``argv`` holds one of absl's help flags (``--help``, ``-?``, ``--helpfull``,
    ``--helpshort``, ``--helpxml``)."""
    for arg in argv[1:]:
        if arg == "--":
            return False
        if re.match(r"^--?(?:help|helpfull|helpshort|helpxml|\?)(?:=.*)?$", arg):
            return True
    return False


def _config_flags(own):
    """The flags of ``own`` that ``config_flags.DEFINE_config_file`` defined."""
    return [f for f in own if f.parser.flag_type() == "config object"]


def _config_file_problem(path):
    """Why ``path`` cannot be a config file (read, not run: invalid Python, or no
    top-level ``get_config``), or None."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
    except SyntaxError as e:
        return f"not valid Python (line {e.lineno}: {e.msg})"
    except (OSError, UnicodeDecodeError) as e:
        return f"cannot be read ({e})"
    if not any(isinstance(node, ast.FunctionDef) and node.name == "get_config"
               for node in tree.body):
        return "defines no get_config() (a config file returns its ConfigDict from get_config)"
    return None


def _importable_package_of(config_path):
    """Config files import their siblings as a package (``from configs.x import ...``):
    the folder above that package goes on ``sys.path``, as ``python -m`` from the
    checkout's root would have it, so installed commands load them from anywhere."""
    folder = os.path.dirname(os.path.abspath(config_path))
    if os.path.isfile(os.path.join(folder, "__init__.py")):
        root = os.path.dirname(folder)
        if root not in sys.path:
            sys.path.insert(0, root)


def _parse_flags(argv, command, own):
    """absl's flag parsing, with its errors (and ml_collections') as one line, status 2."""
    for flag in _config_flags(own):
        for value in _flag_values(argv, flag.name):
            path = value.split(":", 1)[0]
            if not os.path.isfile(path):
                _exit(command, f"--{flag.name}={value}: no config file {path!r} (give a "
                               "Python file with get_config(), e.g. configs/quickstart.py)")
            problem = _config_file_problem(path)
            if problem:
                _exit(command, f"--{flag.name}={value}: {problem}")
            _importable_package_of(path)
    try:
        return FLAGS(argv)
    except SystemExit as e:   # absl's --help, --helpfull, ... exit with status 1.
        if e.code == 1 and _asks_for_help(argv):
            sys.exit(0)
        raise
    except flags.UnrecognizedFlagError as e:
        names = ", ".join(f"--{f.name}" for f in sorted(own, key=lambda f: f.name))
        guess = difflib.get_close_matches(e.flagname, [f.name for f in own], n=1)
        _exit(command, f"unknown flag --{e.flagname}"
                       + (f" (did you mean --{guess[0]}?)" if guess else "")
                       + f"; {command} takes {names} (see --help)")
    except flags.Error as e:
        _exit(command, _flag_error(e))
    except (AttributeError, KeyError):
        message = _unknown_field(argv, own)
        if message is None:
            raise
        _exit(command, message)


def _root_cause(error):
    while True:
        cause = error.__cause__ or error.__context__
        if cause is None or cause is error:
            return error
        error = cause


def _flag_error(error):
    """absl's message for a refused flag value, on one line; for a config file whose
    ``get_config`` refused its argument, that refusal rather than the traceback
    ml_collections puts in the message."""
    message = str(error)
    if "\n" not in message:
        return message
    root = _root_cause(error)
    if root is not error and "Received" in str(root):
        head = message.split(": ", 1)[0] if message.startswith("flag --") else "flag"
        return f"{head}: {root}"
    return message


def _unknown_field(argv, own):
    """The one-line message for a ``--config.<field>`` the config lacks (ml_collections
    raises a ``KeyError``/``AttributeError`` with a traceback), or None."""
    for flag in _config_flags(own):
        values = _flag_values(argv, flag.name)
        if not values:
            continue
        try:
            config = flag.parser.parse(values[-1])
        except Exception:  # noqa: BLE001 - the original error is re-raised instead.
            return None
        pattern = re.compile(rf"^--?(?:no)?{re.escape(flag.name)}\.([^=]+)")
        for arg in argv[1:]:
            match = pattern.match(arg)
            if match:
                message = _missing_field(config, match.group(1), flag.name)
                if message:
                    return message
    return None


def _missing_field(config, path, flag_name):
    node, walked = config, []
    for part in path.split("."):
        key = re.sub(r"\[.*\]$", "", part)
        keys = list(node.keys()) if hasattr(node, "keys") else None
        if keys is None:
            return None
        if key not in keys:
            field = ".".join(walked + [key])
            where = f"config.{'.'.join(walked)}" if walked else "the config"
            guess = difflib.get_close_matches(key, [str(k) for k in keys], n=1)
            hint = (f"did you mean '{'.'.join(walked + [guess[0]])}'?" if guess else
                    f"{where} has {', '.join(sorted(str(k) for k in keys))}")
            return f"--{flag_name}.{path}: unknown config field '{field}' ({hint})"
        walked.append(key)
        node = node[key]
        if part != key:   # An index into a list field: nothing more to check.
            return None
    return None
