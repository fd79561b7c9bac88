"""Quiet start for the commands: TensorFlow imported without its start-up logs.

Standard library only, and nothing here imports ``tf_mtl``: ``launch/__init__.py``
loads this file by its path and calls ``quiet_tensorflow()`` before ``tf_mtl``
(whose ``__init__`` imports TensorFlow) is imported; for the console scripts,
``quiet_console_script()`` must be called before ``tf_mtl/__init__`` imports TensorFlow.

Unless asked for, every start of TensorFlow 2.19+ writes C++ logs to stderr:
"All log messages before absl::InitializeLog() ...", "oneDNN custom operations
are on", "Could not find cuda drivers", the CPU-feature guard, "failed call to
cuInit". ``TF_CPP_MIN_LOG_LEVEL`` silences the later ones but not those written
while TensorFlow's libraries load (they come before absl's logging is
initialised), so the first import runs with stderr (file descriptor 2) captured,
and what it wrote is written back without the log lines below the level.

Asking for logs turns all of this off: ``TF_CPP_MIN_LOG_LEVEL`` set by the user
(any value: TensorFlow's own behaviour), or absl's ``--verbosity``/``-v`` at
INFO (0) or above on the command line.
"""

import contextlib
import os
import re
import sys
import subprocess

# TF_CPP_MIN_LOG_LEVEL when quiet: TensorFlow's C++ INFO, WARNING and ERROR logs off (FATAL
# stays). Not 1 or 2: every CPU-only start logs "failed call to cuInit" as an ERROR at its
# first device use. Python warnings and Keras's output are not affected; --verbosity=0 or a
# TF_CPP_MIN_LOG_LEVEL of your own brings the C++ logs back for the whole run.
LEVEL = "3"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# glog/absl ("I0000 00:00:17.1 123 port.cc:153] ...") and TensorFlow's older prefix
# ("2025-09-17 14:44:05.157831: I external/...").
_LOG_LINE = re.compile(r"^(?:([IWEF])\d{4} \d\d:\d\d:\d\d|"
                       r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) )")
_NOISE = ("WARNING: All log messages before absl::InitializeLog() is called",
          "To enable the following instructions:")   # The CPU-feature guard's second line.
_VERBOSITY_NAMES = {"debug": 1, "info": 0, "warning": -1, "warn": -1, "error": -2, "fatal": -3}


def asks_for_logs(argv):
    """Whether ``argv`` holds absl's ``--verbosity``/``-v`` at INFO (0) or above."""
    value = None
    for i, arg in enumerate(argv[1:], 1):
        if arg == "--":
            break
        match = re.match(r"^--?(?:verbosity|v)(?:=(.*))?$", arg)
        if match:
            value = match.group(1) if match.group(1) is not None else (
                argv[i + 1] if i + 1 < len(argv) else None)
    if value is None:
        return False
    value = value.strip().lower()
    level = _VERBOSITY_NAMES.get(value)
    if level is None:
        try:
            level = int(value)
        except ValueError:
            return False   # absl refuses it when it parses the flags.
    return level >= 0


def quiet_tensorflow(argv=None):
    """Sets ``TF_CPP_MIN_LOG_LEVEL`` and imports TensorFlow with its start-up logs
    dropped, unless logs are asked for (module doc) or TensorFlow is already imported.
    Returns whether it did. Idempotent."""
    argv = sys.argv if argv is None else argv
    if ("tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ
            or asks_for_logs(argv)):
        return False
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = LEVEL
    with filtered_stderr(int(LEVEL)):
        import tensorflow  # noqa: F401  (the import is the point)
    return True


def quiet_console_script():
    """``quiet_tensorflow()`` if this process is an installed ``tf-mtl-*`` command.

    A console script imports ``tf_mtl.cli.<command>``, so ``tf_mtl/__init__`` (and with
    it TensorFlow) runs before any command code: only a call at the top of
    ``tf_mtl/__init__`` comes early enough for them."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return quiet_tensorflow() if name.startswith("tf-mtl-") else False


def drop_logs(text, min_level):
    """``text`` without the log lines of a severity below ``min_level`` (I=0 .. F=3)
    and TensorFlow's start-up notices (``_NOISE``); every other line is kept."""
    kept = []
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match and _SEVERITY[match.group(1) or match.group(2)] < min_level:
            continue
        if line.startswith(_NOISE):
            continue
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def filtered_stderr(min_level):
    """Sends what is written to file descriptor 2 in the block through ``drop_logs``, line
    by line, as it is written.

    The filter is a child process reading a pipe (this file run as a script), not a
    thread or a buffer of this process: if TensorFlow aborts while it loads (a FATAL log,
    missing CPU instructions, broken CUDA libraries), the child still writes out what was
    written before the abort, FATAL lines included."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):   # No usable stderr: nothing to filter.
        yield
        return
    child = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__), str(min_level)],
                             stdin=subprocess.PIPE, stdout=saved, close_fds=True)
    os.dup2(child.stdin.fileno(), 2)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(saved, 2)      # The pipe's last write end here: the child reads to its end,
        child.stdin.close()    # writes what is left and exits.
        child.wait()
        os.close(saved)


def _filter_stdin(min_level):
    """The child of ``filtered_stderr``: stdin to stdout through ``drop_logs``, line by line."""
    for raw in sys.stdin.buffer:
        text = drop_logs(raw.decode("utf-8", errors="replace"), min_level)
        if text:
            sys.stdout.buffer.write(text.encode("utf-8"))
            sys.stdout.buffer.flush()


if __name__ == "__main__":
    _filter_stdin(int(sys.argv[1]))
