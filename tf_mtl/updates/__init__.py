"""Update rules: how the shared gradient is formed from the per-task losses.

Loss weightings (weights from the losses or the rule's state): ``EqualWeights``,
``UncertaintyWeights``, ``CoV``, ``DWA``, ``GradNorm``, ``RLW``, ``GLS``, ``FAMO``,
``STCH``. Gradient rules (weights from the per-task Gram matrix and state):
``PCGrad``, ``MGDA``, ``CAGrad``, ``IMTL``, ``NashMTL``, ``AlignedMTL``, ``UPGrad``,
``DualProj``, ``ConFIG``, ``GradVac``, ``FairGrad``, ``ExcessMTL``. Direction rules
(a direction from state or masks): ``DBMTL``, ``MoCo``, ``GradDrop``. ``ITMTL``
chooses among candidates of all kinds each step.
"""

from tf_mtl.updates.aligned_mtl import AlignedMTL
from tf_mtl.updates.base import StepGradients, Update
from tf_mtl.updates.build import build_update
from tf_mtl.updates.cagrad import CAGrad
from tf_mtl.updates.config_rule import ConFIG
from tf_mtl.updates.cov import CoV
from tf_mtl.updates.dbmtl import DBMTL
from tf_mtl.updates.direction import DirectionRule
from tf_mtl.updates.dual_cone import DualProj, UPGrad
from tf_mtl.updates.dwa import DWA
from tf_mtl.updates.equal_weights import EqualWeights
from tf_mtl.updates.excess_mtl import ExcessMTL
from tf_mtl.updates.fairgrad import FairGrad
from tf_mtl.updates.famo import FAMO
from tf_mtl.updates.gls import GLS
from tf_mtl.updates.graddrop import GradDrop
from tf_mtl.updates.gradnorm import GradNorm
from tf_mtl.updates.gradvac import GradVac
from tf_mtl.updates.imtl import IMTL
from tf_mtl.updates.itmtl import ITMTL
from tf_mtl.updates.mgda import MGDA, min_norm_weights
from tf_mtl.updates.moco import MoCo
from tf_mtl.updates.nash_mtl import NashMTL
from tf_mtl.updates.pcgrad import PCGrad, pcgrad_combination
from tf_mtl.updates.rlw import RLW
from tf_mtl.updates.stch import STCH
from tf_mtl.updates.uncertainty import UncertaintyWeights
from tf_mtl.updates.weighted import (GradientRule, LossWeighting, weighted_shared_gradient)

__all__ = ["AlignedMTL", "CAGrad", "ConFIG", "CoV", "DBMTL", "DWA", "DirectionRule", "DualProj",
           "EqualWeights", "ExcessMTL", "FAMO", "FairGrad", "GLS", "GradDrop", "GradNorm",
           "GradVac", "GradientRule", "IMTL", "ITMTL", "LossWeighting", "MGDA", "MoCo",
           "NashMTL", "PCGrad", "RLW", "STCH", "StepGradients", "UPGrad", "UncertaintyWeights",
           "Update", "build_update", "min_norm_weights", "pcgrad_combination",
           "weighted_shared_gradient"]
