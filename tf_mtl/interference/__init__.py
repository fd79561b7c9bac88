"""Interference and transfer (``000``, Zhang, Hayes & Kanan).

- ``metrics``: sample-wise interference / transfer / PerfGain and linear CKA
  task similarity (also re-exported by ``tf_mtl.metrics``).
- ``protocol``: ``000``'s multi-domain protocol (``run(config, workdir)``).
- ``report`` and ``figures``: its tables, t-tests and figures.
- ``stats``: the t-test and line fit they use.
"""

from tf_mtl.interference import figures, metrics, protocol, report, stats
from tf_mtl.interference.metrics import (UNDEFINED, correct_predictions,
                                         evaluate_interference_transfer, interference_transfer,
                                         linear_cka, representations, task_similarity)
from tf_mtl.interference.protocol import run

__all__ = ["UNDEFINED", "correct_predictions", "evaluate_interference_transfer", "figures",
           "interference_transfer", "linear_cka", "metrics", "protocol", "report",
           "representations", "run", "stats", "task_similarity"]
