"""IMTL (Liu et al., ICLR 2021, "Towards Impartial Multi-task Learning").

**IMTL-G** (gradient balance): the aggregated gradient ``d = sum_i α_i g_i`` with
``sum_i α_i = 1`` has *equal projections* onto every task's unit gradient
``u_i = g_i / ||g_i||``. With ``D = [g_1 - g_i]`` and ``U = [u_1 - u_i]``
(rows ``i = 2..m``) the closed form is

    ``α_{2:m} = g_1 Uᵀ (D Uᵀ)^{-1}``,   ``α_1 = 1 - sum_{i>=2} α_i``,

every product read from the Gram matrix ``G`` (``<g_1, u_1 - u_j> = G_11/n_1 -
G_1j/n_j``, ``<g_1 - g_i, u_1 - u_j> = G_11/n_1 - G_1j/n_j - G_i1/n_1 + G_ij/n_j``,
``n_i = sqrt(G_ii)``), solved in float64 with the pseudo-inverse (the inverse of
the paper and LibMTL wherever ``D Uᵀ`` is invertible; a task with a zero gradient
gets ``u_i = 0``). The paper computes IMTL-G on the gradients with respect to the
shared *features* (like MGDA-UB): ``on="features"``, the default, takes ``α`` from
``step.feature_gram`` and applies it to the shared parameters' gradients;
``on="parameters"`` uses the parameters' gradients themselves.

**IMTL-L** (loss balance): trainable scales ``s_i`` (init 0) and the objective
``sum_i (e^{s_i} L_i - s_i)``, trained with the model (the heads and ``s`` get
its gradient, the shared parameters ``sum_i e^{s_i} g_i``). **Hybrid** (the
paper's full IMTL): IMTL-G on the gradients of the scaled losses
``e^{s_i} L_i``. With a ``weighting`` or loss weights ``lw`` the scaled loss is
``e^{s_i} w_i lw_i L_i``; the penalty ``-s_i`` is not weighted. As an IT-MTL
candidate only the rule's ``combination`` runs: its scales stay where they are
(``0`` for a fresh rule), trained only where IMTL is the model's update.
"""

import keras
import tensorflow as tf

from tf_mtl import distribute
from tf_mtl.updates.weighted import GradientRule

MODES = ("gradient", "loss", "hybrid")
ON = ("parameters", "features")


def imtl_g_weights(gram):
    """``[m]`` IMTL-G weights ``α`` (``sum α = 1``) of vectors with Gram ``gram`` (float32)."""
    gram = tf.cast(gram, tf.float64)
    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
    inv = tf.where(norms > 0, 1.0 / tf.where(norms > 0, norms, 1.0), 0.0)
    unit_dots = gram * inv[None, :]                       # [i, j] = <g_i, u_j>
    g1_u = unit_dots[0, 0] - unit_dots[0, 1:]             # <g_1, u_1 - u_j>, j >= 2
    d_u = g1_u[None, :] - (unit_dots[1:, 0:1] - unit_dots[1:, 1:])   # <g_1 - g_i, u_1 - u_j>
    rest = tf.linalg.matvec(tf.linalg.pinv(d_u), g1_u, transpose_a=True)  # g1_u (D Uᵀ)^+
    return tf.cast(tf.concat([1.0 - tf.reduce_sum(rest, keepdims=True), rest], 0), tf.float32)


@keras.saving.register_keras_serializable(package="tf_mtl")
class IMTL(GradientRule):
    """Impartial multi-task learning.

    Args:
        mode: ``"gradient"`` (IMTL-G), ``"loss"`` (IMTL-L) or ``"hybrid"``
            (both; the paper's IMTL). Default ``"hybrid"``.
        on: ``"features"`` (the paper: gradients w.r.t. the encoder's output)
            or ``"parameters"``: where IMTL-G's gradients are taken.
        weighting: optional loss weighting; it scales the task losses first.

    Example:
        >>> update = tf_mtl.updates.IMTL(mode="hybrid", on="features")
    """

    def __init__(self, mode="hybrid", on="features", weighting=None, **kwargs):
        kwargs.setdefault("name", "imtl")
        super().__init__(weighting=weighting, **kwargs)
        if mode not in MODES:
            raise ValueError(f"`mode` must be one of {MODES}. Received: mode={mode!r}")
        if on not in ON:
            raise ValueError(f"`on` must be one of {ON}. Received: on={on!r}")
        self.mode, self.on = mode, on

    @property
    def learns_scales(self):
        return self.mode in ("loss", "hybrid")

    def build_tasks(self, tasks):
        if len(tasks) < 2:
            raise ValueError("IMTL balances the gradients of several tasks and needs at least "
                             f"two. Received: tasks={list(tasks)}")
        super().build_tasks(tasks)
        if self.learns_scales:
            self.loss_scales = self.add_weight(name="loss_scales", shape=(len(self.tasks),),
                                               initializer="zeros", trainable=True)

    def objective(self, losses, weights):
        if not self.learns_scales:
            return super().objective(losses, weights)
        s = tf.convert_to_tensor(self.loss_scales)
        # The penalty is not proportional to the losses: each replica adds its share.
        return (super().objective(losses, weights * tf.exp(s))
                - distribute.replica_share(tf.reduce_sum(s)))

    def base_weights(self, step):
        base = super().base_weights(step)
        if not self.learns_scales:
            return base
        return base * tf.stop_gradient(tf.exp(tf.convert_to_tensor(self.loss_scales)))

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        if self.mode == "loss":
            return base
        gram = step.gram() if self.on == "parameters" else step.feature_gram(
            "IMTL(on='features')")
        gram = gram * base[:, None] * base[None, :]   # of the scaled gradients
        return imtl_g_weights(gram) * base

    @property
    def reads_encoder_output(self):
        return self.on == "features"

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "on": self.on}
