"""Train from a config file.

    tf-mtl-train --config=configs/quickstart.py --workdir=/tmp/run \
        [--config.epochs=3 --config.optimizer.learning_rate=0.01]
    python -m launch.train ...    # the same, from a checkout
"""

from absl import app, flags
from ml_collections import config_flags

from tf_mtl import experiment, grouping

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a get_config() file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's files.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    result = experiment.train(_CONFIG.value, _WORKDIR.value)
    print("wrote:")
    for path in result["files"]:
        print("  " + path)
    if "selection" in result:
        print(grouping.format_selection(result["selection"], _CONFIG.value.grouping.objective))
    if "planted_groups" in result:
        print("planted groups:", result["planted_groups"])


def run():
    """Console-script entry point."""
    app.run(main)
