"""The critic as a ``MultiTaskModel``: its per-task losses ``J_Q`` feed the library's transference.

``001`` §5.1.3 / App. D.3 measure transference in multi-task SAC on the critic loss
``J_Q(theta) = E_{(s,a)~D}[0.5 (Q(s,a) - y)^2]``. Here the critic *is* a
``tf_mtl.MultiTaskModel``, so the measurement is the library's one mechanism
(``tf_mtl.transference`` over ``tf_mtl.lookahead``), not a second implementation:

* encoder = ``TwinQNetwork`` (both critics): the task enters as a one-hot input, so
  every critic weight is a shared weight (``model.shared_variables`` is all of them);
* heads = ``keras.layers.Identity`` (no weights), one per task;
* inputs ``{task: s_t ++ a_t}`` (one sub-batch per task, each from its own replay
  buffer: the multi-domain input form), labels ``{task: y_t}``: the step's soft targets,
  computed once and held constant;
* losses = ``TwinBellmanLoss``: task ``t``'s ``J_Q`` is the sum of both critics' losses
  on its batch;
* the compiled optimizer is the critic's Adam; the critic's update is the model's own
  ``train_step`` (equal weights: the sum of the ``J_Q``), and ``Transference`` probes
  measure on it every ``k`` gradient steps (exact and/or first-order), from the weights
  and Adam state the update is computed from.

So ``Z[i][j] = 1 - J_Q_j(theta + Delta_i) / J_Q_j(theta)`` with ``Delta_i`` the critic
optimizer's next update for task ``i``'s gradient (``001`` Eq. 1; positive: ``i``'s
step lowers ``j``'s loss); the source of all tasks is the update the critic really takes.

``CriticAffinity`` drives ``tf_mtl.callbacks.AffinityLogger`` with one "epoch" per SAC
iteration: the same files (``affinity.json``, ``affinity_epochs.json``; first-order as
``affinity_transference_first_order*``), the Fig. 6 heatmap normalized by
self-transference (``tf_mtl.plots``), and groups chosen by ``tf_mtl.grouping.select_groups``.
"""

import math
import os

import keras

from tf_mtl.callbacks import AffinityLogger
from tf_mtl.grouping import selection
from tf_mtl.model import MultiTaskModel
from tf_mtl.rl.critic import TwinBellmanLoss, TwinQNetwork
from tf_mtl.transference import Transference

METHODS = ("exact", "first_order")


def transference_probes(methods=("exact",), every=10):
    """One order-1 ``Transference`` probe per method: ``"exact"`` is named
    ``transference`` (``affinity.json``), ``"first_order"`` ``transference_first_order``."""
    methods = list(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or len(set(methods)) != len(methods):
        raise ValueError(f"`methods` must be distinct names from {METHODS}. "
                         f"Received: methods={methods!r}")
    return [Transference(order=1, every=every, method=m,
                         name="transference" if m == "exact" else f"transference_{m}")
            for m in methods]


def critic_model(tasks, hidden_units, probes=(), update=None):
    """The twin critic as a ``MultiTaskModel`` over ``tasks`` (see the module docstring).

    Example:
        >>> critic = tf_mtl.rl.critic_model(
        ...     ["push-v3", "reach-v3"], [16],
        ...     probes=tf_mtl.rl.transference_probes(["exact", "first_order"], every=10))
        >>> critic.build_for({t: tf.zeros([1, 48]) for t in critic.tasks})
        >>> critic.shared_variables == critic.encoder.trainable_variables   # all shared
        True
        >>> [p.name for p in critic.probes]
        ['transference', 'transference_first_order']
    """
    return MultiTaskModel(
        encoder=TwinQNetwork(hidden_units, name="twin_q"),
        heads={t: keras.layers.Identity() for t in tasks},
        losses={t: TwinBellmanLoss() for t in tasks},
        update=update, probes=list(probes), name="critic")


class CriticAffinity:
    """Writes the critic's transference files once per SAC iteration.

    Args:
        critic: the critic ``MultiTaskModel`` with its ``Transference`` probes.
        workdir: where the ``AffinityLogger`` files go.
        initial_iteration: the first iteration this process runs (a resumed run reads
            the earlier iterations back from ``affinity_epochs.json``).
        tensorboard_dir: also write each iteration's values and heatmap there.

    Example:
        >>> affinity = CriticAffinity(sac.critic, workdir)
        >>> affinity.begin_iteration(); ...gradient steps...; affinity.end_iteration(0)
    """

    def __init__(self, critic, workdir, initial_iteration=0, tensorboard_dir=None):
        self.critic = critic
        self.probes = [p for p in critic.probes if isinstance(p, Transference)]
        self.logger = AffinityLogger(workdir, plot=True, normalize=True,
                                     tensorboard_dir=tensorboard_dir,
                                     initial_epoch=initial_iteration)
        self.workdir = workdir
        if self.probes:
            self.logger.set_model(critic)
            self.logger.on_train_begin()

    def begin_iteration(self):
        """Starts the iteration's running means (Keras resets them every epoch)."""
        for probe in self.probes:
            probe.accumulator.reset_state()
        if self.probes:
            self.logger.on_epoch_begin(0)

    def summary(self):
        """``{probe: {"steps", "self", "cross"}}`` of this iteration's means (None where
        nothing was measured)."""
        out = {}
        for probe in self.probes:
            result = {k.rsplit("/", 1)[1]: float(v)
                      for k, v in probe.accumulator.result().items()}
            out[probe.name] = {k: None if math.isnan(result[k]) else result[k]
                               for k in ("steps", "self", "cross")}
        return out

    def end_iteration(self, iteration):
        if self.probes:
            self.logger.on_epoch_end(iteration)

    def finish(self, splits=2):
        """The normalized heatmaps, and ``groups.json`` from the run mean of the first
        probe (exact where measured; ``select_groups``, TAG objective); returns the
        ``Selection`` or None."""
        if not self.probes:
            return None
        self.logger.on_train_end()
        name = self.probes[0].name
        stem = "affinity" if name == "transference" else f"affinity_{name}"
        path = os.path.join(self.workdir, stem + ".json")
        if not os.path.exists(path) or splits is None:
            return None
        return selection.select_groups_from_file(path, splits=splits, objective="tag")[
            "selection"]
