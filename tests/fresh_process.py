"""Runs a check script in a fresh Python process, on this checkout's ``tf_mtl``.

Device configuration (logical CPUs, TF_CONFIG) must happen before TensorFlow
initialises, hence a process per check. A script run as ``python tests/x.py`` has
``tests/`` first on its path, not the checkout: ``PYTHONPATH`` puts the checkout's
``tf_mtl`` ahead of any installed one.
"""

import os
import subprocess
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)


def checkout_env(extra=None):
    """``os.environ`` with this checkout first on ``PYTHONPATH`` (and ``extra`` set)."""
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT] + paths), **(extra or {})}


def run_check(script, *args, timeout=600, env=None):
    """``subprocess.run`` of ``tests/<script> args`` from the checkout's root."""
    return subprocess.run([sys.executable, os.path.join(TESTS, script), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=checkout_env(env))
