r"""NYUv2 with SegNet-MTAN, one variant per row of ``001`` Table 1 (and the issue's extra rules).

``001`` §5.2 / App. D.5: MTAN's repository (Liu et al. 2019, commit b6504093) with its
default hyperparameters — Adam lr 1e-4 (PyTorch's epsilon 1e-8, no weight decay), the
learning rate halved every 100 epochs, batch 2, 13-class segmentation, depth and normals on
MTAN's 288x384 release, no augmentation — "with the exception of reducing the number of
steps to 100". Read here as **100 epochs** (MTAN's default is 200 epochs; 100 *steps* of
batch 2 would not see the training set once): so the halving at epoch 100 never takes
effect, as in ``001``'s runs. Results as MTAN reports them (``report="mean_last_10"``: the
mean of the last 10 epochs' validation metrics; the release's val/ split is its test split),
with the metrics MTAN's code had at that commit (``metric_conventions``: ``mtan_legacy``
per-image mIoU / pixel accuracy, per-batch depth and normal errors, evaluation batch 2) and
each task's validity mask from its own target. Table 1 averages 4 runs: ``--seeds=4``.

Variants (``:<variant>``): Table 1's rows ``mtan`` (MTAN, equal weights: MTAN's default),
``pcgrad``, ``it_pcgrad`` (IT-MTL choosing between the MTL and the PCGrad gradient, exact
Adam lookahead) and ``it_pcgrad_fo`` (IT-PCGrad‡, first-order transference). Cross-Stitch's
row is copied from MTAN's paper in ``001`` and not run. Also, not rows of Table 1: ``uw``
(MTAN's uncertainty weighting: the regression form for every task, the log-variances
starting at MTAN's -0.5), ``dwa`` (T = 2, averaging each epoch's losses as MTAN does: 398
steps, NYUv2's 795 training images at batch 2; ``:dwa,runlocal`` uses its 2 steps),
``mgda`` (MGDA on the shared parameters' gradients), ``gradnorm`` (alpha 1.5, gradient norms
over all shared parameters) and ``itmtl`` (IT-MTL over each task's gradient and the combined
one).

SegNet-MTAN has no representation that every head reads (one output per task, and the
attention paths' shared convs run inside each task's path), so MGDA-UB's bound (Sener and
Koltun: the losses depend on the shared parameters only through one ``Z``) has no ``Z`` here;
``mgda`` is MGDA on the shared parameters, as CAGrad's, Nash-MTL's and LibMTL's SegNet-MTAN
runs take it (``mgda_ub`` is refused by the config checks, naming this). Nor has it one "last
shared layer" (the last level has SegNet's decoder conv and the attention path's shared conv
side by side), so GradNorm measures its norms on every shared parameter (``on="all_shared"``,
LibMTL's choice). Neither is a row of ``001`` Table 1.

    python -m launch.compare --seeds=4 --workdir=runs/nyuv2 --baseline=nyuv2:mtan \
        --configs=configs/nyuv2.py:mtan,configs/nyuv2.py:pcgrad,configs/nyuv2.py:it_pcgrad,\
configs/nyuv2.py:it_pcgrad_fo --set=data.root=/path/to/nyuv2
    python -m launch.train --config=configs/nyuv2.py:it_pcgrad --workdir=runs/it_pcgrad \
        --config.data.root=/path/to/nyuv2
    python -m launch.train --config=configs/nyuv2.py:pcgrad,runlocal --workdir=/tmp/nyuv2

``data.root`` is MTAN's release (``tf_mtl.data.nyuv2``; a missing folder gets the layout and
the download link). ``:<variant>,runlocal`` writes a small generated release (32x64) to a
temporary folder and trains two steps of a narrow SegNet-MTAN on it, offline.
"""

from configs.variants import parse_arg
from tf_mtl.experiments.experiment import base_config

VARIANTS = {
    "mtan": {"name": "equal"},
    "pcgrad": {"name": "pcgrad"},
    "it_pcgrad": {"name": "itmtl", "candidates": "all,pcgrad"},
    "it_pcgrad_fo": {"name": "itmtl", "candidates": "all,pcgrad", "lookahead": "first_order"},
    "uw": {"name": "uw", "form": "regression", "initial_log_variance": -0.5},
    "dwa": {"name": "dwa", "temperature": 2.0, "period": 398},
    "mgda": {"name": "mgda", "upper_bound": False},
    "gradnorm": {"name": "gradnorm", "alpha": 1.5, "on": "all_shared"},
    "itmtl": {"name": "itmtl", "candidates": "segmentation,depth,normal,all"},
}

# 001 Table 1's columns, as the dense metrics name them (tf_mtl.experiments.dense_setup).
NYUV2_METRICS = {"segmentation": ["miou", "pixel_accuracy"], "depth": ["abs_err", "rel_err"],
                 "normal": ["mean", "median", "within_11.25", "within_22.5", "within_30"]}
# Runlocal: the generated release's size and a narrow two-level network.
GENERATED = {"n_train": 4, "n_val": 2, "height": 32, "width": 64}
NARROW_FILTERS = [4, 4]  # Two levels trace fast (SegNetMTAN: equal widths below 5 levels).


def choose(variants, arg, default):
    """``(variant's settings, runlocal)`` of ``arg`` (``configs.variants.parse_arg``); an unknown
    variant is refused by name."""
    variant, runlocal_run = parse_arg(arg, default)
    if variant not in variants:
        raise ValueError(f"Unknown variant; known: {sorted(variants)}. Received: {variant!r}")
    return variants[variant], runlocal_run


def dense_config(dataset, runlocal_run, data, encoder="segnet_mtan", epochs=100):
    """MTAN's training setup on ``dataset`` (``"nyuv2"`` / ``"cityscapes"``) with ``data``'s
    loader fields; ``runlocal_run`` shrinks it to two steps on a generated release."""
    c = base_config()
    c.runlocal = runlocal_run
    c.epochs = epochs
    c.data = {"name": dataset, "root": f"data/{dataset}", "generate": {}, **data}
    c.model.encoder, c.model.encoder_kwargs = encoder, {}
    c.optimizer.update(name="adam", learning_rate=1e-4, halve_every_epochs=100, epsilon=1e-8)
    if runlocal_run:
        c.epochs, c.steps_per_epoch, c.data.batch_size = 1, 2, 2
        c.data.root, c.data.generate = "", dict(GENERATED)
        c.model.encoder_kwargs = {"filters": list(NARROW_FILTERS)}
        c.tensorboard = False
    return c


def get_config(arg=None):
    rule, runlocal_run = choose(VARIANTS, arg, "mtan")
    c = dense_config("nyuv2", runlocal_run, {"batch_size": 2, "mask": "own"})
    c.metrics = {t: list(m) for t, m in NYUV2_METRICS.items()}
    c.metric_conventions = {"segmentation": "mtan_legacy", "depth": "batch_mean",
                            "normal": "batch_mean"}
    c.report = "mean_last_10"
    c.rule.update(rule)
    if runlocal_run and c.rule.name == "dwa":
        c.rule.period = c.steps_per_epoch
    return c
