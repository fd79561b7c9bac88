"""CelebA with the 8 attribute groups of Maximum Roaming (``003`` Table 4), plain MTL.

ResNet-18 encoder (up to global average pooling), one linear head per group,
binary cross-entropy averaged over each group's attributes, Adam 1e-4,
batch 256, 64x64 images; ``003``'s protocol: the all-attribute precision, recall and
F-score logged each epoch, the weights of the best validation F-score kept.

    python -m launch.train --config=configs/celeba_groups_mtl.py --workdir=runs/celeba_groups
"""

from configs.variants import runlocal
from tf_mtl.experiments.experiment import base_config

SCORES = ["binary_accuracy_logits", "precision_logits", "recall_logits", "fscore_logits"]


def get_config(arg=None):
    c = base_config()
    c.runlocal = runlocal(arg)
    c.epochs, c.early_stopping_patience = 100, 10
    c.data = {"name": "celeba", "tasks": "mr_groups", "image_size": 64, "batch_size": 256}
    c.model.encoder, c.model.encoder_kwargs = "resnet18", {}
    c.metrics = {"all": list(SCORES)}
    # 003 reports the epoch of highest validation F-score over all attributes.
    c.early_stopping_monitor, c.early_stopping_mode = "val_all_attributes_fscore", "max"
    c.optimizer.update(name="adam", learning_rate=1e-4)
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.data.batch_size, c.data.image_size = 1, 2, 4, 32
    return c
