r"""MultiMNIST update rules of ``001`` Table 2: MTL, PCGrad, IT-MTL, MGDA-UB, UW-MTL, UW-PCGrad,
IT-UW-MTL, IT-UW-PCGrad and IT-UW-PCGrad‡ (first-order), on the App. D.4 setting of
``configs/multimnist_mtl.py`` (LeNet, momentum 0.9, lr halved every 30 epochs, weights ½/½).

The variant is the config argument (default ``itmtl``: IT-MTL choosing among the left
image, right image and combined gradients); every field stays a flag:

    python -m launch.train --config=configs/multimnist_itmtl.py --workdir=runs/itmtl
    python -m launch.train --config=configs/multimnist_itmtl.py:it_uw_pcgrad_fo --workdir=runs/fo
    # the same from flags alone:
    python -m launch.train --config=configs/multimnist_itmtl.py --workdir=runs/fo \
        --config.rule.candidates=all,pcgrad --config.rule.weighting=uw \
        --config.rule.lookahead=first_order
    # Lin et al.'s pickles as 001 used them: add
    #   --config.data.name=multi_mnist_pickle --config.data.path=/path/to/multi_mnist.pickle

``:<variant>,runlocal`` (or ``:runlocal``) shrinks it to a two-step smoke run.
"""

from configs.variants import variant_config

VARIANTS = {
    "mtl": {"name": "equal"},
    "pcgrad": {"name": "pcgrad"},
    "itmtl": {"name": "itmtl", "candidates": "left,right,all"},
    "mgda_ub": {"name": "mgda", "upper_bound": True},
    "uw_mtl": {"name": "uw"},
    "uw_pcgrad": {"name": "pcgrad", "weighting": "uw"},
    "it_uw_mtl": {"name": "itmtl", "candidates": "left,right,all", "weighting": "uw"},
    "it_uw_pcgrad": {"name": "itmtl", "candidates": "all,pcgrad", "weighting": "uw"},
    "it_uw_pcgrad_fo": {"name": "itmtl", "candidates": "all,pcgrad", "weighting": "uw",
                        "lookahead": "first_order"},
}


def get_config(arg=None):
    return variant_config(arg, VARIANTS, "itmtl", "configs.multimnist_mtl")
