"""Quickstart: the planted-groups benchmark, measuring transference while training.

Six tasks in three planted groups share an 8-unit MLP bottleneck; the probe
measures exact transference (order 1) every 5 steps with the momentum
lookahead, and the run ends by selecting 3 groups from the measured affinities
(TAG objective), printed beside the planted groups.
About a minute on a 2-core laptop CPU:

    python -m launch.train --config=configs/quickstart.py --workdir=/tmp/quickstart

The argument picks the update rule (``mtl`` by default, or any rule's config name:
``uw``, ``pcgrad``, ``cagrad``, ``nash_mtl``, ...; ``itmtl`` chooses between all tasks and
PCGrad) and/or ``runlocal``: ``configs/quickstart.py:uw,runlocal``. Several rules in one
table, offline:

    python -m launch.compare --seeds=2 --workdir=/tmp/rules --baseline=quickstart:mtl,runlocal \
        --configs=configs/quickstart.py:mtl,runlocal,configs/quickstart.py:cagrad,runlocal
"""

from configs.variants import parse_arg
from tf_mtl.experiments.experiment import base_config
from tf_mtl.updates.build import NAMES

VARIANTS = {"mtl" if name == "equal" else name: {"name": name}
            for name in NAMES if name != "itmtl"}
VARIANTS["itmtl"] = {"name": "itmtl", "candidates": "all,pcgrad"}


def get_config(arg=None):
    """``arg="runlocal"`` (``--config=configs/quickstart.py:runlocal``) shrinks it to a smoke run."""
    variant, runlocal = parse_arg(arg, "mtl")
    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant; known: {sorted(VARIANTS)}. Received: {variant!r}")
    c = base_config()
    c.runlocal = runlocal
    c.rule.update(VARIANTS[variant])
    c.epochs = 8
    c.data.update(num_tasks=6, num_groups=3, num_examples=4096, input_dim=24,
                  group_rank=4, batch_size=64, seed=0)
    c.model.encoder_kwargs = {"units": [64, 8]}
    c.optimizer.update(name="sgd", learning_rate=0.02, momentum=0.9)
    c.transference.update(enabled=True, order=1, every=5, method="exact")
    c.grouping.update(enabled=True, splits=3, objective="tag")
    if c.runlocal:
        c.epochs, c.steps_per_epoch = 1, 4
    return c
