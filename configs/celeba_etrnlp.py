"""CelebA, 8 attribute groups (``003`` Table 4, as ``004``), with ETR-NLP (``004``).

``ETRNLPNet``: a learnable stem, then four stages (64, 128, 256, 512 channels)
of non-learnable primitives (average pool, random fixed convolution, shift,
additive noise: one of Table S1's best rows) feeding shared and per-group 1×1
branches, half of the channels shared; otherwise ``celeba_mr``'s setup (Adam
1e-4, batch 256, 64x64; precision, recall and F-score; the weights of the epoch of
highest validation F-score over all attributes: ``004`` does not say how it selects and
compares with ``003``'s Table 1, which selects so).

    python -m launch.train --config=configs/celeba_etrnlp.py --workdir=runs/celeba_etrnlp
"""

from configs.celeba_mr import routed_config


def get_config(arg=None):
    return routed_config(arg, "etrnlp", {
        "widths": [64, 128, 256, 512], "shared_ratio": 0.5,
        "primitives": ["avg_pool", "conv", "shift", "noise"], "noise_level": 0.1, "seed": 0})
