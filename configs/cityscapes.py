r"""Cityscapes with SegNet-MTAN, one variant per row of ``001`` App. Table 4.

7-class segmentation and inverse depth (disparity) on MTAN's 128x256 release, batch 8
(CAGrad's SegNet-MTAN setting, which MTAN's repository lacks), otherwise ``configs/nyuv2.py``'s
setup (``001`` D.5): Adam 1e-4 (epsilon 1e-8), halved every 100 epochs, 100 epochs, results =
the mean of the last 10 epochs' validation metrics, MTAN's metric code at ``001``'s commit
(``mtan_legacy`` segmentation, per-batch depth errors; ``001`` does not say which Cityscapes
metric code it ran: this is MTAN's own). Table 4 averages 6 runs: ``--seeds=6``.

Variants: ``uw_mtan`` (UW-MTAN, uncertainty weighting in MTAN's regression form, its
log-variances starting at MTAN's -0.5),
``uw_pcgrad`` and ``uw_it_pcgrad_fo`` (UW-IT-PCGrad‡: IT-MTL between the MTL and PCGrad
gradients, both under UW, first-order transference).

    python -m launch.compare --seeds=6 --workdir=runs/cityscapes --baseline=cityscapes:uw_mtan \
        --configs=configs/cityscapes.py:uw_mtan,configs/cityscapes.py:uw_pcgrad,\
configs/cityscapes.py:uw_it_pcgrad_fo --set=data.root=/path/to/cityscapes2
    python -m launch.train --config=configs/cityscapes.py:uw_pcgrad,runlocal --workdir=/tmp/cs

``:<variant>,runlocal``: two steps on a generated 32x64 release, as ``configs/nyuv2.py``.
"""

from configs.nyuv2 import choose, dense_config

# MTAN's uncertainty weighting: the regression form, log-variances starting at -0.5.
UW = {"form": "regression", "initial_log_variance": -0.5}
VARIANTS = {
    "uw_mtan": {"name": "uw", **UW},
    "uw_pcgrad": {"name": "pcgrad", "weighting": "uw", **UW},
    "uw_it_pcgrad_fo": {"name": "itmtl", "candidates": "all,pcgrad", "weighting": "uw", **UW,
                        "lookahead": "first_order"},
}


def get_config(arg=None):
    rule, runlocal_run = choose(VARIANTS, arg, "uw_mtan")
    c = dense_config("cityscapes", runlocal_run, {"batch_size": 8, "num_classes": 7})
    if runlocal_run:
        c.data.batch_size = 2
    c.metrics = {"segmentation": ["miou", "pixel_accuracy"], "depth": ["abs_err", "rel_err"]}
    c.metric_conventions = {"segmentation": "mtan_legacy", "depth": "batch_mean"}
    c.report = "mean_last_10"
    c.rule.update(rule)
    return c
