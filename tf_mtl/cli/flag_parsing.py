"""The commands' flag parsing: absl's and ml_collections' errors as one line.

``parse_flags`` checks each ``--config`` file before ml_collections runs it (it exists,
is valid Python, defines ``get_config``), parses the flags with absl, and turns an
unknown flag, a refused value or a misspelt ``--config.<field>`` into one line that
names it and what is allowed. ``--help`` and absl's other help flags exit 0.
"""

import ast
import difflib
import os
import re
import sys

from absl import flags

FLAGS = flags.FLAGS


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


def config_flags(own):
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


def parse_flags(argv, command, own, refuse):
    """absl's flag parsing, with its errors (and ml_collections') given to ``refuse`` as
    one line (it exits with status 2); ``own`` are the command's flags."""
    for flag in config_flags(own):
        for value in _flag_values(argv, flag.name):
            path = value.split(":", 1)[0]
            if not os.path.isfile(path):
                refuse(f"--{flag.name}={value}: no config file {path!r} (give a "
                               "Python file with get_config(), e.g. configs/quickstart.py)")
            problem = _config_file_problem(path)
            if problem:
                refuse(f"--{flag.name}={value}: {problem}")
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
        refuse(f"unknown flag --{e.flagname}"
                       + (f" (did you mean --{guess[0]}?)" if guess else "")
                       + f"; {command} takes {names} (see --help)")
    except flags.Error as e:
        refuse(_flag_error(e))
    except (AttributeError, KeyError):
        message = _unknown_field(argv, own)
        if message is None:
            raise
        refuse(message)


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
    for flag in config_flags(own):
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
