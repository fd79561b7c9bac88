"""CelebA TAG run (``001`` §5.1, App. D.1): 9 attributes, ResNet-lite, transference.

SGD momentum 0.9, lr 5e-4 halved every 15 epochs, batch 256, 64x64 images, up
to 100 epochs, early stopping after 10 epochs without validation improvement
(best weights restored), exact order-1 transference every 10 steps divided by
the learning rate (``scale_by_lr``, as the TAG code does: with the rate halved
every 15 epochs, unscaled values are dominated by the early epochs), groups
selected from the measured affinities at the end (3 splits, TAG objective).

    python -m launch.train --config=configs/celeba_tag.py --workdir=runs/celeba_tag
    python -m launch.train --config=configs/celeba_tag.py:runlocal --workdir=/tmp/smoke
"""

from configs.variants import runlocal
from tf_mtl.experiments.experiment import base_config


def get_config(arg=None):
    c = base_config()
    c.runlocal = runlocal(arg)
    c.epochs, c.early_stopping_patience = 100, 10
    c.data = {"name": "celeba", "tasks": "tag", "image_size": 64, "batch_size": 256}
    c.model.encoder, c.model.encoder_kwargs = "resnet_lite", {}
    c.metrics = {"all": ["accuracy"]}
    c.optimizer.update(name="sgd", learning_rate=5e-4, momentum=0.9, halve_every_epochs=15)
    c.transference.update(enabled=True, order=1, every=10, method="exact", scale_by_lr=True)
    c.grouping.update(enabled=True, splits=3, objective="tag")
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.data.batch_size, c.transference.every = 1, 2, 4, 1
    return c
