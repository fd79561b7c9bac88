"""Multi-task SAC on five Meta-World tasks, measuring the critic's transference (``001`` §5.1.3).

``001`` App. D.3: "reach", "push", "press button top", "open window", "close window"
(Meta-World v3 names below), one policy and one critic shared by all (6 fully connected
layers of 400 units each), per iteration 600 environment steps per task then 600
gradient steps with 128 samples per task, softlearning's defaults for the rest
(Adam, lr 3e-4, gamma 0.99, tau 5e-3, reward scale 1, target entropy -|A|). Transference
on the critic loss J_Q, exact and first-order, every 10 gradient steps; groups from it.

    python -m launch.metaworld --config=configs/metaworld_sac.py --workdir=/tmp/mw
    python -m launch.metaworld --config=configs/metaworld_sac.py:runlocal --workdir=/tmp/mw_local

``:runlocal`` runs the same code in a couple of minutes on a laptop CPU (2 iterations, short
episodes, 32-unit networks). Needs ``pip install -e ".[rl]"``.
"""

import ml_collections

from configs.variants import runlocal as runlocal_arg

ENVIRONMENTS = ("button-press-topdown-v3", "push-v3", "reach-v3", "window-close-v3",
                "window-open-v3")


def get_config(arg=None):
    """``arg="runlocal"`` shrinks it to a smoke run (same code)."""
    c = ml_collections.ConfigDict()
    c.runlocal = runlocal_arg(arg)
    c.environments = ENVIRONMENTS   # tuples: --config.environments="('reach-v3', 'push-v3')"
    c.seed = 0
    # 001 does not give the number of iterations; 500 is 300k environment steps per task.
    c.iterations = 500
    c.env_steps_per_task = 600
    c.gradient_steps = 600
    c.batch_size = 128
    c.random_iterations = 1          # softlearning's initial uniform exploration
    c.max_episode_steps = 150        # Meta-World's path length in 2020 (v3: 500)
    c.replay_capacity = 1_000_000    # softlearning's max_size, per task
    c.hidden_units = (400,) * 6
    c.learning_rate = 3e-4
    c.discount = 0.99
    c.tau = 5e-3
    c.reward_scale = 1.0
    c.target_entropy = "auto"
    c.temperature = "per_task"
    c.transference = ml_collections.ConfigDict({"methods": ("exact", "first_order"),
                                                "every": 10})
    c.evaluation = ml_collections.ConfigDict({"every": 10, "episodes": 1})
    c.grouping = ml_collections.ConfigDict({"splits": 2})
    # The critic's update rule (tf_mtl.updates.build): "equal" is plain SAC; IT-MTL on the
    # critic: --config.critic_rule.name=itmtl --config.critic_rule.candidates=all,pcgrad
    c.critic_rule = ml_collections.ConfigDict({"name": "equal", "candidates": ""})
    c.tensorboard = True
    if c.runlocal:
        c.iterations, c.env_steps_per_task, c.gradient_steps = 2, 100, 20
        c.batch_size, c.max_episode_steps, c.hidden_units = 32, 50, [32, 32]
        c.replay_capacity = 10_000
        c.transference.every = 5
        c.evaluation.every = 1
    return c
