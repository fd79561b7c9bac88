"""Uncertainty weighting (Kendall et al. 2018), in the two forms the papers use.

``form="kendall"`` (MTAN, LibMTL; ``001``'s UW baselines):
    ``sum_i ½ e^{-s_i} L_i + ½ s_i`` with trainable log-variances ``s`` (init 0,
    so every weight starts at ½).
``form="log1p"`` (``000`` §3.3, after Liebel & Körner):
    ``sum_i L_i / ε_i² + log(1 + ε_i²)`` with trainable ``ε`` (init 1, weights
    start at 1); the ``log(1 + ε²)`` term keeps ``ε → 0`` from paying off.

The log-variances are trained by the compiled optimizer with the rest of the
model (they are the rule's trainable variables: the gradient of the objective
reaches them); the shared parameters get ``sum_i w_i lw_i g_i`` with the
weights of this step.
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import LossWeighting

FORMS = ("kendall", "log1p")


@keras.saving.register_keras_serializable(package="tf_mtl")
class UncertaintyWeights(LossWeighting):
    """Task weights from learned homoscedastic uncertainty.

    Args:
        form: ``"kendall"`` (``½e^{-s}``, penalty ``½ s``) or ``"log1p"``
            (``1/ε²``, penalty ``log(1 + ε²)``).

    Example:
        >>> update = tf_mtl.updates.UncertaintyWeights()                # UW-MTL
        >>> update = tf_mtl.updates.PCGrad(weighting=UncertaintyWeights())  # UW-PCGrad
    """

    def __init__(self, form="kendall", **kwargs):
        kwargs.setdefault("name", "uncertainty")
        super().__init__(**kwargs)
        if form not in FORMS:
            raise ValueError(f"`form` must be one of {FORMS}. Received: form={form!r}")
        self.form = form

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        init = "zeros" if self.form == "kendall" else "ones"
        self.log_vars = self.add_weight(
            name="log_vars" if self.form == "kendall" else "eps", shape=(len(self.tasks),),
            initializer=init, trainable=True)

    def current_weights(self):
        v = tf.convert_to_tensor(self.log_vars)
        if self.form == "kendall":
            return 0.5 * tf.exp(-v)
        return 1.0 / tf.square(v)

    def penalty(self):
        v = tf.convert_to_tensor(self.log_vars)
        if self.form == "kendall":
            return 0.5 * tf.reduce_sum(v)
        return tf.reduce_sum(tf.math.log1p(tf.square(v)))

    def get_config(self):
        return {**super().get_config(), "form": self.form}
