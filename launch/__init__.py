"""``python -m launch.<command>`` from a checkout: each module runs the command of
``tf_mtl.cli.<command>`` (installed as ``tf-mtl-<command>``).

This package is imported before any of its modules, hence before ``tf_mtl`` (whose
``__init__`` imports TensorFlow): TensorFlow's start-up logs are quieted here, by
``tf_mtl/cli/startup.py``. That file uses the standard library only and is loaded from
its path, so that nothing of ``tf_mtl`` runs before it.
"""

import importlib.util
import os


def _quiet_tensorflow():
    package = importlib.util.find_spec("tf_mtl")   # Finds tf_mtl without importing it.
    if package is None or not package.submodule_search_locations:
        return
    path = os.path.join(next(iter(package.submodule_search_locations)), "cli", "startup.py")
    spec = importlib.util.spec_from_file_location("_tf_mtl_startup", path)
    if spec is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.quiet_tensorflow()


_quiet_tensorflow()
