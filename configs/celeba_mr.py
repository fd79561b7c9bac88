"""CelebA, the 8 attribute groups of ``003`` Table 4, with Maximum Roaming (``003``).

ResNet-18 with a Maximum Roaming mask after every shared convolution (after its
BatchNorm, before the activation), one linear head per group, binary
cross-entropy averaged over a group's attributes, Adam 1e-4, batch 256, 64x64
images; sharing ratio p = 0.8, Δ = 0.1 epoch between plan updates (converted to
steps from the epoch's length), completion r = 100%. Scores: precision, recall
and F-score per group (macro over its attributes), as ``003`` reports them.

``003``'s protocol: results are "at highest validation F-score" (§5, App.), the mean
F-score over all 40 attributes, so early stopping and the restored best weights follow
``val_all_attributes_fscore`` (mode "max"). ``model.task_steps`` stays "summed" (one
Adam step on the summed group losses per batch), what the paper describes; the released
``train_MR.py``/``train_TR.py`` step once per group per batch instead:
``--config.model.task_steps=sequential`` (``tf_mtl.per_task_steps``).

    python -m launch.train --config=configs/celeba_mr.py --workdir=runs/celeba_mr
    python -m launch.train --config=configs/celeba_mr.py:runlocal --workdir=/tmp/mr  # mock data
"""

from configs.celeba_groups_mtl import get_config as groups_config


def routed_config(arg, encoder, encoder_kwargs):
    """The CelebA-groups setup of ``003`` with ``encoder`` and its arguments
    (``num_tasks`` is filled in from the data)."""
    c = groups_config(arg)
    c.model.encoder, c.model.encoder_kwargs = encoder, encoder_kwargs
    c.model.task_steps = "summed"  # "sequential": the released scripts' step per group.
    if c.runlocal:
        c.model.encoder_kwargs = {**encoder_kwargs, **({"width": 8} if encoder == "resnet18"
                                                       else {"widths": [8, 8]})}
    return c


def get_config(arg=None):
    return routed_config(arg, "resnet18", {"routing": {
        "kind": "maximum_roaming", "sharing_ratio": 0.8, "update_every_epochs": 0.1,
        "completion": 1.0, "selection": "random", "seed": 0}})
