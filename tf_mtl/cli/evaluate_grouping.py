r"""Train one network per chosen group and serve every task from its group.

Usage:
    tf-mtl-evaluate-grouping --config=FILE.py[:arg] --groups=FILE.json --workdir=DIR

Example (the groups tf-mtl-pairs or tf-mtl-group wrote):
    tf-mtl-evaluate-grouping --config=configs/grouping_planted.py \
        --groups=DIR/groups.json --workdir=DIR
    python -m launch.evaluate_grouping ...    # the same, from a checkout

Networks train into ``DIR/networks/<tasks>`` (finished ones are reused);
``DIR/served.json`` gets each task's served test metrics, the total and mean
test loss, the average error (with an accuracy metric) and the inference cost.
"""

import json

from absl import flags
from ml_collections import config_flags

from tf_mtl import cli
from tf_mtl.experiments import config_checks
from tf_mtl.grouping import serving

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "The experiment: a get_config() file, FILE.py[:arg] (configs/*.py).")
_GROUPS = flags.DEFINE_string("groups", None, "groups.json (launch.group, launch.pairs).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the networks and served.json.")
flags.mark_flags_as_required(["config", "groups", "workdir"])


def main(argv):
    del argv
    config = _CONFIG.value
    with cli.checks():
        config_checks.check_config(config)
        cli.read_json(_GROUPS.value, "groups", "a groups.json object (tf-mtl-group, "
                                               "tf-mtl-pairs)")
    tasks = cli.config_tasks(config)   # Known from the config, else its data (not a check).
    with cli.checks():
        with cli.refusing("groups", _GROUPS.value):
            groups, serving_map, widths = serving.load_groups(_GROUPS.value, tasks)
        cli.writable_dir(_WORKDIR.value)
    out = serving.evaluate_grouping(config, groups, _WORKDIR.value, serving=serving_map,
                                    widths=widths)
    for t, m in out["tasks"].items():
        print(f"  {t} <- {', '.join(m['group'])}: " + json.dumps(
            {k: round(v, 6) for k, v in m.items() if k != "group"}))
    print(f"total test loss {out['total_test_loss']:.6g}, mean {out['mean_test_loss']:.6g}"
          + (f", average error {out['average_error']:.4f}" if out["average_error"] is not None
             else "")
          + f"; {out['encoders']} encoders, {out['parameters']} parameters")


def run():
    """Console-script entry point."""
    cli.run_command(main)
