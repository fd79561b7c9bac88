"""Routing: which parameters each task uses (``003``, ``004``, Strezoski et al. 2019).

Layers that give every task its own path through a shared encoder, and the
batched per-task forward that runs all paths in one call:

- ``MaximumRoaming`` (``003`` Def. 1): binary task masks over a layer's
  channels that roam until every task has visited every channel.
- ``TaskRouting``: the same masks, fixed.
- ``ETRNLP`` (``004``): explicit task routing with non-learnable primitives.
- ``TaskBatchNormalization``: per-task batch statistics on a per-task forward.
- ``task_paths``: the per-task forward (``forward``), ``RoutingLayer``, and
  ``after_step`` (the train step's hook that moves roaming masks).
"""

from tf_mtl.routing import task_paths
from tf_mtl.routing.etr_nlp import ETRNLP, PRIMITIVES
from tf_mtl.routing.factory import MaskFactory
from tf_mtl.routing.masks import TaskMasks, TaskRouting, initial_masks
from tf_mtl.routing.maximum_roaming import MaximumRoaming, cosine_scores
from tf_mtl.routing.task_norm import TaskBatchNormalization
from tf_mtl.routing.task_paths import RoutingLayer, routing_layers

__all__ = ["ETRNLP", "MaskFactory", "MaximumRoaming", "PRIMITIVES", "RoutingLayer",
           "TaskBatchNormalization", "TaskMasks", "TaskRouting", "cosine_scores",
           "initial_masks", "routing_layers", "task_paths"]
