"""Task grouping: which tasks to train together under an inference budget (``001`` §5.1, ``002``).

- ``select_groups`` (``selection``): groups from a score matrix under the TAG,
  HOA or transference objective; ``hoa_table`` / ``hoa_predict``.
- ``select_networks``, ``Network``, ``Selection`` (``network_selection``): the one
  selection engine over candidate networks with costs and a budget.
- ``scale_selection``: the same selection for many tasks (20-40+) by column
  generation with a certified bound; ``select_groups`` uses it past 12 tasks
  (imported there when needed: it loads SciPy).
- ``pair_runs``: the networks ``002``'s HOA and ESA train (pairs, subsets).
- ``serving``: each task served by its chosen network, scored on the test split.
- ``comparison``: ``001`` Fig. 4 / ``002`` Table 4 as one call.
- ``standley``: ``002``'s published Taskonomy losses (``read_standley``) and its curves recomputed.
"""

from tf_mtl.grouping import comparison, network_selection, pair_runs, selection, serving, standley
from tf_mtl.grouping.network_selection import Network, Selection, select_networks
from tf_mtl.grouping.selection import (OBJECTIVES, TAG_ALONE, format_selection, hoa_predict,
                                       hoa_table, parse_costs, read_selection, score_tasks,
                                       select_groups, select_groups_from_file)
from tf_mtl.grouping.serving import evaluate_grouping, load_groups
from tf_mtl.grouping.standley import read_standley

__all__ = ["Network", "OBJECTIVES", "Selection", "TAG_ALONE", "comparison", "evaluate_grouping",
           "format_selection", "hoa_predict", "hoa_table", "load_groups", "network_selection",
           "pair_runs", "parse_costs", "read_selection", "read_standley", "score_tasks",
           "select_groups", "select_groups_from_file", "select_networks", "selection", "serving",
           "standley"]
