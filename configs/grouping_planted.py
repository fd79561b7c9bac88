"""Task grouping end to end on the planted-groups benchmark (``001`` Fig. 4 / ``002`` Table 4).

Four regression tasks in two planted groups ({t0, t2} and {t1, t3}) share a
one-unit ``tanh`` bottleneck (``MLP([64, 1])``): a group's tasks are noisy
copies of one function, so one unit serves a group well, while a network mixing
the groups must squeeze two unrelated targets through it. The comparison measures transference (exact
and first order, one MTL run each), trains every single task and pair for HOA
(and, short, for ESA-HOA), every task subset briefly for ESA, selects 2-, 3- and
4-split groupings, trains and serves them, and
tabulates the served total test loss against the compute each method took,
with whether each selection recovered the planted groups:

    python -m launch.compare_groupings --config=configs/grouping_planted.py:runlocal \\
        --splits=2,3,4 --methods=tag,tag_first_order,hoa,esa,esa_hoa,random --workdir=/tmp/planted
    # The pair runs and their HOA selection (2 groups unless --splits) in /tmp/pairs/groups.json:
    python -m launch.pairs --config=configs/grouping_planted.py:runlocal --workdir=/tmp/pairs
    python -m launch.evaluate_grouping --config=configs/grouping_planted.py:runlocal \\
        --groups=/tmp/pairs/groups.json --workdir=/tmp/pairs/served
"""

from configs.variants import runlocal
from tf_mtl.experiments.experiment import base_config
from tf_mtl.grouping import pair_runs


def get_config(arg=None):
    """``arg="runlocal"``: fewer examples, epochs and seeds — minutes on a laptop CPU."""
    c = base_config()
    c.runlocal = runlocal(arg)
    c.epochs, c.early_stopping_patience, c.verbose = 8, 3, 0
    c.data.update(num_tasks=4, num_groups=2, num_examples=4096, input_dim=24,
                  group_rank=4, batch_size=64, seed=0)
    c.model.encoder_kwargs = {"units": [64, 1], "activation": "tanh"}
    c.optimizer.update(name="sgd", learning_rate=0.02, momentum=0.9)
    c.transference.update(order=1, every=5, method="exact", plot=False)
    c.grouping_runs = pair_runs.defaults()
    c.grouping_runs.update(esa_fraction=0.25, metric="total_test_loss")
    c.seeds = 3  # DIR/seed_0 .. seed_2 (tf_mtl.experiments.runs); mean ± s.e. over them.
    c.tensorboard = False  # Dozens of small runs: metrics.csv and the JSON files suffice.
    if c.runlocal:
        c.epochs, c.data.num_examples, c.transference.every = 5, 2048, 4
        c.seeds = None  # One run, seed 0.
    return c
