"""tf_mtl: multi-task learning research on Keras 3 / TensorFlow 2.

Measure which tasks help each other (transference / inter-task affinity)
while a Keras model trains, and act on it.
"""

from tf_mtl import data, distribute, encoders, lookahead, probes, transference, updates
from tf_mtl import callbacks, grouping, metrics, network_selection
from tf_mtl import attribute_metrics, partition, routing, step_schedule, task_norm, task_paths
from tf_mtl.model import FunctionLoss, MultiTaskModel
from tf_mtl import grouping_compare, grouping_runs, serving  # Task grouping end to end.
from tf_mtl import checkpointing, evaluation, results, runs  # Experiments: seeds, resuming.

__version__ = "0.1.0"

__all__ = [
    "FunctionLoss",
    "MultiTaskModel",
    "attribute_metrics",
    "callbacks",
    "checkpointing",
    "data",
    "distribute",
    "encoders",
    "evaluation",
    "grouping",
    "grouping_compare",
    "grouping_runs",
    "lookahead",
    "metrics",
    "network_selection",
    "partition",
    "probes",
    "results",
    "routing",
    "runs",
    "serving",
    "step_schedule",
    "task_norm",
    "task_paths",
    "transference",
    "updates",
]
