"""Run 000's interference / transfer protocol from a config file.

Usage:
    tf-mtl-interference --config=FILE.py[:arg] --workdir=DIR [--config.<field>=value ...]

Example (three tiny synthetic domains, a few minutes on a laptop CPU):
    tf-mtl-interference --config=configs/interference_mdl.py:runlocal --workdir=/tmp/mdl
    python -m launch.interference ...    # the same, from a checkout
"""

from absl import flags
from ml_collections import config_flags

from tf_mtl import cli
from tf_mtl.experiments import experiment
from tf_mtl.interference import protocol

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The protocol: a get_config() file, FILE.py[:arg] "
    "(configs/interference_mdl.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for models, tables and figures; "
                               "models already saved there are reused.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    with cli.checks():
        experiment.check_config(_CONFIG.value)
        cli.writable_dir(_WORKDIR.value)
    result = protocol.run(_CONFIG.value, _WORKDIR.value)
    print(f"trained {len(result['trained'])} models, reused {len(result['loaded'])}; wrote:")
    for path in result["files"]:
        print("  " + path)


def run():
    """Console-script entry point."""
    cli.run_command(main)
