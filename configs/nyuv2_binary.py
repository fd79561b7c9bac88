r"""NYUv2 as ``003``'s 15 tasks (13 binary class tasks, depth, normals) on a plain SegNet.

``003`` §5 and its appendix (Maximum Roaming's code): SegNet split after its last conv, one
head per task (Conv3x3 64->64, Conv1x1 to 1 logit per class / 1 depth / 3 normal channels),
per-class binary cross-entropy over all pixels (an ignored pixel is a negative of every
class), depth L1 and normal cosine loss both masked by the **depth** target (``mask="depth"``),
Adam 1e-4 (epsilon 1e-8), no schedule, batch 2, 500 epochs, 3 seeds, results "the best
achieved on the validation split" as Maximum Roaming's ``saver.py`` keeps them: validated every
5 epochs, each task's metrics at its own best epoch (segmentation: the highest mIoU; depth: the
lowest relative error; normals: the lowest mean angle; ``report="best_per_task_every_5"``; the
release's val/ split is its test split). Test columns: ``segmentation`` = the 13 class tasks
scored together as ``003`` does (``binary`` convention: per-class IoU over images, then over
classes; pixel accuracy over pixels x classes), per-batch depth and normal errors.

Variants (Table 3's rows): ``mtl``, ``gradnorm`` (alpha 0.5: Table 3 does not give NYUv2's,
and the reference ``nyuv2/train_gradnorm.py`` defaults to 0.5), ``mgda_ub``, ``tr`` (Task
Routing, p = 0.8), ``mr`` (Maximum Roaming, p = 0.8, the plan updated every epoch as the
reference dense scripts' ``--update_interval 1``, completion r = 100%), and the single-task
baselines
``stl_<task>`` (one network per task: run each on its own; ``launch.compare`` puts configs of
the same tasks in one table).

Not expressed here: BatchNorm without running statistics (``003``'s code normalizes with
the batch's statistics at evaluation too; these SegNets keep Keras' moving averages, per task
under routing), and ``003``'s hyperparameter grid search.

    python -m launch.compare --seeds=3 --workdir=runs/nyuv2_binary --baseline=nyuv2_binary:mtl \
        --configs=configs/nyuv2_binary.py:mtl,configs/nyuv2_binary.py:mr,\
configs/nyuv2_binary.py:tr,configs/nyuv2_binary.py:gradnorm,configs/nyuv2_binary.py:mgda_ub \
        --set=data.root=/path/to/nyuv2
    python -m launch.train --config=configs/nyuv2_binary.py:stl_depth --workdir=runs/stl_depth \
        --config.data.root=/path/to/nyuv2
    python -m launch.train --config=configs/nyuv2_binary.py:mr,runlocal --workdir=/tmp/mr

``:<variant>,runlocal``: two steps on a generated 32x64 release (``configs/nyuv2.py``).
"""

from configs.nyuv2 import choose, dense_config
from tf_mtl.experiments.dense_setup import config_tasks


def binary_variants(tasks, sharing_ratio, alpha):
    """``003``'s methods as ``{variant: {"rule" | "routing" | "task_subset": ...}}``."""
    routing = {"sharing_ratio": sharing_ratio, "seed": 0}
    variants = {
        "mtl": {"rule": {"name": "equal"}},
        "gradnorm": {"rule": {"name": "gradnorm", "alpha": alpha}},
        "mgda_ub": {"rule": {"name": "mgda", "upper_bound": True}},
        "tr": {"routing": {"kind": "task_routing", **routing}},
        "mr": {"routing": {"kind": "maximum_roaming", "update_every_epochs": 1.0,
                           "completion": 1.0, "selection": "random", **routing}},
    }
    variants.update({f"stl_{t}": {"task_subset": (t,)} for t in tasks})
    return variants


def binary_config(dataset, arg, data, sharing_ratio, alpha, epochs=500):
    """``003``'s setup on ``dataset`` with one binary task per class (``data``: loader fields)."""
    data = {**data, "binary_classes": True, "mask": "depth"}
    tasks = config_tasks(dataset, data)
    variant, runlocal_run = choose(binary_variants(tasks, sharing_ratio, alpha), arg, "mtl")
    c = dense_config(dataset, runlocal_run, data, encoder="segnet", epochs=epochs)
    c.optimizer.halve_every_epochs = 0
    c.report = "best_per_task_every_5"
    c.metric_conventions = {"depth": "batch_mean", "normal": "batch_mean"}
    c.rule.update(variant.get("rule", {}))
    if "routing" in variant:
        c.model.encoder_kwargs = {**c.model.encoder_kwargs, "routing": variant["routing"]}
    c.task_subset = variant.get("task_subset", ())
    return c


def get_config(arg=None):
    return binary_config("nyuv2", arg, {"batch_size": 2}, sharing_ratio=0.8, alpha=0.5)
