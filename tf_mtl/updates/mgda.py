"""MGDA (Sener & Koltun, NeurIPS 2018): the min-norm point of the task gradients.

Weights ``α`` on the simplex minimise ``||sum_i α_i d_i||²``, computed exactly
from the Gram matrix of the ``d_i`` by an active-set method
(``tf_mtl.updates.qp.min_norm_weights``: Lawson–Hanson NNLS, finite, float64).
The authors' ``MinNormSolver`` runs Frank–Wolfe from the best pair for at most
250 steps and stops when a step changes ``α`` by less than ``1e-5``; it can stop
short of the optimum (the four-task case in ``tests/updates/test_qp.py`` ends
19% above the min-norm value): here the weights are the exact minimiser, which
Frank–Wolfe approaches. For two tasks both give the
closed form ``γ = clip(<d_2 - d_1, d_2> / ||d_1 - d_2||², 0, 1)``,
``α = (γ, 1 - γ)``. Where the minimiser is not unique (e.g. two equal
gradients) any minimiser gives the same shared gradient.

``upper_bound=True`` (MGDA-UB) takes ``d_i = ∇_Z L_i``, the gradient with respect
to the encoder's *output* ``Z`` — one backward through each head, none through
the encoder — and so cannot be written over the per-task shared gradients; it
still ends as weights: the shared gradient is ``sum_i α_i lw_i ∇_θ L_i``, one
weighted backward pass. ``upper_bound=False`` uses the shared-parameter
gradients themselves (their Gram matrix).

``normalization`` scales each ``d_i`` before solving, as in the authors' code:
``"none"``, ``"l2"`` (``/||d_i||``), ``"loss"`` (``/L_i``), ``"loss+"``
(``/(L_i ||d_i||)``). As there, ``α`` then weighs the *unnormalised* losses.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.qp import min_norm_weights  # noqa: F401  (re-exported: public name)
from tf_mtl.updates.weighted import GradientRule

NORMALIZATIONS = ("none", "l2", "loss", "loss+")


@keras.saving.register_keras_serializable(package="tf_mtl")
class MGDA(GradientRule):
    """Multiple-gradient descent (min-norm task weights).

    Args:
        upper_bound: ``True`` (MGDA-UB): gradients w.r.t. the encoder's output;
            ``False``: w.r.t. the shared parameters.
        normalization: ``"none"``, ``"l2"``, ``"loss"`` or ``"loss+"``.
        weighting: optional loss weighting scaling the task losses first.
        max_iter: active-set iterations at most (integer >= 1): a guard
            against rounding cycles, the solver ends after a few steps per
            task. (It was the Frank–Wolfe cap; configs saved with it load.)

    Example:
        >>> update = tf_mtl.updates.MGDA(upper_bound=True, normalization="loss+")
    """

    def __init__(self, upper_bound=True, normalization="none", weighting=None, max_iter=250,
                 **kwargs):
        kwargs.setdefault("name", "mgda")
        super().__init__(weighting=weighting, **kwargs)
        if not isinstance(upper_bound, bool):
            raise ValueError(f"`upper_bound` must be True or False. Received: "
                             f"upper_bound={upper_bound!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"`normalization` must be one of {NORMALIZATIONS}. Received: "
                             f"normalization={normalization!r}")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"`max_iter` must be an integer >= 1. Received: "
                             f"max_iter={max_iter!r}")
        self.upper_bound, self.normalization, self.max_iter = upper_bound, normalization, max_iter

    @property
    def reads_encoder_output(self):
        return self.upper_bound

    def _gram(self, step):
        """Gram matrix of the (unscaled) task gradients MGDA solves over."""
        if not self.upper_bound:
            return step.gram()
        return step.feature_gram("MGDA(upper_bound=True)")

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = self._gram(step) * base[:, None] * base[None, :]
        norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0))
        losses = step.global_losses() * base
        scale = {"none": tf.ones_like(norms), "l2": norms, "loss": losses,
                 "loss+": losses * norms}[self.normalization]
        scale = tf.where(scale > 0, scale, tf.ones_like(scale))
        gram = gram / (scale[:, None] * scale[None, :])
        return min_norm_weights(gram, self.max_iter) * base

    def get_config(self):
        return {**super().get_config(), "upper_bound": self.upper_bound,
                "normalization": self.normalization, "max_iter": self.max_iter}
