r"""Select task groups from a score matrix.

Usage:
    tf-mtl-group --scores=FILE.json [--objective=tag|hoa|transference] [--splits=N] \
        [--costs="a=0.5,b=0.5" | --costs=costs.json] [--budget=2.5] [--time_limit=60]

Example (the affinities a tf-mtl-train run with transference wrote):
    tf-mtl-group --scores=/tmp/run/affinity.json --objective=tag --splits=3
    python -m launch.group ...    # the same, from a checkout

Prints the groups, which group serves each task and the value; writes
``groups.json`` next to the scores file.
"""

from absl import flags

from tf_mtl import cli, grouping

_SCORES = flags.DEFINE_string("scores", None, "JSON {row: {column: value}} (affinity.json).")
_OBJECTIVE = flags.DEFINE_enum("objective", "tag", list(grouping.OBJECTIVES), "Objective.")
_SPLITS = flags.DEFINE_integer("splits", None, "Most groups (the budget with unit costs).",
                               lower_bound=1)
_BUDGET = flags.DEFINE_float("budget", None, "Total cost allowed (default: splits).",
                             lower_bound=0)
_COSTS = flags.DEFINE_string("costs", None,
                             "Group costs: 'a|b=0.5,c=0.5' or a JSON file {\"a|b\": 0.5}.")
_TIME_LIMIT = flags.DEFINE_float("time_limit", None, "Seconds before an inexact answer.",
                                 lower_bound=0)
flags.mark_flag_as_required("scores")


def main(argv):
    del argv
    path = _SCORES.value
    with cli.checks():   # No training here: the selection is a function of the inputs.
        scores = cli.read_json(path, "scores", "a score matrix {row: {column: value}}, "
                                               "such as DIR/affinity.json")
        with cli.refusing("scores", path):
            grouping.score_tasks(scores)
        with cli.refusing("costs", _COSTS.value, ValueError, TypeError, OSError):
            grouping.parse_costs(_COSTS.value)
        result = grouping.select_groups_from_file(
            path, splits=_SPLITS.value, objective=_OBJECTIVE.value,
            costs=_COSTS.value, budget=_BUDGET.value, time_limit=_TIME_LIMIT.value)
    print(grouping.format_selection(result["selection"], _OBJECTIVE.value))
    print("wrote:", result["path"])


def run():
    """Console-script entry point."""
    cli.run_command(main)
