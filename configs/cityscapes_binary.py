r"""Cityscapes as ``003``'s 8 tasks (7 binary class tasks and inverse depth) on a plain SegNet.

``configs/nyuv2_binary.py``'s setup (``003`` §5 and appendix) on MTAN's 128x256 release with
7 classes, batch 8, 500 epochs, each task at its best validation epoch (validated every 5
epochs), 3 seeds. Variants (``003`` Table 2): ``mtl``, ``gradnorm`` (alpha 1.5), ``mgda_ub``,
``tr`` (p = 0.6), ``mr`` (p = 0.6, plan updated every epoch, completion 100%) and ``stl_<task>``. What is not expressed is listed in
``configs/nyuv2_binary.py``.

    python -m launch.compare --seeds=3 --workdir=runs/cs_binary --baseline=cityscapes_binary:mtl \
        --configs=configs/cityscapes_binary.py:mtl,configs/cityscapes_binary.py:mr,\
configs/cityscapes_binary.py:tr --set=data.root=/path/to/cityscapes2
    python -m launch.train --config=configs/cityscapes_binary.py:mr,runlocal --workdir=/tmp/mr
"""

from configs.nyuv2_binary import binary_config


def get_config(arg=None):
    c = binary_config("cityscapes", arg, {"batch_size": 8, "num_classes": 7},
                      sharing_ratio=0.6, alpha=1.5)
    if c.runlocal:
        c.data.batch_size = 2
    return c
