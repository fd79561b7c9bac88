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

Training as Standley's ``train_taskonomy.py``: SGD lr 0.1 (their code's default and README's
command; ``002`` §4 writes 0.2), momentum 0.9, batch 96, weight decay 1e-4 as torch applies it
(added to the gradient, so it passes through the momentum: at momentum 0.9 it shrinks the weights
by ``lr * 1e-4 / (1 - 0.9)`` per step once the momentum has built up; Keras's SGD decays
decoupled, ``lr * weight_decay`` per step, so the config's ``weight_decay`` is 1e-3: the same
shrinkage in the steady state, not through the first ~20 steps), and their schedule
(``config.lr_schedule``, ``tf_mtl.experiments.LossPlateauHalving``): after every batch from
the third epoch on, a paired t-test compares the first and last 3/8 of the last 500,000
samples' batch losses (sorted, 5% cut at each end); when the later losses are not lower
(t < 0 or p > 0.99) the rate halves (``0.1 * 0.5**ticks``) and the window doubles, up to
2,000,000 samples; training ends after the epoch in which the rate fell below 3e-5 (12
halvings), or after 100 epochs. An epoch is a fifth of a pass when a pass has more than 10,000
batches (``config.epoch_split``; ``002``: "each epoch of 20% of our data"), else a pass.
The model kept is the best epoch's by total validation loss (``002`` saves the lowest): early
stopping on ``val_loss`` with a patience of ``epochs``, which
restores the best weights and never stops before the schedule does (the reference has no early
stopping). The schedule's state is saved with each epoch's checkpoint: a killed run resumes
with the same halvings. ESA (``002`` §3.3.1: "after a pass through just 20% of our data") is
one epoch (``grouping_runs.esa_fraction = 0.01`` of 100) of a fifth of a pass whatever the
split's size (``grouping_runs.esa_epoch_split``: TAG's 107 buildings may hold 10,000 batches or
fewer per pass, where a training epoch is a whole pass).

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
trains narrow networks one epoch of two steps, offline, in minutes (the schedule runs and,
before its third epoch, never halves).
"""

from configs.variants import runlocal
from tf_mtl.experiments.experiment import base_config
from tf_mtl.grouping import pair_runs

TASKS = "sdnke"
# Standley's train_taskonomy.py arguments (-ltw0, -mltw, -mlr); from its third epoch (index 2).
LOSS_PLATEAU = {"name": "loss_plateau", "initial_window": 500_000, "max_window": 2_000_000,
                "min_learning_rate": 3e-5, "first_epoch": 2, "factor": 0.5}
GENERATED = {"n_train": 4, "n_val": 2, "height": 32, "width": 32}
NARROW = [4, 4, 8, 8] + [8] * 9   # Runlocal: 13 channel counts (width 0.5 halves each).


def get_config(arg=None):
    """``arg="runlocal"``: generated buildings, narrow networks, two steps."""
    c = base_config()
    c.runlocal = runlocal(arg)
    # 100 epochs at most (their --epochs); patience = epochs: best weights kept, no early stop.
    c.epochs, c.early_stopping_patience, c.verbose = 100, 100, 2
    c.lr_schedule = dict(LOSS_PLATEAU)
    c.epoch_split = {"over_batches": 10_000, "parts": 5}
    c.data = {"name": "taskonomy", "root": "data/taskonomy", "tasks": TASKS,
              "split_source": "tag", "image_size": 256, "batch_size": 96, "rotate_loss": True,
              "generate": {}}
    c.model.encoder, c.model.encoder_kwargs = "taskonomy_xception", {"size": 100}
    # torch's coupled 1e-4 at momentum 0.9 = decoupled 1e-4 / (1 - 0.9) in the steady state.
    c.optimizer.update(name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-3)
    c.transference.update(order=1, every=10, method="exact", scale_by_lr=True, plot=False)
    c.grouping_runs = pair_runs.defaults()
    c.grouping_runs.update(single_width=0.5, group_width=1.0, esa_fraction=0.01,
                           esa_epoch_split={"over_batches": 0, "parts": 5},
                           metric="total_test_loss")   # ESA: 1 epoch of 100, 20% of the data.
    c.tensorboard = False
    if c.runlocal:
        c.epochs, c.steps_per_epoch, c.early_stopping_patience, c.verbose = 1, 2, 0, 0
        c.data.root, c.data.generate = "", dict(GENERATED)
        c.data.image_size, c.data.batch_size = GENERATED["height"], 2
        c.model.encoder_kwargs = {"size": list(NARROW)}
        c.transference.every = 1
        c.grouping_runs.random_draws = 1
    return c
