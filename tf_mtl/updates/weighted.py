"""The one mechanism behind most update rules: task weights over per-task gradients.

Equal weights, uncertainty weighting, CoV, DWA and GradNorm weight the *losses*;
PCGrad's projected sum and MGDA's min-norm point are linear combinations of the
task gradients whose coefficients depend only on their Gram matrix. Either way
a rule ends with this step's weights ``w ∈ R^m`` and the shared gradient

    ``g = sum_i w_i g_i  (+ the regularization gradient)``.

``weighted_shared_gradient`` forms it with a single weighted backward pass when
nothing in the step has formed the per-task gradients, and by summation
(``tf_mtl.gradients.combine``) when something has (PCGrad, a probe). IT-MTL
candidates are such rows too, scored by ``tf_mtl.transference.compute``.

Two bases:

* ``LossWeighting``: weights from the rule's own state (variables), read
  before the step's losses are seen; ``update_state`` then advances the state
  with the step's global losses. Its ``objective`` (what the heads and the
  rule's trainable variables get) is ``sum_i w_i lw_i L_i + penalty``.
* ``GradientRule``: ``combination(step, base)`` turns base weights (a loss
  weighting's weights times the model's loss weights) into coefficients over
  the *unscaled* per-task gradients; ``weighting=`` composes a loss weighting
  (``PCGrad(weighting=UncertaintyWeights())`` is UW-PCGrad).
"""

import keras
import tensorflow as tf

from tf_mtl import distribute
from tf_mtl.gradients import combine
from tf_mtl.updates.base import Update


def weighted_shared_gradient(step, w):
    """Global shared gradient ``sum_i w[i] g_i`` plus the regularization gradient.

    ``w`` is ``[m]`` and already global (the same on every replica). One
    backward pass of the stacked losses with ``w`` as their cotangent, unless
    the per-task gradients exist in this step already: then a weighted sum.
    """
    w = tf.stop_gradient(tf.cast(w, step.losses.dtype))
    extra = step.regularization_gradient()
    if step.has_per_task():
        return [g[0] for g in combine(step.per_task(), w[None, :], extra)]
    grads = distribute.replica_sum(step.gradient(step.losses, output_gradients=w))
    return grads if extra is None else [g + e for g, e in zip(grads, extra)]


def state_variable(layer, name, shape, initializer="zeros", dtype="float32"):
    """A non-trainable state variable every replica writes the same value to.

    Rules update their state from global (replica-summed) values, so each replica
    computes the same new value; reading the first replica's copy is exact.
    """
    return layer.add_weight(name=name, shape=shape, initializer=initializer, dtype=dtype,
                            trainable=False, aggregation="only_first_replica")


@keras.saving.register_keras_serializable(package="tf_mtl")
class LossWeighting(Update):
    """Base of rules that weight the task losses from their own state.

    Subclasses implement ``current_weights()`` (``[m]``, from variables only, so the
    heads' objective and the shared gradient use the same values), and may
    override ``penalty()`` (a scalar added to the objective, e.g. uncertainty
    weighting's regulariser) and ``update_state(step, losses)`` (advance the
    state with the step's global losses; runs after the weights of
    this step were read; global losses are means over the global batch).

    A weighting whose weights depend on *this step's* losses (the geometric
    mean's ``∂/∂L_i``, a log or Tchebycheff scalarization) sets
    ``uses_step_losses = True`` and overrides ``weights_for(losses)``: it gets
    the global losses of the step, without gradient, so that the heads'
    objective ``sum_i w_i L_i`` and the shared gradient carry the gradient of
    the non-linear scalarization, the same on every replica.
    """

    uses_step_losses = False

    def current_weights(self):
        """``[m]`` weights from the state alone; rules with ``uses_step_losses`` need none."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement current_weights()" +
            (": its weights depend on the step's losses, call weights_for(losses)"
             if self.uses_step_losses else "."))

    def weights_for(self, losses):
        """``[m]`` weights of a step whose global losses are ``losses`` (no gradient)."""
        del losses
        return self.current_weights()

    def _weights(self, global_losses):
        if not self.uses_step_losses:
            return self.current_weights()
        return self.weights_for(tf.stop_gradient(global_losses))

    def penalty(self):
        return None

    def update_state(self, step, losses):
        del step, losses

    def objective(self, losses, weights):
        # Per-replica shares sum to the global losses (only formed when the weights read them).
        global_losses = distribute.replica_sum(losses) if self.uses_step_losses else None
        out = tf.reduce_sum(tf.stop_gradient(self._weights(global_losses)) * weights * losses
                            if self.uses_step_losses else self.current_weights() * weights * losses)
        penalty = self.penalty()
        if penalty is not None:  # Not proportional to the losses: scale per replica.
            out = out + distribute.replica_share(penalty)
        return out

    def base_weights(self, step):
        """``[m]``: this step's weights times the model's loss weights (no gradient)."""
        losses = step.global_losses() if self.uses_step_losses else None
        return tf.stop_gradient(self._weights(losses)) * step.loss_weights

    def shared_gradients(self, step):
        w = self.base_weights(step)
        self.update_state(step, step.global_losses())
        logs = {f"{self.name}/{t}": w[i] for i, t in enumerate(self.tasks)}
        return weighted_shared_gradient(step, w), logs


def check_weighting(weighting, argument="weighting"):
    if weighting is not None and not isinstance(weighting, LossWeighting):
        raise ValueError(
            f"`{argument}` must be None or a loss weighting (a LossWeighting: UncertaintyWeights, "
            f"CoV, DWA, GradNorm, RLW, GLS, FAMO, STCH). Received: {argument}={weighting!r}")
    return weighting


class Weighted(Update):
    """An update rule with an optional loss ``weighting`` it composes with."""

    def __init__(self, weighting=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(weighting, dict):  # From get_config.
            weighting = keras.saving.deserialize_keras_object(weighting)
        self.weighting = check_weighting(weighting)

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        if self.weighting is not None:
            self.weighting.build_tasks(tasks)

    def objective(self, losses, weights):
        if self.weighting is None:
            return super().objective(losses, weights)
        return self.weighting.objective(losses, weights)

    def base_weights(self, step):
        """``[m]``: the weighting's weights times the model's loss weights."""
        if self.weighting is None:
            return step.loss_weights
        return self.weighting.base_weights(step)

    def update_weighting(self, step):
        if self.weighting is not None:
            self.weighting.update_state(step, step.global_losses())

    def get_config(self):
        weighting = self.weighting
        return {**super().get_config(), "weighting": (
            None if weighting is None else keras.saving.serialize_keras_object(weighting))}


@keras.saving.register_keras_serializable(package="tf_mtl")
class GradientRule(Weighted):
    """Base of rules whose weights depend on the task gradients (PCGrad, MGDA).

    ``combination(step, base)`` returns ``[m]`` coefficients ``c`` so that the
    rule's shared gradient is ``sum_i c_i g_i`` over the unscaled per-task
    gradients ``g_i``, where the rule acts on the scaled gradients
    ``base_i g_i``. IT-MTL calls it with its own weighting's base weights.
    """

    def combination(self, step, base):
        raise NotImplementedError(f"{type(self).__name__} must implement combination().")

    def shared_gradients(self, step):
        base = self.base_weights(step)
        w = self.combination(step, base)
        self.update_weighting(step)
        logs = {f"{self.name}/{t}": w[i] for i, t in enumerate(self.tasks)}
        return weighted_shared_gradient(step, w), logs
