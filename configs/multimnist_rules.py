r"""Every update rule on MultiMNIST / MultiFashion, one variant each, for ``launch.compare``.

The App. D.4 setting of ``configs/multimnist_mtl.py`` (LeNet, SGD momentum 0.9, lr halved
every 30 epochs, weights ½/½); the variant names the rule (``rule.name``) with its paper's
defaults, which stay flags (``--config.rule.cagrad.c=0.5``). One table over seeds with Δm
against plain MTL:

    python -m launch.compare --seeds=3 --workdir=runs/rules --baseline=multimnist_rules:mtl \
        --configs=configs/multimnist_rules.py:mtl,configs/multimnist_rules.py:cagrad,\
configs/multimnist_rules.py:nash_mtl,configs/multimnist_rules.py:it_cagrad
    # MultiFashion: add --set=data.source=fashion_mnist

``:<variant>,runlocal`` shrinks it to a two-step smoke run.
"""

from configs.variants import variant_config
from tf_mtl.updates.build import NAMES

VARIANTS = {"mtl" if name == "equal" else name: {"name": name}
            for name in NAMES if name != "itmtl"}
VARIANTS.update({
    "itmtl": {"name": "itmtl", "candidates": "left,right,all"},
    "it_cagrad": {"name": "itmtl", "candidates": "all,cagrad"},
    "it_upgrad": {"name": "itmtl", "candidates": "all,upgrad"},
    "it_nash_mtl": {"name": "itmtl", "candidates": "all,nash_mtl"},
})


def get_config(arg=None):
    return variant_config(arg, VARIANTS, "mtl", "configs.multimnist_mtl")
