"""Multi-task soft actor-critic (SAC, Haarnoja et al. 2018) with one policy and one critic
shared by every task (``001`` §5.1.3, App. D.3).

A state is the observation with the task's one-hot appended (Meta-World's MT-SAC
convention). Each gradient step takes one batch per task (``[m, B, ...]``: ``001`` D.3:
128 per task) and, with softlearning's defaults (lr 3e-4, ``gamma`` 0.99, ``tau`` 5e-3,
reward scale 1, Adam everywhere with ``tf.compat.v1.train.AdamOptimizer``'s epsilon 1e-8,
softlearning's, not Keras's default 1e-7):

* soft target, held constant (``soft_target``):
  ``y = c r + gamma (1 - terminal) (min_k Q_hat_k(s', a') - alpha_t log pi(a'|s'))``,
  ``a' ~ pi(.|s')``;
* critic: task ``t``'s ``J_Q`` is ``0.5 mean((Q_1 - y)^2) + 0.5 mean((Q_2 - y)^2)`` on its
  batch; the critic steps on their sum through its own ``MultiTaskModel.train_step``
  (``tf_mtl.rl.critic_transference``), where the transference probes measure;
* policy: ``sum_t mean_t(alpha_t log pi(a|s) - min_k Q_k(s, a))``, ``a ~ pi(.|s)``
  reparameterized (``policy_loss``);
* temperature: ``sum_t -mean_t(log alpha_t (log pi(a|s) + H_target))`` with
  ``H_target = -|A|`` (softlearning's ``target_entropy='auto'``; ``temperature_loss``),
  ``log alpha`` starting at 0;
* targets: ``theta_hat <- tau theta + (1 - tau) theta_hat`` after every step.

Every loss, gradient and the target are computed from the weights the step starts from,
then applied (softlearning runs them in one ``session.run``).

Conventions and choices: the step's loss is the *sum* over tasks of per-task batch means
(every task weighs the same, whatever its rewards' scale; Adam makes the overall scale
immaterial). ``temperature="per_task"`` (default) learns one ``alpha`` per task, as
Meta-World's MT-SAC does (Yu et al. 2019): one shared policy explores each task as much
as that task needs; ``"shared"`` is softlearning's single ``alpha``. ``001`` does not say
which it used. All noise is stateless (``seed``, step counter), so a run is a function of
its seed.
"""

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.rl.critic import TwinQNetwork, check_tau, polyak_update
from tf_mtl.rl.critic_transference import critic_model
from tf_mtl.rl.policy import TanhGaussianPolicy
from tf_mtl.rl.replay import FIELDS

# softlearning (at 001's time) used tf.compat.v1.train.AdamOptimizer: epsilon 1e-8.
ADAM_EPSILON = 1e-8

TEMPERATURES = ("per_task", "shared")


def soft_target(rewards, terminals, next_q, next_log_prob, alpha, discount=0.99,
                reward_scale=1.0):
    """``c r + gamma (1 - terminal) (min_k Q_hat_k(s', a') - alpha log pi(a'|s'))`` ``[B]``;
    ``next_q`` is ``[B, 2]`` (the target critics at ``(s', a')``), ``alpha`` ``[B]`` or scalar.

    Example:
        >>> y = tf_mtl.rl.soft_target(1.0, 0.0, tf.constant([[2.0, 3.0]]), tf.constant([-1.0]),
        ...                           alpha=0.5)   # 1 + 0.99 (2 + 0.5)
        >>> float(y[0])
        3.47...
    """
    next_value = tf.reduce_min(next_q, axis=-1) - alpha * next_log_prob
    return reward_scale * rewards + discount * (1.0 - terminals) * next_value


def temperature_loss(log_alpha, log_prob, target_entropy):
    """``-mean(log alpha (log pi + H_target))`` with ``log pi`` held constant (softlearning).

    Example:
        >>> log_pi = tf.constant([-2.0, -4.0])   # -mean(0.5 * [-6, -8])
        >>> float(tf_mtl.rl.temperature_loss(tf.constant(0.5), log_pi, target_entropy=-4.0))
        3.5
    """
    return -tf.reduce_mean(log_alpha * tf.stop_gradient(log_prob + target_entropy))


def policy_loss(alpha, log_prob, q):
    """``mean(alpha log pi(a|s) - min_k Q_k(s, a))``, ``q`` ``[B, 2]``.

    Example:
        >>> q = tf.constant([[1.0, 3.0]])   # 0.5 * -2 - min(1, 3)
        >>> float(tf_mtl.rl.sac.policy_loss(0.5, tf.constant([-2.0]), q))
        -2.0
    """
    return tf.reduce_mean(alpha * log_prob - tf.reduce_min(q, axis=-1))


def _positive(name, value, kind=float):
    ok = isinstance(value, (int, float) if kind is float else int) and not isinstance(
        value, bool) and value > 0
    if not ok:
        raise ValueError(f"`{name}` must be a positive {kind.__name__}. "
                         f"Received: {name}={value!r}")
    return kind(value)


class MultiTaskSAC:
    """One tanh-Gaussian policy, one twin critic (a ``MultiTaskModel``) and its targets,
    shared by ``tasks``; one gradient step per ``train_step`` call.

    Args:
        tasks: task names (sorted; task ``i`` of a batch is ``tasks[i]``).
        observation_dim, action_dim: environment sizes (Meta-World: 39, 4).
        hidden_units: policy's and each critic's widths (``001`` D.3: ``[400] * 6``).
        learning_rate, discount, tau, reward_scale: softlearning's defaults.
        target_entropy: ``"auto"`` (``-action_dim``) or a number.
        temperature: ``"per_task"`` or ``"shared"`` (module docstring).
        probes: the critic's ``Transference`` probes
            (``critic_transference.transference_probes``).
        update: the critic's update rule (default equal weights, i.e. plain SAC;
            ``tf_mtl.updates.ITMTL`` for IT-MTL on the critic).
        seed: the run's seed: initial weights (``keras.utils.set_random_seed``, which
            also seeds Python's and NumPy's global generators) and every noise draw.

    Example:
        >>> sac = MultiTaskSAC(["push-v3", "reach-v3"], 39, 4, hidden_units=[400] * 6)
        >>> logs = sac.train_step({"observations": obs, ...})   # each [m, B, ...]
    """

    def __init__(self, tasks, observation_dim, action_dim, hidden_units=(400,) * 6,
                 learning_rate=3e-4, discount=0.99, tau=5e-3, reward_scale=1.0,
                 target_entropy="auto", temperature="per_task", probes=(), update=None,
                 seed=0):
        tasks = list(tasks)
        if not tasks or tasks != sorted(set(tasks)):
            raise ValueError(f"`tasks` must be distinct names in sorted order. "
                             f"Received: tasks={tasks!r}")
        if temperature not in TEMPERATURES:
            raise ValueError(f"`temperature` must be one of {TEMPERATURES}. "
                             f"Received: temperature={temperature!r}")
        if not (target_entropy == "auto" or (isinstance(target_entropy, (int, float))
                                             and not isinstance(target_entropy, bool))):
            raise ValueError("`target_entropy` must be 'auto' or a number. "
                             f"Received: target_entropy={target_entropy!r}")
        self.tasks, self.num_tasks = tasks, len(tasks)
        self.observation_dim = _positive("observation_dim", observation_dim, int)
        self.action_dim = _positive("action_dim", action_dim, int)
        self.learning_rate = _positive("learning_rate", learning_rate)
        self.discount = float(discount)
        self.tau, self.reward_scale = check_tau(tau), _positive("reward_scale", reward_scale)
        self.target_entropy = float(-action_dim if target_entropy == "auto" else target_entropy)
        self.temperature, self.seed = temperature, int(seed)
        keras.utils.set_random_seed(self.seed)  # Initial weights.
        self.policy = TanhGaussianPolicy(action_dim, hidden_units, name="policy")
        self.critic = critic_model(tasks, hidden_units, probes, update)
        self.target_critic = TwinQNetwork(hidden_units, name="target_twin_q")
        self.log_alpha = keras.Variable(
            np.zeros([self.num_tasks if temperature == "per_task" else 1], np.float32),
            name="log_alpha")
        self.gradient_steps = keras.Variable(0, dtype="int64", trainable=False,
                                             name="gradient_steps")
        self.policy_optimizer = keras.optimizers.Adam(self.learning_rate, epsilon=ADAM_EPSILON)
        self.alpha_optimizer = keras.optimizers.Adam(self.learning_rate, epsilon=ADAM_EPSILON)
        self.critic.compile(optimizer=keras.optimizers.Adam(self.learning_rate,
                                                            epsilon=ADAM_EPSILON))
        self._build()
        self._step = tf.function(self._train_step)
        self._act = tf.function(self._actions)

    def _build(self):
        state_dim = self.observation_dim + self.num_tasks
        self.policy.build((None, state_dim))
        self.target_critic.build((None, state_dim + self.action_dim))
        self.critic.build_for({t: tf.zeros([1, state_dim + self.action_dim])
                               for t in self.tasks})
        self.critic.optimizer.build(self.critic.trainable_variables)
        self.policy_optimizer.build(self.policy.trainable_variables)
        self.alpha_optimizer.build([self.log_alpha])
        polyak_update(self.target_critic.variables, self.critic.encoder.variables, 1.0)

    def state_variables(self):
        """Everything a resumed run needs, in a fixed order (checkpoints)."""
        return (list(self.critic.variables) + list(self.critic.optimizer.variables)
                + list(self.target_critic.variables) + list(self.policy.variables)
                + list(self.policy_optimizer.variables) + [self.log_alpha]
                + list(self.alpha_optimizer.variables) + [self.gradient_steps])

    def states(self, observations, task_index):
        """``s ++ one_hot(task)``: ``observations`` ``[N, d]``, ``task_index`` ``[N]``."""
        one_hot = tf.one_hot(task_index, self.num_tasks, dtype=tf.float32)
        return tf.concat([tf.cast(observations, tf.float32), one_hot], axis=-1)

    def alpha(self, task_index):
        """``alpha`` of each row's task ``[N]``."""
        alpha = tf.exp(tf.convert_to_tensor(self.log_alpha))
        return tf.gather(alpha, task_index) if self.temperature == "per_task" else alpha[0]

    def act(self, observations, seed, deterministic=False):
        """Actions ``[m, action_dim]`` for one observation per task ``[m, d]``; ``seed``
        is two ints (stateless noise)."""
        return self._act(tf.constant(observations, tf.float32),
                         tf.constant(seed, tf.int64), tf.constant(deterministic)).numpy()

    def _actions(self, observations, seed, deterministic):
        states = self.states(observations, tf.range(self.num_tasks))
        return tf.cond(deterministic, lambda: self.policy(states),
                       lambda: self.policy.sample(states, seed)[0])

    def train_step(self, batch):
        """One gradient step on ``batch`` ``{field: [m, B, ...]}`` (``replay.FIELDS``).

        Returns ``{name: float}``: this step's policy and temperature losses, the
        temperatures after it, and ``critic_loss``, the critic's running mean of the
        summed ``J_Q`` since its metrics were last reset (Keras's loss tracker)."""
        return {k: v.numpy() for k, v in self._step(
            {k: tf.constant(batch[k], tf.float32) for k in FIELDS}).items()}

    def _seed(self, stream):
        return tf.stack([tf.constant(self.seed * 4 + stream, tf.int64),
                         tf.convert_to_tensor(self.gradient_steps)])

    def _train_step(self, batch):
        m, size = self.num_tasks, tf.shape(batch["rewards"])[1]
        task = tf.repeat(tf.range(m), size)

        def rows(name):
            value = batch[name]
            return tf.reshape(value, tf.concat([[-1], tf.shape(value)[2:]], 0))

        states, next_states = (self.states(rows(k), task)
                               for k in ("observations", "next_observations"))
        actions = rows("actions")
        alpha = self.alpha(task)
        next_actions, next_log_prob = self.policy.sample(next_states, self._seed(1))
        next_q = self.target_critic(tf.concat([next_states, next_actions], -1))
        targets = tf.stop_gradient(soft_target(
            rows("rewards"), rows("terminals"), next_q, next_log_prob, alpha,
            self.discount, self.reward_scale))

        def per_task(values):  # rows -> [m, B]
            return tf.reshape(values, [m, -1])

        with tf.GradientTape(persistent=True) as tape:
            new_actions, log_prob = self.policy.sample(states, self._seed(2))
            q = self.critic.encoder(tf.concat([states, new_actions], -1))
            actor = tf.reduce_sum(tf.reduce_mean(per_task(
                alpha * log_prob - tf.reduce_min(q, -1)), axis=1))
            log_alpha = (tf.gather(self.log_alpha, task) if self.temperature == "per_task"
                         else self.log_alpha[0])
            temperature = -tf.reduce_sum(tf.reduce_mean(per_task(
                log_alpha * tf.stop_gradient(log_prob + self.target_entropy)), axis=1))
        policy_grads = tape.gradient(actor, self.policy.trainable_variables)
        # Dense: through tf.gather the gradient is IndexedSlices with one slice per row,
        # and Adam's second moment would then sum the rows' squares, not square their sum.
        alpha_grads = [tf.convert_to_tensor(g) for g in tape.gradient(temperature,
                                                                       [self.log_alpha])]
        # Everything above reads the weights the step starts from: nothing is applied
        # before all of it is computed.
        with tf.control_dependencies([targets, actor, temperature] + policy_grads
                                     + alpha_grads):
            x = dict(zip(self.tasks, tf.split(tf.concat([states, actions], -1), m)))
            y = dict(zip(self.tasks, tf.split(targets[:, None], m)))
            logs = self.critic.train_step((x, y))
        with tf.control_dependencies(tf.nest.flatten(logs)):
            self.policy_optimizer.apply(policy_grads, self.policy.trainable_variables)
            self.alpha_optimizer.apply(alpha_grads, [self.log_alpha])
            polyak_update(self.target_critic.variables, self.critic.encoder.variables,
                          self.tau)
            self.gradient_steps.assign_add(1)
        return {"policy_loss": actor, "temperature_loss": temperature,
                "critic_loss": logs["loss"],
                **{f"alpha/{t}": a for t, a in zip(
                    self.tasks, tf.unstack(tf.exp(tf.broadcast_to(
                        tf.convert_to_tensor(self.log_alpha), [m]))))}}
