"""Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018), in the forms the papers use.

Each task ``i`` has a trainable uncertainty parameter and one of three forms:

``"regression"`` (Kendall et al. Eq. 7, a Gaussian likelihood; alias ``"kendall"``):
    ``½ e^{-s_i} L_i + ½ s_i`` with the log-variance ``s_i = log σ_i²`` (init 0,
    so the weight starts at ½).
``"classification"`` (Kendall et al. Eq. 10, a scaled softmax likelihood):
    ``e^{-s_i} L_i + ½ s_i`` (``1/σ² L + log σ``; init 0, weight starts at 1).
``"log1p"`` (``000`` §3.3, after Liebel & Körner 2018):
    ``L_i / ε_i² + log(1 + ε_i²)`` with trainable ``ε_i`` (init 1, weight starts
    at 1); the ``log(1 + ε²)`` term keeps ``ε → 0`` from paying off.

``form`` is one of these for every task, or ``{task: form}`` to mix them (e.g.
MovieLens's classification "watch" and regression "rating" tasks).

Which form ``001``'s UW baselines use: the paper does not say. Its Cityscapes
runs are the MTAN code (``lorenmt/mtan``, App. D), whose ``weight='uncert'``
objective is ``sum_i 1/(2 e^{s_i}) L_i + s_i/2`` for *every* task, the
cross-entropy segmentation included — the regression form throughout, as LibMTL
also does. For its Keras experiments (MultiMNIST, CelebA, MovieLens) the paper
is silent; tf_mtl's default is that same form for all tasks (``"regression"``),
and ``"classification"`` per task is the option that follows Kendall et al.'s
derivation for softmax tasks.

The uncertainty parameters are the rule's trainable variables, trained by the
compiled optimizer with the rest of the model (the gradient of the objective
reaches them; ``MultiTaskModel`` keeps the optimizer's weight decay off them);
the shared parameters get ``sum_i w_i lw_i g_i`` with the weights of this step.
"""

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.updates.weighted import LossWeighting

FORMS = ("regression", "classification", "log1p")
ALIASES = {"kendall": "regression"}   # the name before the classification form existed


def _canonical(form):
    form = ALIASES.get(form, form) if isinstance(form, str) else form
    if form not in FORMS:
        raise ValueError(f"`form` must be one of {FORMS} (or 'kendall' = 'regression'), or a "
                         f"dict {{task: form}}. Received: form={form!r}")
    return form


@keras.saving.register_keras_serializable(package="tf_mtl")
class UncertaintyWeights(LossWeighting):
    """Task weights from learned homoscedastic uncertainty.

    Args:
        form: ``"regression"`` (``½e^{-s}``, penalty ``½ s``; ``"kendall"`` is
            accepted for it), ``"classification"`` (``e^{-s}``, penalty
            ``½ s``), ``"log1p"`` (``1/ε²``, penalty ``log(1 + ε²)``), or a
            dict ``{task: form}`` naming every task.
        initial_log_variance: the start of every ``s_i`` of the regression and
            classification forms (default 0; MTAN's code starts its ``logsigma`` at
            -0.5, weight ``1/(2 e^{-0.5})`` = 0.82, which ``configs/nyuv2.py`` and
            ``configs/cityscapes.py`` follow). ``log1p``'s ``ε`` starts at 1 regardless.

    Example:
        >>> update = tf_mtl.updates.UncertaintyWeights()                # UW-MTL
        >>> update = tf_mtl.updates.PCGrad(weighting=UncertaintyWeights())  # UW-PCGrad
        >>> update = tf_mtl.updates.UncertaintyWeights(
        ...     form={"watch": "classification", "rating": "regression"})
    """

    def __init__(self, form="regression", initial_log_variance=0.0, **kwargs):
        kwargs.setdefault("name", "uncertainty")
        super().__init__(**kwargs)
        if isinstance(initial_log_variance, bool) or not isinstance(
                initial_log_variance, (int, float)) or not np.isfinite(initial_log_variance):
            raise ValueError("`initial_log_variance` must be a finite number. Received: "
                             f"initial_log_variance={initial_log_variance!r}")
        self.initial_log_variance = float(initial_log_variance)
        if isinstance(form, dict):
            try:
                form = {task: _canonical(f) for task, f in form.items()}
            except ValueError:
                raise ValueError(f"`form` values must be in {FORMS} (or 'kendall'). "
                                 f"Received: form={form!r}") from None
        else:
            form = _canonical(form)
        self.form = form

    def task_forms(self):
        """The form of each task, in task order."""
        if isinstance(self.form, str):
            return [self.form] * len(self.tasks)
        return [self.form[t] for t in self.tasks]

    def build_tasks(self, tasks):
        if isinstance(self.form, dict) and set(self.form) != set(tasks):
            raise ValueError(
                f"`form` must name every task {sorted(tasks)} once. Missing: "
                f"{sorted(set(tasks) - set(self.form))}; unknown: "
                f"{sorted(set(self.form) - set(tasks))}. Received: form={self.form!r}")
        super().build_tasks(tasks)
        forms = self.task_forms()
        self._log1p = tf.constant([f == "log1p" for f in forms])
        self._scale = tf.constant([0.5 if f == "regression" else 1.0 for f in forms])
        # ε starts at 1, s at initial_log_variance.
        start = [1.0 if f == "log1p" else self.initial_log_variance for f in forms]
        self.log_vars = self.add_weight(
            name="eps" if all(f == "log1p" for f in forms) else "log_vars",
            shape=(len(self.tasks),), trainable=True,
            initializer=lambda shape, dtype=None: tf.constant(start, dtype or "float32"))

    def _split(self):
        """``(s, ε)``: each form's variable, with a harmless value on the other tasks
        (``tf.where`` differentiates both branches: no ``1/0``)."""
        v = tf.convert_to_tensor(self.log_vars)
        return tf.where(self._log1p, 0.0, v), tf.where(self._log1p, v, 1.0)

    def current_weights(self):
        s, eps = self._split()
        return tf.where(self._log1p, 1.0 / tf.square(eps), self._scale * tf.exp(-s))

    def penalty(self):
        s, eps = self._split()
        return tf.reduce_sum(tf.where(self._log1p, tf.math.log1p(tf.square(eps)), 0.5 * s))

    def get_config(self):
        return {**super().get_config(), "form": self.form,
                "initial_log_variance": self.initial_log_variance}
