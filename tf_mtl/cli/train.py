"""Train from a config file, evaluate on the test split, write results.json.

    tf-mtl-train --config=configs/quickstart.py --workdir=/tmp/run \
        [--config.epochs=3 --config.optimizer.learning_rate=0.01]
    tf-mtl-train ... --config.seeds=10     # DIR/seed_<s>/ and DIR/results.md (mean ± s.e.)
    python -m launch.train ...    # the same, from a checkout

Run the same command again after a crash or kill: it continues from the last
completed epoch; finished runs (seeds) are not trained again.
"""

from absl import app, flags
from ml_collections import config_flags

from tf_mtl import grouping, runs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a get_config() file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's files.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    result = runs.run(_CONFIG.value, _WORKDIR.value)
    if "seeds" in result:
        print("wrote:", *result["files"], sep="\n  ")
        with open(result["files"][0]) as f:
            print(f.read())
        return
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
