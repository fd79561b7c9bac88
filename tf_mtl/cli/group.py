"""Select task groups from a score matrix.

    tf-mtl-group --scores=DIR/affinity.json --objective=tag --splits=3 \
        [--costs="a=0.5,b=0.5" | --costs=costs.json] [--budget=2.5] [--time_limit=60]
    python -m launch.group ...    # the same, from a checkout

Prints the groups, which group serves each task and the value; writes
``groups.json`` next to the scores file.
"""

from absl import app, flags

from tf_mtl import grouping

_SCORES = flags.DEFINE_string("scores", None, "JSON {row: {column: value}} (affinity.json).")
_OBJECTIVE = flags.DEFINE_enum("objective", "tag", list(grouping.OBJECTIVES), "Objective.")
_SPLITS = flags.DEFINE_integer("splits", None, "Most groups (the budget with unit costs).")
_BUDGET = flags.DEFINE_float("budget", None, "Total cost allowed (default: splits).")
_COSTS = flags.DEFINE_string("costs", None,
                             "Group costs: 'a|b=0.5,c=0.5' or a JSON file {\"a|b\": 0.5}.")
_TIME_LIMIT = flags.DEFINE_float("time_limit", None, "Seconds before an inexact answer.")
flags.mark_flag_as_required("scores")


def main(argv):
    del argv
    result = grouping.select_groups_from_file(
        _SCORES.value, splits=_SPLITS.value, objective=_OBJECTIVE.value,
        costs=_COSTS.value, budget=_BUDGET.value, time_limit=_TIME_LIMIT.value)
    print(grouping.format_selection(result["selection"], _OBJECTIVE.value))
    print("wrote:", result["path"])


def run():
    """Console-script entry point."""
    app.run(main)
