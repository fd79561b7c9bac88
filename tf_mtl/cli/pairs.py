"""Train every single task and every pair of a config: the HOA (and ESA) table.

    tf-mtl-pairs --config=configs/grouping_planted.py --workdir=DIR [--esa] [--splits=3] \
        [--shard=i/n]
    python -m launch.pairs ...    # the same, from a checkout

Writes ``DIR/hoa.json`` (``scores[task][partner]``, the ``hoa`` objective's
input), ``DIR/hoa_predictions.json`` and, with ``--splits``, ``DIR/groups.json``
(the HOA selection, ready for ``launch.evaluate_grouping``). Finished runs are
skipped. ``--esa``: every run trains ``grouping_runs.esa_fraction`` of the epochs.
``--shard=i/n``: this worker trains runs i, i + n, ... into the shared DIR; the
tables are written by whichever call finds every run finished.
"""

import os

from absl import app, flags
from ml_collections import config_flags

from tf_mtl import grouping, grouping_runs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a get_config() file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the pair runs.")
_ESA = flags.DEFINE_bool("esa", False, "Early-Stopping Approximation: a fraction of the epochs.")
_SPLITS = flags.DEFINE_integer("splits", None, "Also select this many groups (hoa objective).")
_SHARD = flags.DEFINE_string("shard", None, "'i/n': worker i of n sharing the workdir.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    out = grouping_runs.pair_runs(_CONFIG.value, _WORKDIR.value, esa=_ESA.value,
                                  shard=grouping_runs.parse_shard(_SHARD.value))
    print(f"pair runs: {out['trained']} trained, {out['reused']} reused, "
          f"{out['seconds'] / 3600:.4f} h of training")
    if out["scores"] is None:
        print("other shards' runs are not finished yet; run again without --shard to collect")
        return
    print("wrote:", os.path.join(_WORKDIR.value, "hoa.json"))
    if _SPLITS.value:
        chosen = grouping.select_groups_from_file(os.path.join(_WORKDIR.value, "hoa.json"),
                                                  splits=_SPLITS.value, objective="hoa")
        print(grouping.format_selection(chosen["selection"], "hoa"))
        print("wrote:", chosen["path"])


def run():
    """Console-script entry point."""
    app.run(main)
