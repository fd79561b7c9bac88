"""GradNorm (Chen et al., ICML 2018): weights that balance the task gradient norms.

With weights ``w`` (init 1) the shared parameters get ``sum_i w_i lw_i g_i``.
After each step the weights move against the GradNorm loss

    ``L_grad = sum_i |G_i - Ḡ r_i^α|``,  ``G_i = ||∇_W w_i lw_i L_i||``,
    ``r_i = L̃_i / mean(L̃)``,  ``L̃_i = L_i(t) / L_i(0)``,

where ``W`` is the last shared layer (``on="last_shared_layer"``, the paper's
choice and the default: the encoder's last trainable variable with two or more
dimensions, i.e. its last kernel) or every shared variable (``"all_shared"``).
The target ``Ḡ r_i^α`` is held constant (Chen et al. §3.2), so
``∂L_grad/∂w_i = sign(G_i - target_i) ||∇_W lw_i L_i||``. Choices where peers
differ, documented: the weights take a plain gradient step with this rule's
own ``learning_rate`` (not the model's optimizer, which has no slot for them),
are clipped at ``1e-6`` to stay positive, and are renormalised to sum to
``m``; ``L_i(0)`` is the global loss of the first step this rule sees.
"""

import keras
import tensorflow as tf

from tf_mtl import distribute
from tf_mtl.updates.weighted import LossWeighting, state_variable

ON = ("last_shared_layer", "all_shared")


@keras.saving.register_keras_serializable(package="tf_mtl")
class GradNorm(LossWeighting):
    """GradNorm loss weighting.

    Args:
        alpha: restoring-force strength ``>= 0`` (paper: 1.5 for NYUv2; 0 = equal norms).
        on: ``"last_shared_layer"`` or ``"all_shared"`` (where ``G_i`` is measured).
        learning_rate: step size ``> 0`` of the weights' gradient step.

    Example:
        >>> update = tf_mtl.updates.GradNorm(alpha=1.5)
    """

    def __init__(self, alpha=1.5, on="last_shared_layer", learning_rate=0.025, **kwargs):
        kwargs.setdefault("name", "gradnorm")
        super().__init__(**kwargs)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(f"`alpha` must be a number >= 0. Received: alpha={alpha!r}")
        if on not in ON:
            raise ValueError(f"`on` must be one of {ON}. Received: on={on!r}")
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) \
                or not learning_rate > 0:
            raise ValueError(f"`learning_rate` must be a number > 0. Received: "
                             f"learning_rate={learning_rate!r}")
        self.alpha, self.on, self.learning_rate = float(alpha), on, float(learning_rate)

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        m = (len(self.tasks),)
        self.task_weights = state_variable(self, "task_weights", m, "ones")
        self.initial_losses = state_variable(self, "initial_losses", m)

    def current_weights(self):
        return tf.convert_to_tensor(self.task_weights)

    def _norms(self, step):
        """``||∇_W lw_i L_i||`` per task (global gradients)."""
        if self.on == "all_shared":
            gram = step.gram()
            return tf.sqrt(tf.maximum(tf.linalg.diag_part(gram), 0.0)) * step.loss_weights
        layer = [v for v in step.shared_variables if len(v.shape) >= 2]
        if not layer:
            raise ValueError(
                "GradNorm(on='last_shared_layer') needs a shared variable with two or more "
                "dimensions (a kernel). Received: shared variable shapes "
                f"{[tuple(v.shape) for v in step.shared_variables]}; use on='all_shared'")
        layer = layer[-1:]
        norms = []
        for i in range(step.num_tasks):
            if step.features is not None:
                # Through head i alone to the features, then to W: the stacked losses'
                # one-hot seed would walk every head's zero cotangent too (2.5x the
                # step instead of ~1.2x on 9-task ResNet-lite, measured).
                cotangent = step.tape.gradient(step.task_losses[i], step.features,
                                               unconnected_gradients=tf.UnconnectedGradients.ZERO)
                g = step.gradient(step.features, layer, output_gradients=cotangent)
            else:
                g = step.task_gradient(i, variables=layer)
            norms.append(tf.norm(distribute.replica_sum(g)[0]) * step.loss_weights[i])
        return tf.stack(norms)

    def update_state(self, step, losses):
        losses = tf.stop_gradient(losses)
        # L_i(0) is each task's first positive, finite loss: a task whose first
        # batches carried no loss (masked out) would otherwise divide by 0.
        old = tf.convert_to_tensor(self.initial_losses)
        usable = tf.math.is_finite(losses) & (losses > 0)
        initial = tf.where(old > 0, old, tf.where(usable, losses, 0.0))
        self.initial_losses.assign(initial)
        w = tf.convert_to_tensor(self.task_weights)
        unit = self._norms(step)                    # ||∇_W lw_i L_i||
        norms = w * unit                            # G_i
        ratio = tf.where(initial > 0, losses / tf.where(initial > 0, initial, 1.0), 1.0)
        target = tf.stop_gradient(tf.reduce_mean(norms) * (ratio / tf.reduce_mean(ratio))
                                  ** self.alpha)
        grad = tf.sign(norms - target) * unit
        w = tf.maximum(w - self.learning_rate * grad, 1e-6)
        self.task_weights.assign(len(self.tasks) * w / tf.reduce_sum(w))

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "on": self.on,
                "learning_rate": self.learning_rate}
