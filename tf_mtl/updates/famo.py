"""FAMO (Liu et al., NeurIPS 2023, "FAMO: Fast Adaptive Multitask Optimization").

Task logits ``ξ`` (state, init 0), ``z = softmax(ξ)``, shifted losses
``D_i = L_i - min_losses_i + ε``. The update direction is

    ``d = sum_i c z_i / D_i ∇L_i``,  ``c = (sum_i z_i / D_i)^{-1}``,

the gradient of ``sum_i (z_i / c) log D_i`` (the authors' loss) with ``c``
held constant: weights ``w_i = c z_i / D_i`` (they sum to 1) from this step's
global losses and the logits. After a step, the logits follow the decrease of
the log losses it caused, ``δ = J_zᵀ (log D(L_t) − log D(L_{t+1}))``
(``J_z = diag(z) − z zᵀ`` the softmax Jacobian), regularised by ``γ ξ``:

* ``logits_optimizer="adam"`` (default; the authors' code and LibMTL):
  PyTorch's Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8, bias-corrected) at
  ``learning_rate`` on the gradient ``δ + γ ξ`` (``weight_decay=γ``).
* ``logits_optimizer="sgd"`` (the paper's Algorithm 1): ``ξ ← ξ − β (δ + γ ξ)``.

Defaults: ``β = learning_rate = 0.025``, ``γ = 1e-3`` (the authors' runs on
NYUv2, CelebA and QM9; 0.01 on Cityscapes), ``min_losses = 0``, ``ε = 1e-8``.
The authors clip the shared gradient's norm to 1 (``max_norm``); in Keras that
is the optimizer's ``global_clipnorm=1.0``, not part of this rule.

Which losses are ``L_{t+1}``: the authors (and LibMTL) run an extra forward
pass after the optimizer step, on the *same* batch. A rule here lives inside
one train step and sees no forward after the step, so ``L_{t+1}`` is the next
step's global losses (the new parameters on the next batch): at step ``t+1``
the logits are first updated with ``δ = J_zᵀ (log D(L_t) − log D(L_{t+1}))``
and the new logits give this step's weights — the authors' order, with the
losses after the step measured on the next batch instead of the last one (no
extra forward; the batch noise enters ``δ``). The first step has no previous
losses and leaves ``ξ = 0``.

The model's loss weights ``lw`` multiply each task's term
(``sum_i w_i lw_i ∇L_i``); ``w`` and ``δ`` use the unweighted losses.
Every ``D_i`` must be ``> 0``: a step whose losses are not above ``min_losses``
raises ``InvalidArgumentError`` in graph mode (XLA drops the check).
"""

import keras
import tensorflow as tf

from tf_mtl.updates.weighted import LossWeighting, state_variable

OPTIMIZERS = ("adam", "sgd")
ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-8   # torch.optim.Adam's defaults


def _number(name, value, ok, condition):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ValueError(f"`{name}` must be a number {condition}. Received: {name}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="tf_mtl")
class FAMO(LossWeighting):
    """Fast adaptive multitask optimization: balance the rates of loss decrease.

    Args:
        learning_rate: ``β > 0``, the logits' step size (paper: 0.025).
        gamma: ``γ >= 0``, the logits' weight decay (paper: 1e-3).
        min_losses: a number, or ``{task: number}`` (missing tasks 0): the
            losses' lower bounds ``L_i^*`` (0 for the usual losses).
        epsilon: ``ε > 0`` added to ``L - L^*`` (paper: 1e-8).
        logits_optimizer: ``"adam"`` (the authors' code) or ``"sgd"`` (the
            paper's Algorithm 1).

    Example:
        >>> update = tf_mtl.updates.FAMO()
        >>> update = tf_mtl.updates.FAMO(gamma=0.01)   # the authors' Cityscapes runs
    """

    uses_step_losses = True

    def __init__(self, learning_rate=0.025, gamma=1e-3, min_losses=0.0, epsilon=1e-8,
                 logits_optimizer="adam", **kwargs):
        kwargs.setdefault("name", "famo")
        super().__init__(**kwargs)
        self.learning_rate = _number("learning_rate", learning_rate, lambda v: v > 0, "> 0")
        self.gamma = _number("gamma", gamma, lambda v: v >= 0, ">= 0")
        self.epsilon = _number("epsilon", epsilon, lambda v: v > 0, "> 0")
        if isinstance(min_losses, dict):
            for v in min_losses.values():
                _number("min_losses", v, lambda v: abs(v) < float("inf"), "(finite) per task")
            self.min_losses = {str(t): float(v) for t, v in min_losses.items()}
        else:
            self.min_losses = _number("min_losses", min_losses,
                                      lambda v: abs(v) < float("inf"), "or a dict of numbers")
        if logits_optimizer not in OPTIMIZERS:
            raise ValueError(f"`logits_optimizer` must be one of {OPTIMIZERS}. "
                             f"Received: logits_optimizer={logits_optimizer!r}")
        self.logits_optimizer = logits_optimizer

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        if isinstance(self.min_losses, dict):
            unknown = sorted(set(self.min_losses) - set(self.tasks))
            if unknown:
                raise ValueError(f"`min_losses` names tasks the model does not have: {unknown} "
                                 f"(tasks: {self.tasks}). Received: min_losses={self.min_losses}")
            self._floor = [self.min_losses.get(t, 0.0) for t in self.tasks]
        else:
            self._floor = [self.min_losses] * len(self.tasks)
        m = (len(self.tasks),)
        self.logits = state_variable(self, "logits", m)
        self.previous_losses = state_variable(self, "previous_losses", m, "ones")
        self.has_previous = state_variable(self, "has_previous", ())
        self.adam_m = state_variable(self, "adam_m", m)
        self.adam_v = state_variable(self, "adam_v", m)
        self.adam_steps = state_variable(self, "adam_steps", ())

    def _log_shifted(self, losses, check=True):
        shifted = losses - tf.constant(self._floor, tf.float32) + self.epsilon
        if not check:  # The previous step's losses were checked when they were current.
            return tf.math.log(shifted)
        check = tf.debugging.assert_positive(
            shifted, message="FAMO needs every task loss above its min_losses. "
                             "Received: losses - min_losses + epsilon=")
        with tf.control_dependencies([check]):
            return tf.math.log(shifted)

    def _advanced(self, losses):
        """The state after this step's logit update (``δ`` from the previous
        step's losses to ``losses``): ``(logits, adam_m, adam_v, adam_steps)``."""
        xi = tf.convert_to_tensor(self.logits)
        m, v = tf.convert_to_tensor(self.adam_m), tf.convert_to_tensor(self.adam_v)
        n = tf.convert_to_tensor(self.adam_steps)
        z = tf.nn.softmax(xi)
        decrease = self._log_shifted(tf.convert_to_tensor(self.previous_losses), check=False) \
            - self._log_shifted(losses)
        delta = z * (decrease - tf.reduce_sum(z * decrease))   # J_zᵀ δ; J_z is symmetric
        grad = delta + self.gamma * xi
        if self.logits_optimizer == "sgd":
            new = (xi - self.learning_rate * grad, m, v, n)
        else:
            n1 = n + 1.0
            m1 = ADAM_BETA_1 * m + (1.0 - ADAM_BETA_1) * grad
            v1 = ADAM_BETA_2 * v + (1.0 - ADAM_BETA_2) * tf.square(grad)
            denom = tf.sqrt(v1) / tf.sqrt(1.0 - ADAM_BETA_2 ** n1) + ADAM_EPSILON
            new = (xi - self.learning_rate / (1.0 - ADAM_BETA_1 ** n1) * m1 / denom, m1, v1, n1)
        ready = tf.convert_to_tensor(self.has_previous) > 0   # no update on the first step
        return tuple(tf.where(ready, a, b) for a, b in zip(new, (xi, m, v, n)))

    def weights_for(self, losses):
        z = tf.nn.softmax(self._advanced(losses)[0])
        inverse = z * tf.exp(-self._log_shifted(losses))    # z_i / D_i
        return inverse / tf.reduce_sum(inverse)

    def current_weights(self):
        raise TypeError("FAMO weights depend on the step's losses: use weights_for(losses).")

    def update_state(self, step, losses):
        del step
        losses = tf.stop_gradient(losses)
        for var, value in zip((self.logits, self.adam_m, self.adam_v, self.adam_steps),
                              self._advanced(losses)):
            var.assign(value)
        self.previous_losses.assign(losses)
        self.has_previous.assign(1.0)

    def get_config(self):
        return {**super().get_config(), "learning_rate": self.learning_rate,
                "gamma": self.gamma, "min_losses": self.min_losses, "epsilon": self.epsilon,
                "logits_optimizer": self.logits_optimizer}
