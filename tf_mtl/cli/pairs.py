"""Train every single task and every pair of a config: the HOA (and ESA-HOA) table.

Usage:
    tf-mtl-pairs --config=FILE.py[:arg] --workdir=DIR [--esa] [--splits=N] [--shard=i/n]

Example:
    tf-mtl-pairs --config=configs/grouping_planted.py:runlocal --workdir=/tmp/pairs --splits=3
    python -m launch.pairs ...    # the same, from a checkout

Writes ``DIR/hoa.json`` (``scores[task][partner]``, the ``hoa`` objective's
input), ``DIR/hoa_predictions.json`` and ``DIR/groups.json``: the HOA selection
of ``--splits`` groups (default 2), ready for ``launch.evaluate_grouping``, with
single-task networks costing ``single_width / group_width`` of a group network
and served at the width they were scored at. Finished runs are skipped.
``--esa``: every run trains ``pair_runs.esa_fraction`` of the epochs (the
``esa_hoa`` approximation; ``002``'s ESA is ``compare_groupings --methods=esa``).
``--shard=i/n``: this worker trains runs i, i + n, ... into the shared DIR; the
tables are written by whichever call finds every run finished.
"""

import os

from absl import flags
from ml_collections import config_flags

from tf_mtl import cli, grouping
from tf_mtl.experiments import config_checks
from tf_mtl.grouping import pair_runs

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The experiment: a get_config() file, FILE.py[:arg] (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the pair runs.")
_ESA = flags.DEFINE_bool("esa", False, "ESA-HOA: every run trains a fraction of the epochs.")
_SPLITS = flags.DEFINE_integer("splits", 2, "Select this many groups (hoa objective).",
                               lower_bound=1)
_SHARD = flags.DEFINE_string("shard", None, "'i/n': worker i of n sharing the workdir.")
flags.mark_flags_as_required(["config", "workdir"])


def select(config, scores, splits, workdir):
    """The HOA selection under the width costs; writes and returns ``groups.json``'s path."""
    tasks = pair_runs.config_tasks(config)
    costs = pair_runs.candidate_costs(pair_runs.options(config), tasks)
    selection = grouping.select_groups(scores, None if costs else splits, "hoa", costs=costs,
                                       budget=splits if costs else None)
    widths = pair_runs.selection_widths(config, selection.groups)
    path = os.path.join(workdir, "groups.json")
    pair_runs.write_json(path, {
        "objective": "hoa", "splits": splits, "groups": [list(g) for g in selection.groups],
        "serving": {t: list(g) for t, g in selection.serving.items()},
        "widths": {pair_runs.network_name(g): w for g, w in widths.items()},
        "value": selection.value, "cost": selection.cost})
    return selection, path


def main(argv):
    del argv
    config = _CONFIG.value
    with cli.checks():
        config_checks.check_config(config)
        pair_runs.options(config)
        shard = pair_runs.parse_shard(_SHARD.value)
    tasks = cli.config_tasks(config)   # Known from the config, else its data (not a check).
    with cli.checks():
        pair_runs.check_splits(tasks, [_SPLITS.value])
        cli.writable_dir(_WORKDIR.value)
    out = pair_runs.pair_runs(config, _WORKDIR.value, esa=_ESA.value, shard=shard)
    print(f"pair runs: {out['trained']} trained, {out['reused']} reused, "
          f"{out['seconds'] / 3600:.4f} h of training")
    if out["scores"] is None:
        print("other shards' runs are not finished yet; run again without --shard to collect")
        return
    print("wrote:", os.path.join(_WORKDIR.value, "hoa.json"))
    selection, path = select(config, out["scores"], _SPLITS.value, _WORKDIR.value)
    print(grouping.format_selection(selection, "hoa"))
    print("wrote:", path)


def run():
    """Console-script entry point."""
    cli.run_command(main)
