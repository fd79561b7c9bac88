r"""``000``'s protocol: interference and transfer in multi-domain learning.

CIFAR-100, MiniPlaces and Tiny-ImageNet (100 classes drawn from its 200) at 32x32;
ResNet-32 (GroupNorm, Mish) at widths 0.25x, 0.5x, 1x, 2x; every pairing of two
domains; uniform, uncertainty (log1p form) and CoV loss weighting; 3 trials:
36 single-domain and 108 multi-domain models. SGD (lr 0.1, momentum 0.9, weight
decay 1e-4, batch 128: 64 per domain in a multi-domain batch); single-domain
models 250 epochs with the learning rate x0.1 at 140 and 210, multi-domain 300
with x0.1 at 150 and 250 (``000`` S1). Weight decay is ``000``'s coupled form
(PyTorch's SGD): ``wd * w`` is added to every encoder and head weight's gradient
before momentum, through an L2 term ``wd/2 ||w||^2``
(``tf_mtl.interference.coupled_weight_decay``), not Keras's decoupled
``SGD(weight_decay=)``. Each multi-domain batch is an even split, 64 samples of
each domain, where ``000`` mixes the domains' samples at random (a batch holds
varying shares, 64 of each on average).

MiniPlaces and Tiny-ImageNet come as downloaded (see README, "Interference and
transfer"); say where:

    python -m launch.interference --config=configs/interference_mdl.py --workdir=runs/mdl \
        --config.domains.miniplaces.train_root=data/miniplaces/images \
        --config.domains.miniplaces.train_labels=data/miniplaces/train.txt \
        --config.domains.miniplaces.test_root=data/miniplaces/images \
        --config.domains.miniplaces.test_labels=data/miniplaces/val.txt \
        --config.domains.tiny_imagenet.train_root=data/tiny-imagenet-200/train \
        --config.domains.tiny_imagenet.test_root=data/tiny-imagenet-200/val/images \
        --config.domains.tiny_imagenet.test_labels=data/tiny-imagenet-200/val/val_annotations.txt

``:runlocal`` runs the whole protocol on three tiny synthetic domains (8x8
images, an MLP encoder of 32 units at widths 0.25x and 0.5x, 2 trials: 12
single-domain and 36 multi-domain models) in a few minutes on a laptop CPU:

    python -m launch.interference --config=configs/interference_mdl.py:runlocal --workdir=/tmp/mdl
"""

import ml_collections

from configs.variants import runlocal


def _image_folder(**kwargs):
    spec = {"kind": "image_folder", "num_classes": 100, "class_seed": 0, "train_root": "",
            "train_labels": "", "test_root": "", "test_labels": "", "train_per_class": 0,
            "image_size": 32}
    spec.update(kwargs)
    return spec


def _synthetic(seed, share):
    return {"kind": "synthetic", "seed": seed, "share": share, "num_classes": 4,
            "num_train": 128, "num_test": 64, "image_size": 8, "noise": 3.0, "shared_seed": 0}


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.runlocal = runlocal(arg)
    c.seed, c.trials, c.verbose = 0, 3, 2
    c.widths = [0.25, 0.5, 1.0, 2.0]
    c.weightings = ["uniform", "uw", "cov"]
    c.pairings = ""   # "" = every pair of domains; or "a|b,a|c".
    c.domains = {
        "cifar100": {"kind": "cifar100", "num_classes": 100, "data_dir": ""},
        # MiniPlaces: 500 fixed training images per class (000 §3.3); val (100 per class) as test.
        "miniplaces": _image_folder(train_per_class=500),
        "tiny_imagenet": _image_folder(),
    }
    # encoder "resnet_cifar" (depth, norm, activation) or "mlp" (units, scaled by the width).
    c.model = {"encoder": "resnet_cifar", "depth": 32, "norm": "group", "activation": "mish",
               "units": [64]}
    c.batch_size = 128            # Per step; a multi-domain batch splits it evenly (000: at random).
    c.eval_batch_size = 500
    c.shuffle_buffer = 50_000
    c.steps_per_epoch = 0         # 0 = the whole training set.
    c.jit_compile = False
    c.run_eagerly = False         # True: no tracing (quicker for a few steps of a tiny model).
    c.single = {"epochs": 250, "boundaries": [140, 210]}
    c.multi = {"epochs": 300, "boundaries": [150, 250]}
    # weight_decay: coupled, added to the gradient before momentum (000's PyTorch SGD).
    c.optimizer = {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "decay": 0.1}
    c.probe_per_class = 50
    c.figures = True              # False: tables only (no matplotlib needed).
    if c.runlocal:
        c.verbose = 0
        c.widths, c.trials = [0.25, 0.5], 2
        c.domains = {"a": _synthetic(1, 0.8), "b": _synthetic(2, 0.5), "c": _synthetic(3, 0.2)}
        # A width-scaled MLP run eagerly: a ResNet's per-model tracing would dominate
        # 48 models of a few steps each (ResNet-8 took ~1 min per model on a loaded 2-core CPU).
        c.model.encoder, c.model.units, c.run_eagerly = "mlp", [32], True
        c.batch_size, c.eval_batch_size, c.shuffle_buffer = 32, 64, 128
        c.single = {"epochs": 2, "boundaries": [1]}
        c.multi = {"epochs": 2, "boundaries": [1]}
        c.optimizer.learning_rate = 0.05
        c.probe_per_class = 8
    return c
