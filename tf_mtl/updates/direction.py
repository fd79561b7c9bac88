"""Rules whose shared gradient is a direction built from state, not a weight row.

Most rules end as task weights over *this step's* per-task gradients
(``weighted.py``). Some do not: DB-MTL and MoCo step along exponential moving
averages of the per-task gradients, GradDrop along an elementwise-masked sum.
Their direction is a list of tensors, one per shared variable, and their state
has the size of the per-task gradients.

``PerTaskState`` keeps such state: for each name in ``per_task_state``, one
non-trainable ``[m, *var.shape]`` variable per shared variable. ``build_tasks``
only gets task names (``MultiTaskModel`` calls it before the encoder is built),
so the variables are made by ``build_for_variables(variables)``: called by the
rule itself on its first step (inside the first trace of the train function,
where TensorFlow lifts variable creation out of the graph, as it does for an
optimizer built there), or by ``load_own_variables`` when a saved model is
loaded, from the shapes in the file. A model hook that calls
``build_for_variables(model.shared_variables)`` before the first trace would make
the first path unnecessary; the rule works without one (the variables made on
the first step are marked, so a lookahead in that step completes the snapshot
of non-trainable values ``record_step`` took before they existed).

``DirectionRule`` is the base of direction rules. A subclass implements
``_direction(step, base) -> (grads, logs)``: the global direction (summed over
replicas, the same on every replica) for the scaled task losses ``base_i L_i``
(``base`` = the weighting's weights times the model's loss weights), advancing
the rule's state once. ``shared_gradients`` adds the regularization gradient;
IT-MTL calls ``direction(step, base)`` once per step to score the rule as a
candidate (``ITMTL(["all", DBMTL()])``), so the state advances once per step
whether or not the candidate is applied — as a ``GradientRule`` candidate's
does.
"""

import keras
import tensorflow as tf

from tf_mtl import lookahead
from tf_mtl.updates.weighted import Weighted, state_variable


class PerTaskState:
    """Mixin of rules with state of per-task-gradient size (``[m, *var.shape]``).

    ``per_task_state`` names the state; ``task_state(name)`` returns its
    variables, one per shared variable, after ``build_for_variables``.
    """

    per_task_state = ()

    def build_for_variables(self, variables):
        """Creates the state for ``variables`` (the shared ones); checks it if it exists."""
        if not self.per_task_state:  # GradDrop: a direction rule keeping no such state.
            return
        shapes = [tuple(v.shape) for v in variables]
        if getattr(self, "_per_task", None) is not None:
            have = [tuple(v.shape[1:]) for v in self._per_task[self.per_task_state[0]]]
            if have != shapes:
                raise ValueError(
                    f"{self.name} keeps state for shared variables of shapes {have}; this model's "
                    f"are different. Received: shared variables of shapes {shapes}")
            return
        with tf.init_scope():  # Eagerly, outside the traced (maybe XLA-compiled) step.
            self._create_per_task(shapes)
        for v in self._per_task.values():  # Not in this step's snapshot (lookahead.py).
            for variable in v:
                setattr(variable, lookahead.CREATED_IN_STEP, True)

    def _create_per_task(self, shapes):
        m = len(self.tasks)
        self._per_task = {
            name: [state_variable(self, f"{name}_{k}", (m, *shape))
                   for k, shape in enumerate(shapes)]
            for name in self.per_task_state}

    def task_state(self, name):
        return self._per_task[name]

    def load_own_variables(self, store):
        # A loaded model has not stepped: its state is created from the saved shapes.
        if self.per_task_state and getattr(self, "_per_task", None) is None:
            fixed = len(self._trainable_variables) + len(self._non_trainable_variables)
            extra = len(store.keys()) - fixed
            if extra > 0 and extra % len(self.per_task_state) == 0:
                k = extra // len(self.per_task_state)
                self._create_per_task([tuple(store[str(fixed + i)].shape[1:]) for i in range(k)])
        super().load_own_variables(store)


def check_rate(value, argument, low=0.0, high=None, low_open=False, high_open=False):
    """``value`` as a float within the bounds, or a ``ValueError`` naming ``argument``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}" \
                 f"{')' if high_open or high is None else ']'}"
        raise ValueError(f"`{argument}` must be a number in {bounds}. Received: "
                         f"{argument}={value!r}")
    return value


def decayed(rate, power, t):
    """``rate / t ** power`` at step ``t`` (float32 tensor, ``t >= 1``)."""
    return rate / tf.pow(tf.cast(t, tf.float32), power)


@keras.saving.register_keras_serializable(package="tf_mtl")
class DirectionRule(PerTaskState, Weighted):
    """Base of rules whose shared gradient is a direction built from state.

    Subclasses implement ``_direction(step, base)`` returning ``(grads, logs)``:
    one global tensor per shared variable (no regularization gradient) and
    ``{name: scalar}``; it advances the state once.
    """

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self._per_task = None
        self.steps = state_variable(self, "steps", (), dtype="int64")

    def _ensure_state(self, step):
        if self.per_task_state:
            self.build_for_variables(step.shared_variables)

    def _next_step(self):
        """This step's number ``t`` (1 on the first step); advances the counter."""
        t = tf.convert_to_tensor(self.steps) + 1
        self.steps.assign(t)
        return t

    def _direction(self, step, base):
        raise NotImplementedError(f"{type(self).__name__} must implement _direction().")

    def direction(self, step, base):
        """The global direction for base weights ``base`` ``[m]``; advances the state once."""
        self._ensure_state(step)
        return self._direction(step, tf.cast(base, tf.float32))[0]

    def shared_gradients(self, step):
        self._ensure_state(step)
        grads, logs = self._direction(step, tf.cast(self.base_weights(step), tf.float32))
        self.update_weighting(step)
        extra = step.regularization_gradient()
        if extra is not None:
            grads = [g + tf.cast(e, g.dtype) for g, e in zip(grads, extra)]
        return grads, logs


def norms(per_task):
    """``[m]`` Euclidean norms of the per-task tensors (over all variables)."""
    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.reshape(tf.square(g), [g.shape[0], -1]), 1)
                             for g in per_task]))


def scale_rows(per_task, scale):
    """Each task's tensors times ``scale[i]``: ``[m, *shape] * [m]``."""
    return [g * tf.reshape(tf.cast(scale, g.dtype), [-1] + [1] * (len(g.shape) - 1))
            for g in per_task]


def weighted_sum(per_task, weights):
    """``sum_i weights[i] * per_task[i]`` per variable."""
    return [tf.tensordot(tf.cast(weights, g.dtype), g, axes=1) for g in per_task]
