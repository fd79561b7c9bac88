"""Run 000's interference / transfer protocol from a config file.

    tf-mtl-interference --config=configs/interference_mdl.py:runlocal --workdir=/tmp/mdl
    python -m launch.interference ...    # the same, from a checkout
"""

from absl import flags
from ml_collections import config_flags

from tf_mtl.interference import protocol

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a get_config() file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for models, tables and figures; "
                               "models already saved there are reused.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    result = protocol.run(_CONFIG.value, _WORKDIR.value)
    print(f"trained {len(result['trained'])} models, reused {len(result['loaded'])}; wrote:")
    for path in result["files"]:
        print("  " + path)


def run():
    """Console-script entry point."""
    from absl import app
    app.run(main)
