"""Experiments: train from a config, over seeds, with results tables and kill-safe resume.

- ``experiment``: ``train(config, workdir)``, the builders configs use
  (``build_model``, ``build_dataset``, ``build_optimizer``) and ``base_config``.
- ``components``: what a config can name (encoders, losses, metrics, optimizers,
  datasets) and how names become arguments.
- ``config_checks``: ``check_config``, a config refused before anything is built or written.
- ``runs``: runs over seeds (``run``) and method comparisons (``compare``).
- ``results``: per-seed tables, mean ± spread, comparisons.
- ``checkpointing``: the epoch checkpoint a killed run resumes from.
- ``loss_plateau``: ``002``'s learning rate, halved when a t-test shows no training progress.
- ``evaluation``: the test-split metrics each dataset reports.
- ``attribute_metrics``: CelebA's macro precision / recall / F-score.
"""

from tf_mtl.experiments import (attribute_metrics, checkpointing, components, config_checks,
                                evaluation, experiment, loss_plateau, results, runs)
from tf_mtl.experiments.attribute_metrics import AttributeScore
from tf_mtl.experiments.checkpointing import EpochCheckpoint
from tf_mtl.experiments.config_checks import check_config
from tf_mtl.experiments.experiment import base_config, train
from tf_mtl.experiments.loss_plateau import LossPlateauHalving

__all__ = ["AttributeScore", "EpochCheckpoint", "LossPlateauHalving", "attribute_metrics",
           "base_config", "check_config", "checkpointing", "components", "config_checks",
           "evaluation", "experiment", "loss_plateau", "results", "runs", "train"]
