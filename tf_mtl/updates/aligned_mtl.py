"""Aligned-MTL (Senushkin et al., CVPR 2023, "Independent Component Alignment for Multi-Task Learning").

The task gradients (columns of ``J``) are replaced by the closest matrix with
orthogonal columns of equal norm — condition number 1 — found from the
eigendecomposition of the Gram matrix ``G = Jᵀ J = V Λ Vᵀ``:

    ``B = sqrt(λ_min) · V Λ^{-1/2} Vᵀ``,   aligned gradients ``ĝ_j = sum_i B_ij g_i``,

so ``ĝᵀ ĝ = Bᵀ G B = λ_min I``. The update is the preference-weighted sum of the
aligned gradients, ``d = sum_j w_j ĝ_j = sum_i (B w)_i g_i``; the authors' code
sums them (``w = 1``), as does this. ``scale_mode`` picks the common norm² as
their code does: ``"min"`` (``λ_min``, the paper's), ``"median"`` (the lower
median of the kept eigenvalues, as ``torch.median``) or ``"rmse"`` (their mean).

Rank deficiency is handled as in the authors' code: eigenvalues at most
``λ_max · m · ε`` (``ε`` float32's machine epsilon) are dropped — ``V`` and
``Λ`` keep only the others, and ``λ_min`` is the smallest kept one — so the
aligned gradients span the same space with equal norms, orthogonal there.

``on="features"`` is the upper-bound variant (Aligned-MTL-UB): ``B`` from the
Gram of the gradients w.r.t. the encoder's output (``step.feature_gram``),
applied as task weights to the shared parameters' gradients, as their code
weighs the losses.
"""

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.updates.weighted import GradientRule

SCALE_MODES = ("min", "median", "rmse")
ON = ("parameters", "features")


def alignment_matrix(gram, scale_mode="min"):
    """``[m, m]`` ``B`` (float64) whose columns give the aligned gradients from ``gram``."""
    gram = tf.cast(gram, tf.float64)
    m = gram.shape[0]
    values, vectors = tf.linalg.eigh(gram)                 # ascending
    tol = tf.reduce_max(values) * m * float(np.finfo(np.float32).eps)
    keep = values > tol
    rank = tf.reduce_sum(tf.cast(keep, tf.int32))
    kept = tf.where(keep, values, 0.0)
    if scale_mode == "min":
        scale = tf.reduce_min(tf.where(keep, values, float("inf")))
    elif scale_mode == "median":   # the lower median of the kept (the top `rank`) eigenvalues
        scale = tf.gather(values, m - rank + (rank - 1) // 2)
    else:
        scale = tf.reduce_sum(kept) / tf.cast(tf.maximum(rank, 1), tf.float64)
    inv_sqrt = tf.where(keep, 1.0 / tf.sqrt(tf.where(keep, values, 1.0)), 0.0)
    b = tf.sqrt(tf.maximum(scale, 0.0)) * tf.matmul(vectors * inv_sqrt[None, :], vectors,
                                                    transpose_b=True)
    return tf.where(rank > 0, b, tf.zeros_like(b))


@keras.saving.register_keras_serializable(package="tf_mtl")
class AlignedMTL(GradientRule):
    """Independent component alignment of the task gradients.

    Args:
        on: ``"parameters"`` (Aligned-MTL) or ``"features"`` (Aligned-MTL-UB).
        scale_mode: ``"min"`` (the paper's), ``"median"`` or ``"rmse"``.
        preferences: optional list of ``m`` task preferences ``w`` (default all
            ones, the authors' sum), in the model's sorted task order.
        weighting: optional loss weighting; it scales the task gradients first.

    Example:
        >>> update = tf_mtl.updates.AlignedMTL(on="features")
    """

    def __init__(self, on="parameters", scale_mode="min", preferences=None, weighting=None,
                 **kwargs):
        kwargs.setdefault("name", "aligned_mtl")
        super().__init__(weighting=weighting, **kwargs)
        if on not in ON:
            raise ValueError(f"`on` must be one of {ON}. Received: on={on!r}")
        if scale_mode not in SCALE_MODES:
            raise ValueError(f"`scale_mode` must be one of {SCALE_MODES}. Received: "
                             f"scale_mode={scale_mode!r}")
        if preferences is not None:
            ok = isinstance(preferences, (list, tuple)) and preferences and all(
                isinstance(p, (int, float)) and not isinstance(p, bool) and np.isfinite(p)
                for p in preferences)
            if not ok:
                raise ValueError("`preferences` must be None or a non-empty list of finite "
                                 f"numbers. Received: preferences={preferences!r}")
            preferences = [float(p) for p in preferences]
        self.on, self.scale_mode, self.preferences = on, scale_mode, preferences

    def build_tasks(self, tasks):
        if self.preferences is not None and len(self.preferences) != len(tasks):
            raise ValueError(f"`preferences` must have one entry per task ({len(tasks)}: "
                             f"{list(tasks)}). Received: preferences={self.preferences}")
        super().build_tasks(tasks)

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = step.gram() if self.on == "parameters" else step.feature_gram(
            "AlignedMTL(on='features')")
        gram = gram * base[:, None] * base[None, :]   # of the scaled gradients
        prefs = tf.constant(self.preferences or [1.0] * len(self.tasks), tf.float64)
        weights = tf.linalg.matvec(alignment_matrix(gram, self.scale_mode), prefs)
        return tf.cast(weights, tf.float32) * base

    @property
    def reads_encoder_output(self):
        return self.on == "features"

    def get_config(self):
        return {**super().get_config(), "on": self.on, "scale_mode": self.scale_mode,
                "preferences": self.preferences}
