"""Maximum Roaming (``003``): task masks that roam over a layer's channels.

The masks, their place in a network and their initialisation are those of
``tf_mtl.routing.masks`` (Bernoulli(``sharing_ratio``) per task and channel, then
constraint (3)).

``TaskRouting`` keeps its masks fixed; ``MaximumRoaming`` updates them with the
plan of Def. 1: ``roam()`` moves, for every task, one channel out of ``A_t``
(the channels it uses) and one never-visited channel in (outside ``B_t``),
until the completion rate ``r(c) = c / ((1 - p) S)`` (Eq. 6) reaches
``completion``. ``selection="random"`` samples both uniformly (Lemma 2);
``"cosine"`` is ``003``'s deterministic variant (drop the most redundant
active channel, add the least aligned never-visited one) on the weights of the kernel
that feeds the mask (its ``weights`` argument). The plan's state — masks,
``visited [T, S]``, the update counter ``c`` and the seed — are Keras variables
updated in place, deterministically from the seed and ``c`` (stateless RNG), so a
run restored mid-plan continues exactly and every replica computes the same
update without communicating.

Example:
    >>> mr = tf_mtl.routing.MaximumRoaming(num_tasks=8, sharing_ratio=0.8,
    ...                                      update_every=79)   # steps between updates
"""

import numbers

import keras
import numpy as np
import tensorflow as tf

from tf_mtl.routing.masks import TaskMasks, check_ratio

SELECTIONS = ("random", "cosine")


@keras.saving.register_keras_serializable(package="tf_mtl")
class MaximumRoaming(TaskMasks):
    """Maximum Roaming masks (``003`` Def. 1). See the module docstring.

    Args:
        num_tasks: ``T``.
        sharing_ratio: ``p`` in [0, 1].
        update_every: ``Δ`` in training steps (>= 1); configs give it in epochs.
        completion: ``r`` in [0, 1]: the plan stops once ``r(c) = c / C`` reaches
            it (Eq. 6), ``C = max_t (S - |A_t(0)|)`` the updates until every task
            has visited every channel. ``003`` writes ``C = (1 - p) S``, one
            task's expected count; the maximum over tasks is larger (e.g. 17.6
            against 12.8 on average at ``T = 8, S = 64, p = 0.8``), and it is
            used so that ``r = 1`` ends with every channel visited by every task.
        selection: ``"random"`` or ``"cosine"``.
        seed: the masks' draw and, with the update counter, every update's.

    Initialisation is ``003``'s Bernoulli(``p``) per (task, channel); the
    reference code instead gives every task exactly ``round(p S)`` channels.
    """

    def __init__(self, num_tasks, sharing_ratio, update_every, completion=1.0,
                 selection="random", seed=0, **kwargs):
        super().__init__(num_tasks, sharing_ratio, seed, **kwargs)
        if (isinstance(update_every, bool) or not isinstance(update_every, numbers.Integral)
                or update_every <= 0):
            raise ValueError(f"`update_every` must be a positive int (training steps). "
                             f"Received: update_every={update_every!r}")
        self.update_every = int(update_every)
        self.completion = check_ratio("completion", completion)
        if selection not in SELECTIONS:
            raise ValueError(f"`selection` must be one of {SELECTIONS}. "
                             f"Received: selection={selection!r}")
        self.selection = selection
        # The layer whose ``kernel [..., S]`` feeds this mask (cosine selection);
        # the encoder that places the mask sets it. Held in a closure, so Keras
        # does not track that layer a second time as this one's sublayer.
        object.__setattr__(self, "_kernel_of", lambda: None)

    @property
    def kernel_layer(self):
        return self._kernel_of()

    def follow(self, layer):
        """Sets ``kernel_layer``: ``layer``'s ``kernel`` feeds cosine selection."""
        object.__setattr__(self, "_kernel_of", lambda: layer)

    def build(self, input_shape):
        super().build(input_shape)
        self.visited = self.add_weight(
            shape=(self.num_tasks, self.channels),
            initializer=keras.initializers.Constant(self.initial_masks), trainable=False,
            name="visited", aggregation="only_first_replica")
        self.updates_done = self.add_weight(
            shape=(), dtype="int32", initializer="zeros", trainable=False, name="updates_done",
            aggregation="only_first_replica")
        self.plan_length = self.add_weight(
            shape=(), dtype="int32", trainable=False, name="plan_length",
            initializer=keras.initializers.Constant(
                int((self.channels - self.initial_masks.sum(axis=1)).max())),
            aggregation="only_first_replica")
        self.seed_state = self.add_weight(
            shape=(), dtype="int32", initializer=keras.initializers.Constant(self.seed),
            trainable=False, name="seed_state", aggregation="only_first_replica")

    @property
    def total_updates(self):
        """Updates in the plan: ``round(completion * C)`` with ``C = max_t (S - |A_t(0)|)``
        (``plan_length``), the updates after which every task has visited every channel."""
        c = tf.cast(tf.convert_to_tensor(self.plan_length), tf.float64)
        return tf.cast(tf.round(self.completion * c), tf.int32)

    def completion_rate(self):
        """``r(c)`` (Eq. 6): updates done over ``C`` (see ``total_updates``)."""
        c = tf.cast(tf.maximum(tf.convert_to_tensor(self.plan_length), 1), tf.float32)
        return tf.cast(self.updates_done, tf.float32) / c

    def roam(self, due=True, kernel=None):
        """One plan update (Def. 1) where ``due`` (a bool tensor) and the plan is not done.

        Tasks move in order (task ``t`` sees the earlier tasks' moves): every task
        with a never-visited channel gives up ``i_-`` in ``A_t`` and takes ``i_+``
        outside ``B_t``; ``"random"`` draws both uniformly, as ``003`` and its code.
        Constraint (3) is restored by a repair (``003`` updates "under constraint
        (3)" without saying how; its code does not check it): if ``i_-`` would be
        used by no task, a task ``u`` that uses ``i_+`` (one exists by (3)), drawn
        uniformly, hands ``i_+`` to ``t`` and takes ``i_-`` — ``t`` and ``u`` swap
        the two channels. Hence exactly: constraint (3), every task's channel count
        (Lemma 1.3), ``t`` gains one never-visited channel per update, so at
        ``r = 1`` every task has visited every channel (Lemma 1.1-1.2). ``u`` may
        gain ``i_-`` as a visit besides its own update's (``|B_u|`` grows by at
        least one). Lemma 2 (constant expected overlap) holds for the unrepaired
        moves; the swap keeps ``t``'s and ``u``'s counts and is rare at large
        ``p``, so the drift is small (measured in the tests), not exactly zero.

        Assigns ``tf.where(go, new, old)``: no branch, so it runs on every replica
        identically (stateless draws keyed by ``seed_state`` and the counter).
        ``kernel``: the weights feeding the mask, ``[..., S]``, for ``"cosine"``.
        Returns whether the update was due and within the plan.
        """
        masks = tf.convert_to_tensor(self.masks)
        visited = tf.convert_to_tensor(self.visited)
        count = tf.convert_to_tensor(self.updates_done)
        go = tf.logical_and(tf.convert_to_tensor(due), count < self.total_updates)
        scores = self._scores(count, kernel)
        key = tf.stack([tf.cast(self.seed_state, tf.int32), count])
        giver_score = tf.random.stateless_uniform([self.num_tasks, self.num_tasks], key + [0, 1 << 20])
        lowest = tf.constant(-np.inf, tf.float32)
        eye = tf.eye(self.num_tasks)

        for t in range(self.num_tasks):  # in order: task t sees the earlier tasks' moves
            row, seen = masks[t], visited[t]
            leave_score, enter_score = scores(masks[t], t)
            enter = tf.argmax(tf.where(seen > 0, lowest, enter_score), output_type=tf.int32)
            leave = tf.argmax(tf.where(row > 0, leave_score, lowest), output_type=tf.int32)
            moves = go & tf.reduce_any(seen == 0)
            hot_in, hot_out = tf.one_hot(enter, self.channels), tf.one_hot(leave, self.channels)
            # Repair of (3): i_- used by t only -> a holder u of i_+ swaps with t.
            holders = tf.gather(masks, enter, axis=1) * (1.0 - eye[t])          # [T]
            giver = tf.argmax(tf.where(holders > 0, giver_score[t], lowest), output_type=tf.int32)
            exclusive = tf.reduce_sum(tf.gather(masks, leave, axis=1)) < 2
            repair = tf.cast(moves & exclusive, tf.float32) * tf.one_hot(giver, self.num_tasks)
            step = eye[t] * tf.cast(moves, tf.float32)
            masks = masks + (step - repair)[:, None] * (hot_in - hot_out)[None]
            visited = tf.maximum(visited, step[:, None] * hot_in[None] + repair[:, None] * hot_out[None])
        self.masks.assign(masks)
        self.visited.assign(visited)
        self.updates_done.assign(tf.where(go, count + 1, count))
        return go

    def on_train_step(self, iterations):
        """The train step's hook (``tf_mtl.routing.task_paths.after_step``): roams every
        ``update_every`` optimizer steps; the kernel of ``kernel_layer`` (set by
        the encoder) feeds cosine selection."""
        kernel = None
        if self.kernel_layer is not None:
            kernel = tf.convert_to_tensor(self.kernel_layer.kernel)
        due = tf.equal(tf.math.floormod(tf.cast(iterations, tf.int64), self.update_every), 0)
        self.roam(due, kernel)

    def _scores(self, count, kernel):
        """``scores(row, t) -> (leave, enter)`` ``[S]`` for task ``t`` with active
        channels ``row``: the task takes the highest-scoring allowed channel.
        ``"random"``: i.i.d. uniforms (a uniform choice within any set);
        ``"cosine"``: ``cosine_scores`` on ``t``'s current ``A_t``."""
        if self.selection == "cosine":
            if kernel is None:
                raise ValueError(f"MaximumRoaming '{self.name}' with selection='cosine' needs the "
                                 "kernel feeding it. Received: kernel=None")
            cos = _abs_cosines(kernel)
            return lambda row, t: tuple(s[0] for s in cosine_scores(row[None], cos=cos))
        key = tf.stack([tf.cast(self.seed_state, tf.int32), count])
        noise = tf.random.stateless_uniform([2, self.num_tasks, self.channels], key)
        return lambda row, t: (noise[0, t], noise[1, t])

    def get_config(self):
        return {**super().get_config(), "update_every": self.update_every,
                "completion": self.completion, "selection": self.selection}


def cosine_scores(masks, kernel=None, cos=None):
    """``003``'s deterministic selection as scores ``(leave, enter) [T, S]`` (each
    task takes the highest-scoring allowed channel).

    ``i_- = argmax_{u in A_t} sum_{v in A_t \\ u} |cos(K_u, K_v)|`` (discard the
    active channel most redundant with the others) and ``i_+ = argmin_{u outside
    B_t} sum_{v in A_t} |cos(K_u, K_v)|`` (add the never-visited channel least
    aligned with the active ones), ``K_u`` channel ``u``'s weights
    (``kernel [..., S]``): ``003``'s text and its code (``least_align``). The
    formulas printed in ``003`` swap argmin and argmax (and drop the absolute
    value); the text's intent is followed.
    """
    cos = _abs_cosines(kernel) if cos is None else cos
    to_active = tf.matmul(masks, cos)                               # [T, S]: sum_{v in A_t} |cos(u, v)|
    own = tf.linalg.diag_part(cos)[None, :]
    return to_active - own, -to_active


def _abs_cosines(kernel):
    """``|cos(K_u, K_v)|`` ``[S, S]`` between the channels of ``kernel [..., S]``."""
    k = tf.reshape(tf.cast(kernel, tf.float32), [-1, kernel.shape[-1]])
    k = tf.math.l2_normalize(k, axis=0)
    return tf.abs(tf.matmul(k, k, transpose_a=True))
