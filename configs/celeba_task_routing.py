"""CelebA, the 8 attribute groups of ``003`` Table 4, with Task Routing (Strezoski et al.
2019, a baseline of ``003`` and ``004``): fixed random masks after every shared
convolution of ResNet-18, sharing ratio p = 0.9 (Table 1's "TR (p = 0.9)", the
best fixed partitioning of Figure 2, left, and the released `train_TR.py`'s default);
otherwise ``celeba_mr``'s setup.

    python -m launch.train --config=configs/celeba_task_routing.py --workdir=runs/celeba_tr
"""

from configs.celeba_mr import routed_config


def get_config(arg=None):
    return routed_config(arg, "resnet18", {"routing": {
        "kind": "task_routing", "sharing_ratio": 0.9, "seed": 0}})
