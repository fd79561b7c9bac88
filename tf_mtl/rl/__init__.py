"""Multi-task reinforcement learning: SAC on Meta-World and its critic's transference (``001``).

- ``policy``: the tanh-Gaussian policy and its log-probability with the tanh correction.
- ``critic``: twin Q networks, their loss ``J_Q``, target networks' Polyak averaging.
- ``replay``: one NumPy ring buffer per task.
- ``sac``: the multi-task SAC learner (soft target, policy and temperature losses, one
  ``tf.function`` gradient step).
- ``critic_transference``: the critic as a ``tf_mtl.MultiTaskModel`` whose per-task losses
  are the ``J_Q``: transference through the library's own lookahead, ``AffinityLogger``
  files, the Fig. 6 heatmap and groups.
- ``environments``: Meta-World v3 (imported lazily: nothing else in tf_mtl imports it).
- ``rollouts``, ``run``: data collection, evaluation, the run from a config with
  checkpoints and resume (``python -m launch.metaworld``).
"""

from tf_mtl.rl import critic, critic_transference, environments, policy, replay, rollouts, run, sac
from tf_mtl.rl.critic import TwinBellmanLoss, TwinQNetwork, polyak_update
from tf_mtl.rl.critic_transference import CriticAffinity, critic_model, transference_probes
from tf_mtl.rl.environments import PAPER_ENVIRONMENTS, PAPER_TASKS, MetaWorldTask
from tf_mtl.rl.policy import TanhGaussianPolicy, tanh_gaussian_log_prob
from tf_mtl.rl.replay import ReplayBuffer
from tf_mtl.rl.sac import MultiTaskSAC, soft_target, temperature_loss

__all__ = [
    "PAPER_ENVIRONMENTS", "PAPER_TASKS", "CriticAffinity", "MetaWorldTask", "MultiTaskSAC",
    "ReplayBuffer", "TanhGaussianPolicy", "TwinBellmanLoss", "TwinQNetwork", "critic",
    "critic_model", "critic_transference", "environments", "policy", "polyak_update", "replay",
    "rollouts", "run", "sac", "soft_target", "tanh_gaussian_log_prob", "temperature_loss",
    "transference_probes",
]
