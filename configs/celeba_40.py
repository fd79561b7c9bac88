"""CelebA, all 40 attributes: first-order transference and certified groups.

TAG's CelebA setting (``configs/celeba_tag.py``: ResNet-lite, SGD momentum 0.9,
lr 5e-4 halved every 15 epochs, batch 256, 64x64 images, early stopping,
affinities divided by the learning rate) on all 40 attributes instead of 9.
Exact order-1 transference needs one lookahead per task, 40 per probe step; the
first-order form (``method="first_order"``: ``-<grad L_j, Delta_i> / L_j``,
the lookahead's direction against each task's gradient, in chunks) costs the
per-task gradients the step computes anyway plus the chunked lookahead
directions. Groups are chosen at the end from the measured affinities: 40 tasks
is past what enumerating subsets can do, so ``select_groups`` uses column
generation with a certified bound (``tf_mtl.grouping.scale_selection``; 4
splits, TAG objective, ``config.grouping.time_limit`` seconds, 60 by default;
``groups.json`` holds ``exact``, ``bound`` and ``gap``). ``affinity.json`` has 41
rows for the 40 attributes: an order-1 probe also measures the lookahead of all
tasks together (source ``"5_o_Clock_Shadow|...|Young"``, IT-MTL's row,
``tf_mtl.transference.source_names``); ``select_groups`` reads only the
single-task rows (names without ``|``).

    python -m launch.train --config=configs/celeba_40.py --workdir=runs/celeba_40
    python -m launch.train --config=configs/celeba_40.py:runlocal --workdir=/tmp/smoke
    python -m launch.group --scores=runs/celeba_40/affinity.json --objective=tag --splits=4 --time_limit=60
"""

from configs.variants import runlocal
from tf_mtl.data import CELEBA_ATTRIBUTES
from tf_mtl.experiments.experiment import base_config


def get_config(arg=None):
    c = base_config()
    c.runlocal = runlocal(arg)
    c.epochs, c.early_stopping_patience = 100, 10
    c.data = {"name": "celeba", "tasks": list(CELEBA_ATTRIBUTES), "image_size": 64,
              "batch_size": 256}
    c.model.encoder, c.model.encoder_kwargs = "resnet_lite", {}
    c.metrics = {"all": ["accuracy"]}
    c.optimizer.update(name="sgd", learning_rate=5e-4, momentum=0.9, halve_every_epochs=15)
    c.transference.update(enabled=True, order=1, every=10, method="first_order",
                          scale_by_lr=True)
    c.grouping.update(enabled=True, splits=4, objective="tag")
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.data.batch_size, c.transference.every = 1, 2, 4, 1
    return c
