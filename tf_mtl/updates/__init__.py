"""Update rules: how the shared gradient is formed from the per-task losses."""

from tf_mtl.updates.base import StepGradients, Update
from tf_mtl.updates.equal_weights import EqualWeights

__all__ = ["EqualWeights", "StepGradients", "Update"]
