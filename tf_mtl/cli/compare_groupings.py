r"""Compare task-grouping methods end to end (``001`` Fig. 4, ``002`` Table 4).

Usage:
    tf-mtl-compare-groupings --config=FILE.py[:arg] --workdir=DIR [--splits=2,3,4] \
        [--methods=tag,hoa,...]

Example:
    tf-mtl-compare-groupings --config=configs/grouping_planted.py:runlocal \
        --splits=2,3,4 --methods=tag,tag_first_order,hoa,esa,esa_hoa,random --workdir=DIR
    python -m launch.compare_groupings ...    # the same, from a checkout

Writes ``DIR/comparison.md`` (printed), ``DIR/comparison.json`` and
``DIR/fig4.png``; re-running reuses every finished run.
"""

from absl import flags
from ml_collections import config_flags

from tf_mtl import cli
from tf_mtl.experiments import config_checks
from tf_mtl.experiments import runs
from tf_mtl.grouping import comparison, pair_runs

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The experiment: a get_config() file, FILE.py[:arg] (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for every run of the comparison.")
_SPLITS = flags.DEFINE_list("splits", ["2", "3", "4"], "Split counts (encoders).")
_METHODS = flags.DEFINE_list("methods", list(comparison.METHODS),
                             f"Methods among {list(comparison.METHODS)}.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    config = _CONFIG.value
    # Methods, split counts (tf_mtl.grouping.pair_runs.check_splits), the metric and seeds
    # are checked before the workdir is made and before any training.
    with cli.checks():
        config_checks.check_config(config)
        options = pair_runs.options(config)
        runs.parse_seeds(config.get("seeds"), config.seed)
    tasks = cli.config_tasks(config)   # Known from the config, else its data (not a check).
    with cli.checks():
        comparison.check_request(tasks, _SPLITS.value, _METHODS.value)
        comparison.check_metric(config, tasks, options.metric)
        cli.writable_dir(_WORKDIR.value)
    out = comparison.compare(config, _WORKDIR.value, _SPLITS.value, _METHODS.value)
    print(out["text"])
    print("wrote:")
    for path in out["files"]:
        print("  " + path)


def run():
    """Console-script entry point."""
    cli.run_command(main)
