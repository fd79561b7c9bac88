"""Update rules: how the shared gradient is formed from the per-task losses."""

from tf_mtl.updates.base import StepGradients, Update
from tf_mtl.updates.build import build_update
from tf_mtl.updates.cov import CoV
from tf_mtl.updates.dwa import DWA
from tf_mtl.updates.equal_weights import EqualWeights
from tf_mtl.updates.gradnorm import GradNorm
from tf_mtl.updates.itmtl import ITMTL
from tf_mtl.updates.mgda import MGDA, min_norm_weights
from tf_mtl.updates.pcgrad import PCGrad, pcgrad_combination
from tf_mtl.updates.uncertainty import UncertaintyWeights
from tf_mtl.updates.weighted import (GradientRule, LossWeighting, weighted_shared_gradient)

__all__ = ["CoV", "DWA", "EqualWeights", "GradNorm", "GradientRule", "ITMTL", "LossWeighting",
           "MGDA", "PCGrad", "StepGradients", "UncertaintyWeights", "Update", "build_update",
           "min_norm_weights", "pcgrad_combination", "weighted_shared_gradient"]
