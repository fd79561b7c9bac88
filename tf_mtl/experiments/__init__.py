"""Experiments: train from a config, over seeds, with results tables and kill-safe resume.

- ``experiment``: ``train(config, workdir)``, the builders configs use
  (``build_model``, ``build_dataset``, ``build_optimizer``) and ``base_config``.
- ``runs``: runs over seeds (``run``) and method comparisons (``compare``).
- ``results``: per-seed tables, mean ± spread, comparisons.
- ``checkpointing``: the epoch checkpoint a killed run resumes from.
- ``evaluation``: the test-split metrics each dataset reports.
- ``attribute_metrics``: CelebA's macro precision / recall / F-score.
"""

from tf_mtl.experiments import (attribute_metrics, checkpointing, evaluation, experiment,
                                results, runs)
from tf_mtl.experiments.attribute_metrics import AttributeScore
from tf_mtl.experiments.checkpointing import EpochCheckpoint
from tf_mtl.experiments.experiment import base_config, train

__all__ = ["AttributeScore", "EpochCheckpoint", "attribute_metrics", "base_config",
           "checkpointing", "evaluation", "experiment", "results", "runs", "train"]
