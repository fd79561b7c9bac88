"""UPGrad and DualProj (Quinton & Rey, "Jacobian Descent for Multi-Objective
Optimization", arXiv:2406.16232, 2024): projections onto the dual cone.

The dual cone of the task gradients is ``C = {d : <g_i, d> >= 0 for all i}``:
a step along ``-d`` with ``d`` in ``C`` increases no task's loss to first order.
For a combination ``Jᵀu`` (``J`` the ``m``-row Jacobian, ``G = JJᵀ``) the
projection onto ``C`` is ``Jᵀv`` with ``v = argmin_{v >= u} vᵀGv`` (the paper's
Prop. 1), solved exactly by ``tf_mtl.updates.qp.dual_cone_weights``.

* ``UPGrad``: ``d = sum_i p_i π_C(g_i)`` — each gradient projected, then
  combined with the preference ``p`` (default ``1/m``: the mean). Weights
  ``sum_i p_i v_i`` with ``v_i = argmin_{v >= e_i} vᵀGv``.
* ``DualProj``: ``d = π_C(sum_i p_i g_i)`` — the preference-weighted mean
  projected once (GEM's projection, Lopez-Paz & Ranzato 2017, Eq. 11). Weights
  ``v = argmin_{v >= p} vᵀGv``.

Conventions follow the authors' released library (TorchJD's ``UPGrad`` /
``DualProj`` aggregators): ``p`` is used as given (not normalised); before
solving, ``G`` is divided by its trace (``||J||_F²``) — replaced by zeros when
the trace is below ``norm_eps`` (then no projection happens: ``d`` is the
preference combination) — and ``reg_eps · I`` is added, defaults
``norm_eps = reg_eps = 1e-4`` as there. ``reg_eps`` makes the solution unique
and moves it by ``O(reg_eps)``: ``<g_i, d>`` may then be ``-reg_eps v_i`` times
the trace, not ``>= 0`` exactly; ``reg_eps=0`` gives the exact projection
(``norm_eps=0`` only skips an all-zero Gram). TorchJD's quadprog solver is
replaced by the exact active-set solver here (the same optimum).

As every ``GradientRule``, they act on the scaled gradients ``base_i g_i``
(a composed ``weighting``'s weights times the model's loss weights) and end as
weights over the per-task gradients: one weighted backward pass, usable as an
IT-MTL candidate.
"""

import math

import keras
import tensorflow as tf

from tf_mtl.updates.qp import dual_cone_weights
from tf_mtl.updates.weighted import GradientRule


def _check_eps(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value >= 0):
        raise ValueError(f"`{name}` must be a finite number >= 0. Received: {name}={value!r}")
    return float(value)


class _DualConeRule(GradientRule):
    """Shared arguments, Gram preparation and solve; subclasses say which
    lower bounds ``U`` (``[k, m]``) to project and how to combine the rows."""

    def __init__(self, pref_vector=None, norm_eps=1e-4, reg_eps=1e-4, weighting=None,
                 max_iter=250, **kwargs):
        super().__init__(weighting=weighting, **kwargs)
        if pref_vector is not None:
            values = list(pref_vector) if isinstance(pref_vector, (list, tuple)) else None
            if not values or any(isinstance(v, bool) or not isinstance(v, (int, float))
                                 or not math.isfinite(v) or v < 0 for v in values):
                raise ValueError("`pref_vector` must be None or a non-empty list of finite "
                                 f"numbers >= 0. Received: pref_vector={pref_vector!r}")
            pref_vector = [float(v) for v in values]
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"`max_iter` must be an integer >= 1. Received: max_iter={max_iter!r}")
        self.pref_vector = pref_vector
        self.norm_eps = _check_eps("norm_eps", norm_eps)
        self.reg_eps = _check_eps("reg_eps", reg_eps)
        self.max_iter = max_iter

    def build_tasks(self, tasks):
        if self.pref_vector is not None and len(self.pref_vector) != len(tasks):
            raise ValueError(f"`pref_vector` must have one entry per task {list(tasks)}. "
                             f"Received: pref_vector={self.pref_vector!r}")
        super().build_tasks(tasks)

    def preference(self):
        m = len(self.tasks)
        return tf.constant(self.pref_vector or [1.0 / m] * m, tf.float64)

    def prepared_gram(self, gram):
        """TorchJD's ``regularize(normalize(G, norm_eps), reg_eps)``, in float64."""
        gram = tf.cast(gram, tf.float64)
        trace = tf.linalg.trace(gram)
        small = (trace < self.norm_eps) | ~(trace > 0)
        divisor = tf.where(small, tf.ones_like(trace), trace)
        gram = tf.where(small, tf.zeros_like(gram), gram / divisor)
        return gram + self.reg_eps * tf.eye(gram.shape[-1], dtype=tf.float64)

    def lower_bounds(self, pref):
        """``[k, m]`` lower bounds of the projections whose weights are summed."""
        raise NotImplementedError(f"{type(self).__name__} must implement lower_bounds(pref).")

    def combination(self, step, base):
        base = tf.cast(base, tf.float32)
        gram = self.prepared_gram(step.gram() * base[:, None] * base[None, :])
        rows = dual_cone_weights(gram, self.lower_bounds(self.preference()), self.max_iter)
        return tf.cast(tf.reduce_sum(rows, axis=0), tf.float32) * base

    def get_config(self):
        return {**super().get_config(), "pref_vector": self.pref_vector,
                "norm_eps": self.norm_eps, "reg_eps": self.reg_eps, "max_iter": self.max_iter}


@keras.saving.register_keras_serializable(package="tf_mtl")
class UPGrad(_DualConeRule):
    """Unconflicting projection of gradients: the mean of each task gradient's
    projection onto the dual cone (see the module docstring).

    Args:
        pref_vector: ``None`` (``1/m`` each: the mean) or one weight >= 0 per
            task (sorted task order), combining the projected gradients.
        norm_eps: below this trace of the Gram matrix, no projection.
        reg_eps: added to the diagonal of the trace-normalised Gram matrix.
        weighting: optional loss weighting scaling the task gradients first.
        max_iter: active-set iterations at most (a guard; integer >= 1).

    Example:
        >>> update = tf_mtl.updates.UPGrad()
        >>> update = tf_mtl.updates.ITMTL(["all", tf_mtl.updates.UPGrad()])
    """

    def __init__(self, pref_vector=None, norm_eps=1e-4, reg_eps=1e-4, weighting=None,
                 max_iter=250, **kwargs):
        kwargs.setdefault("name", "upgrad")
        super().__init__(pref_vector, norm_eps, reg_eps, weighting, max_iter, **kwargs)

    def lower_bounds(self, pref):
        return tf.linalg.diag(pref)        # row i: p_i e_i, projected then summed


@keras.saving.register_keras_serializable(package="tf_mtl")
class DualProj(_DualConeRule):
    """The preference-weighted mean gradient projected onto the dual cone (see the
    module docstring).

    Args:
        pref_vector: ``None`` (``1/m`` each: the mean) or one weight >= 0 per
            task (sorted task order), forming the combination projected.
        norm_eps: below this trace of the Gram matrix, no projection.
        reg_eps: added to the diagonal of the trace-normalised Gram matrix.
        weighting: optional loss weighting scaling the task gradients first.
        max_iter: active-set iterations at most (a guard; integer >= 1).

    Example:
        >>> update = tf_mtl.updates.DualProj()
    """

    def __init__(self, pref_vector=None, norm_eps=1e-4, reg_eps=1e-4, weighting=None,
                 max_iter=250, **kwargs):
        kwargs.setdefault("name", "dual_proj")
        super().__init__(pref_vector, norm_eps, reg_eps, weighting, max_iter, **kwargs)

    def lower_bounds(self, pref):
        return pref[None, :]
