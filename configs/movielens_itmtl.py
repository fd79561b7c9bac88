r"""MovieLens update rules of ``001`` Table 3: UW-MTL, UW-PCGrad, IT-UW-PCGrad and
IT-UW-PCGrad‡ (first-order), on the App. D.6 setting of ``configs/movielens_mtl.py``.

    python -m launch.train --config=configs/movielens_itmtl.py --workdir=runs/ml_it_uw_pcgrad
    python -m launch.train --config=configs/movielens_itmtl.py:uw_pcgrad --workdir=runs/ml_uw_pcgrad

Variants: ``uw_mtl``, ``uw_pcgrad``, ``it_uw_pcgrad`` (default), ``it_uw_pcgrad_fo``;
``:<variant>,runlocal`` for a smoke run. Every field stays a ``--config.rule.*`` flag.
"""

from configs.multimnist_itmtl import VARIANTS as _ALL
from configs.variants import variant_config

VARIANTS = {k: _ALL[k] for k in ("uw_mtl", "uw_pcgrad", "it_uw_pcgrad", "it_uw_pcgrad_fo")}


def get_config(arg=None):
    return variant_config(arg, VARIANTS, "it_uw_pcgrad", "configs.movielens_mtl")
