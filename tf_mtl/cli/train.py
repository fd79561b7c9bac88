r"""Train from a config file, evaluate on the test split, write results.json.

Usage:
    tf-mtl-train --config=FILE.py[:arg] --workdir=DIR [--config.<field>=value ...] \
        [--strategy=default|mirrored|multiworker|tpu] [--logical_cpus=N]

Example (about a minute on a laptop CPU; ':runlocal' makes it a few seconds):
    tf-mtl-train --config=configs/quickstart.py --workdir=/tmp/run \
        --config.epochs=3 --config.optimizer.learning_rate=0.01
    tf-mtl-train ... --config.seeds=10     # DIR/seed_<s>/ and DIR/results.md (mean ± s.e.)
    python -m launch.train ...    # the same, from a checkout

Run the same command again after a crash or kill: it continues from the last
completed epoch; finished runs (seeds) are not trained again.

``--strategy`` overrides the config's ``strategy`` field (``tf_mtl.distribute.get_strategy``);
``--logical_cpus=N`` splits the CPU into N logical devices before TensorFlow starts, so that
``--strategy=mirrored`` has N replicas on a machine without a GPU (a test set-up: they share
the same cores). Multi-worker: start one process per worker with ``TF_CONFIG`` set.
"""

from absl import flags
from ml_collections import config_flags

from tf_mtl import cli, distribute, grouping
from tf_mtl.experiments import runs
from tf_mtl.experiments import config_checks

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The experiment: a get_config() file, FILE.py[:arg] (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the run's files (made if "
                               "missing; a finished or killed run there is continued).")
_STRATEGY = flags.DEFINE_enum("strategy", None, list(distribute.STRATEGIES),
                              "tf.distribute strategy; overrides config.strategy.")
_LOGICAL_CPUS = flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many "
                                     "logical devices (0: leave it whole).", lower_bound=0)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    config = _CONFIG.value
    if _STRATEGY.value is not None:
        config.strategy = _STRATEGY.value
    with cli.checks():   # Before anything is written, loaded or run.
        runs.parse_seeds(config.get("seeds"), config.seed)
        config_checks.check_config(config)
        cli.check_workdir(config, _WORKDIR.value)
        cli.writable_dir(_WORKDIR.value)
    if _LOGICAL_CPUS.value:
        distribute.set_logical_cpus(_LOGICAL_CPUS.value)
    result = runs.run(config, _WORKDIR.value)
    if "seeds" in result:
        print("wrote:", *result["files"], sep="\n  ")
        with open(result["files"][0]) as f:
            print(f.read())
        return
    print("strategy:", result["strategy"])
    print("wrote:")
    for path in result["files"]:
        print("  " + path)
    if "selection" in result:
        print(grouping.format_selection(result["selection"], config.grouping.objective))
    if "planted_groups" in result:
        print("planted groups:", result["planted_groups"])


def run():
    """Console-script entry point."""
    cli.run_command(main)
