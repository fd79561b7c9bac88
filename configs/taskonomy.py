r"""Taskonomy task grouping: ``002``'s setting as ``001`` §5.1.2 / D.2 ran it (Fig. 4, Table 7).

Five tasks (``tf_mtl.data.taskonomy``): s (semantic segmentation), d (depth), n (surface
normals), k (2D keypoints), e (2D edges), 256x256, on TAG's split (107 train / 18 val / 17 test
buildings of the medium Taskonomy release, ``001`` D.2; ``--config.data.split_source=standley``
reads ``002``'s 482 / 52 buildings instead). The network is Standley's ``xception_taskonomy_new``
(``tf_mtl.dense.taskonomy_net``): one full-size encoder per group of tasks, one decoder per task,
the gradient into the shared part scaled by ``1/sqrt(tasks)``; single-task networks are half
size (``grouping_runs.single_width = 0.5``: a single costs 0.5 in the selection, ``002``).
Losses per task (``tf_mtl.dense.taskonomy_losses``), summed; ``rotate_loss`` (TAG's default and
Standley's README command) for depth and normals. The served metric is ``002``'s total test
loss (the sum over tasks of each task's test loss).

Training as Standley's ``train_taskonomy.py`` where the runner can: SGD lr 0.1, momentum 0.9,
weight decay 1e-4, batch 96 (their README's command), the best epoch by total validation loss
(early stopping on ``val_loss``). Deviation: their learning rate halves whenever a paired t-test
on the training-loss history shows no progress and training stops once it is below 3e-5; here
the rate is constant and training stops when the validation loss has not improved for 2 epochs
(``002``: "typically 4-8 passes", ``epochs = 8``).

Transference as TAG measured it on Taskonomy: every 10th batch (``transference.every = 10``),
on the encoder's parameters only (the shared part: the probe's default), divided by the learning
rate (``scale_by_lr``). TAG's lookahead read a momentum buffer that was never there, so its
lookahead step was plain SGD with weight decay; the library's lookahead takes the optimizer's
real momentum step (no option yet to drop it).

    python -m launch.pairs --config=configs/taskonomy.py --workdir=runs/taskonomy_pairs \
        --config.data.root=/path/to/taskonomy
    python -m launch.compare_groupings --config=configs/taskonomy.py --splits=2,3,4 \
        --methods=tag,tag_first_order,hoa,esa,random --workdir=runs/taskonomy \
        --config.data.root=/path/to/taskonomy
    python -m launch.compare_groupings --config=configs/taskonomy.py:runlocal --splits=2 \
        --methods=tag,hoa,random --workdir=/tmp/taskonomy

``:runlocal`` writes small generated buildings (32x32; ``tf_mtl.data.taskonomy_files``) and
trains narrow networks one epoch of two steps, offline, in minutes.
"""

from configs.variants import runlocal
from tf_mtl.experiments.experiment import base_config
from tf_mtl.grouping import pair_runs

TASKS = "sdnke"
GENERATED = {"n_train": 4, "n_val": 2, "height": 32, "width": 32}
NARROW = [4, 4, 8, 8] + [8] * 9   # Runlocal: 13 channel counts (width 0.5 halves each).


def get_config(arg=None):
    """``arg="runlocal"``: generated buildings, narrow networks, two steps."""
    c = base_config()
    c.runlocal = runlocal(arg)
    c.epochs, c.early_stopping_patience, c.verbose = 8, 2, 2
    c.data = {"name": "taskonomy", "root": "data/taskonomy", "tasks": TASKS,
              "split_source": "tag", "image_size": 256, "batch_size": 96, "rotate_loss": True,
              "generate": {}}
    c.model.encoder, c.model.encoder_kwargs = "taskonomy_xception", {"size": 100}
    c.optimizer.update(name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4)
    c.transference.update(order=1, every=10, method="exact", scale_by_lr=True, plot=False)
    c.grouping_runs = pair_runs.defaults()
    c.grouping_runs.update(single_width=0.5, group_width=1.0, esa_fraction=0.2,
                           metric="total_test_loss")
    c.tensorboard = False
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.early_stopping_patience, c.verbose = 1, 2, 0, 0
        c.data.root, c.data.generate = "", dict(GENERATED)
        c.data.image_size, c.data.batch_size = GENERATED["height"], 2
        c.model.encoder_kwargs = {"size": list(NARROW)}
        c.transference.every = 1
        c.grouping_runs.random_draws = 1
    return c
