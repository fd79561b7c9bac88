"""IT-MTL (``001`` §4, Alg. 1): apply the candidate gradient with the highest total transference.

Each candidate ``c`` is a weight row over the per-task shared gradients: a task
name or a ``|``-joined subset (``"left"``, ``"left|right"``; ``"all"`` is every
task) steps along ``sum_{i in S} b_i g_i``, and a gradient rule (``PCGrad()``,
``MGDA(upper_bound=False)``) along its combination, where ``b`` are the base
weights (the ``weighting``'s weights times the model's loss weights; just the
loss weights without one). A direction rule (``DBMTL()``, ``MoCo()``,
``GradDrop()``: ``tf_mtl.updates.direction``) is a candidate too: its direction
(formed once per step, its state advancing once whether or not it is applied)
is scored in the same lookahead chunks as the rows
(``transference.compute(..., directions=...)``). Each step:

1. the per-task gradients, once;
2. every candidate's total transference ``Z_c = sum_j (1 - L_j(after_c) / L_j)``
   with the optimizer-faithful lookahead (``lookahead="exact"``; momentum/Adam
   state, schedule, weight decay, clipping, regularizers), or its first-order
   form ``-<sum_j ∇L_j / L_j, Δ_c>`` (``"first_order"``) — both by
   ``tf_mtl.transference.compute``, the code that measures transference.
   ``Δ_c`` is the optimizer's real update for the candidate, where ``001``
   §4.1 writes the raw candidate gradient: the same choice under SGD with or
   without momentum (``Δ`` is affine in the gradient with a positive factor),
   possibly another under Adam or clipping, where the optimizer's update is
   what the step applies;
3. the best candidate's gradient (``combine`` of the gradients of step 1) goes
   through the real optimizer; the heads get the weighting's objective as usual.

Ties go to the first candidate in the order given. A target whose loss
*before* the step is zero or non-finite is left out of every candidate's sum
alike (``compute`` marks it invalid) and counted (candidate × target entries)
in ``itmtl/skipped``. A candidate whose step sends a valid target's loss to
inf or NaN scores ``-inf`` (``001`` Eq. 2: ``1 - inf / L = -inf``) and is never
chosen while another candidate stays finite; such entries are counted in
``itmtl/overflowed``. When every candidate overflows, all score ``-inf`` and the
first candidate is applied (the tie rule): no candidate is better, and the
count tells. ``last_scores`` (one per candidate) and ``last_choice`` are
variables; per epoch the logs carry the fraction of steps each candidate was
chosen (``itmtl/chosen/<candidate>``).

Configurations, not code: IT-MTL over a MultiMNIST pair is
``ITMTL(["left", "right", "all"])``; IT-PCGrad ``ITMTL(["all", PCGrad()])``;
IT-UW-PCGrad ``ITMTL(["all", PCGrad()], weighting=UncertaintyWeights())``;
``lookahead="first_order"`` gives the ``‡`` variants.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tf_mtl import transference
from tf_mtl.gradients import combine
from tf_mtl.updates.direction import DirectionRule
from tf_mtl.updates.weighted import GradientRule, Weighted, state_variable

LOOKAHEADS = ("exact", "first_order")


class ChoiceFraction(keras.metrics.Metric):
    """Per-epoch fraction of steps each candidate was chosen (NaN before any step)."""

    def __init__(self, names, prefix, **kwargs):
        super().__init__(**kwargs)
        self.names, self.prefix = list(names), prefix
        self.counts = self.add_variable(shape=(len(self.names),), initializer="zeros",
                                        name="counts", aggregation="only_first_replica")
        self.skipped = self.add_variable(shape=(), initializer="zeros", name="skipped",
                                         aggregation="only_first_replica")
        self.overflowed = self.add_variable(shape=(), initializer="zeros", name="overflowed",
                                            aggregation="only_first_replica")

    def log_names(self):
        return ([f"{self.prefix}/chosen/{n}" for n in self.names]
                + [f"{self.prefix}/skipped", f"{self.prefix}/overflowed"])

    def update_state(self, choice, skipped, overflowed):
        self.counts.assign_add(tf.one_hot(choice, len(self.names)))
        self.skipped.assign_add(tf.cast(skipped, tf.float32))
        self.overflowed.assign_add(tf.cast(overflowed, tf.float32))

    def result(self):
        counts = tf.convert_to_tensor(self.counts)
        total = tf.reduce_sum(counts)
        frac = tf.where(total > 0, counts / tf.maximum(total, 1.0), math.nan)
        out = {name: frac[i] for i, name in enumerate(self.log_names()[:-2])}
        out[f"{self.prefix}/skipped"] = tf.convert_to_tensor(self.skipped)
        out[f"{self.prefix}/overflowed"] = tf.convert_to_tensor(self.overflowed)
        return out


def _candidate_name(candidate):
    return candidate if isinstance(candidate, str) else candidate.name


@keras.saving.register_keras_serializable(package="tf_mtl")
class ITMTL(Weighted):
    """Increased-transfer MTL over candidate weight rows.

    Args:
        candidates: non-empty list of task names / ``|``-joined subsets /
            ``"all"``, gradient rules (``PCGrad()``, ``MGDA(...)``) and direction
            rules (``DBMTL()``, ``MoCo()``, ``GradDrop()``), no two alike; rules
            take this rule's ``weighting`` (give them none).
        lookahead: ``"exact"`` or ``"first_order"``.
        weighting: optional loss weighting (IT-UW-*); scales every candidate.
        update_heads: score with the heads also stepped (``001`` Alg. 1 line 5);
            default holds them, as the original code does. Not with a weighting.
        chunk_size: lookahead candidates per chunk (``transference.compute``).

    Example:
        >>> update = tf_mtl.updates.ITMTL(["all", tf_mtl.updates.PCGrad()])
    """

    def __init__(self, candidates, lookahead="exact", weighting=None, update_heads=False,
                 chunk_size=None, **kwargs):
        kwargs.setdefault("name", "itmtl")
        super().__init__(weighting=weighting, **kwargs)
        if not isinstance(candidates, (list, tuple)) or not candidates:
            raise ValueError(f"`candidates` must be a non-empty list of task subsets and "
                             f"gradient rules. Received: candidates={candidates!r}")
        parsed = []
        for c in candidates:
            if isinstance(c, dict):  # From get_config.
                c = keras.saving.deserialize_keras_object(c)
            if isinstance(c, (GradientRule, DirectionRule)):
                if c.weighting is not None:
                    raise ValueError(
                        "Candidate rules take ITMTL's `weighting`; give them none. Received: "
                        f"candidate {c.name} with weighting={c.weighting.name}")
            elif not isinstance(c, str):
                raise ValueError(
                    "Each candidate must be a task name, a '|'-joined subset, 'all', a "
                    "gradient rule yielding a shared gradient (PCGrad, MGDA) or a direction "
                    "rule (DBMTL, MoCo, GradDrop). Received: "
                    f"candidate {c!r} of type {type(c).__name__}")
            parsed.append(c)
        names = [_candidate_name(c) for c in parsed]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"`candidates` must be distinct. Received duplicates: "
                             f"{duplicates} in candidates={names}")
        if lookahead not in LOOKAHEADS:
            raise ValueError(f"`lookahead` must be one of {LOOKAHEADS}. Received: "
                             f"lookahead={lookahead!r}")
        if not isinstance(update_heads, bool):
            raise ValueError(f"`update_heads` must be True or False. Received: "
                             f"update_heads={update_heads!r}")
        if chunk_size is not None and (isinstance(chunk_size, bool) or
                                       not isinstance(chunk_size, int) or chunk_size < 1):
            raise ValueError(f"`chunk_size` must be None or an int >= 1. Received: "
                             f"chunk_size={chunk_size!r}")
        if update_heads and self.weighting is not None:
            raise ValueError(
                "update_heads=True steps the heads on the model's loss weights, which a "
                "weighting changes; use update_heads=False with a weighting. Received: "
                f"update_heads=True, weighting={self.weighting.name}")
        self.candidates, self.candidate_names = parsed, names
        self.lookahead, self.update_heads, self.chunk_size = lookahead, update_heads, chunk_size
        self.rules = [c for c in parsed if not isinstance(c, str)]  # tracked: their state saves
        # transference.compute scores the weight rows first, then the directions.
        is_direction = [isinstance(c, DirectionRule) for c in parsed]
        self._row_index = [i for i, d in enumerate(is_direction) if not d]
        self._direction_index = [i for i, d in enumerate(is_direction) if d]
        self._to_given_order = np.argsort(self._row_index + self._direction_index)

    @property
    def reads_encoder_output(self):
        return any(rule.reads_encoder_output for rule in self.rules)

    def build_tasks(self, tasks):
        super().build_tasks(tasks)
        self._masks = {}
        for c in self.candidates:
            if isinstance(c, str):
                subset = self.tasks if c == "all" else c.split("|")
                unknown = sorted(set(subset) - set(self.tasks))
                if unknown or len(set(subset)) != len(subset):
                    raise ValueError(
                        f"Candidate {c!r} is no task or subset of {self.tasks} (unknown or "
                        f"repeated: {unknown or subset}). Received: candidates="
                        f"{self.candidate_names}")
                self._masks[c] = np.array([t in subset for t in self.tasks], np.float32)
            else:
                c.build_tasks(tasks)
        k = len(self.candidates)
        self.last_scores = state_variable(self, "last_scores", (k,))
        self.last_choice = state_variable(self, "last_choice", (), dtype="int32")
        self.chosen = ChoiceFraction(self.candidate_names, self.name,
                                     name=f"{self.name}_chosen")

    def log_names(self):
        return self.chosen.log_names()

    def build_for_variables(self, variables):
        """Creates the candidate rules' state shaped like the shared ``variables``
        (``tf_mtl.updates.direction.PerTaskState``); they otherwise make it on the first step."""
        for rule in self.rules:
            rule.build_for_variables(variables)

    def candidate_rows(self, step, base):
        """``[k, m]``: each candidate's weights over the unscaled per-task gradients
        (zero for a direction rule's candidate: see ``candidate_directions``)."""
        rows = []
        for c in self.candidates:
            if isinstance(c, str):
                rows.append(tf.constant(self._masks[c]) * base)
            elif isinstance(c, DirectionRule):
                rows.append(tf.zeros_like(base))
            else:
                rows.append(tf.cast(c.combination(step, base), tf.float32))
        return tf.stack(rows)

    def candidate_directions(self, step, base):
        """The direction rules' directions, one ``[k2, *var.shape]`` per shared variable
        (None without such candidates); each rule's state advances once."""
        if not self._direction_index:
            return None
        each = [self.candidates[i].direction(step, base) for i in self._direction_index]
        return [tf.stop_gradient(tf.stack(d)) for d in zip(*each)]

    def shared_gradients(self, step):
        base = tf.cast(self.base_weights(step), tf.float32)
        rows = tf.stop_gradient(self.candidate_rows(step, base))
        directions = self.candidate_directions(step, base)
        row_candidates = tf.gather(rows, tf.constant(self._row_index, tf.int32))
        z, valid = transference.compute(step.model, step, row_candidates,
                                        method=self.lookahead, update_heads=self.update_heads,
                                        chunk_size=self.chunk_size, directions=directions)
        z, valid = tf.gather(z, self._to_given_order), tf.gather(valid, self._to_given_order)
        # Targets whose loss before the step is zero or non-finite are left out for every
        # candidate alike; any other invalid entry is a step that overflowed that target.
        losses = step.global_losses()
        target_ok = tf.math.is_finite(losses) & (losses > 0)
        overflow = tf.logical_and(tf.logical_not(valid), target_ok[None, :])
        scores = tf.where(tf.reduce_any(overflow, axis=1), -math.inf, tf.reduce_sum(z, axis=1))
        k = len(self.candidates)
        best = tf.reduce_max(scores)
        choice = tf.reduce_min(tf.where(scores >= best, tf.range(k), k))  # first of ties
        choice = tf.minimum(choice, k - 1)  # scores are never NaN; be safe
        self.last_scores.assign(scores)
        self.last_choice.assign(choice)
        skipped = tf.reduce_sum(1 - tf.cast(valid, tf.int32)) - tf.reduce_sum(
            tf.cast(overflow, tf.int32))
        self.chosen.update_state(choice, skipped, tf.reduce_sum(tf.cast(overflow, tf.int32)))
        self.update_weighting(step)
        row = tf.gather(rows, choice)[None, :]
        grads = [g[0] for g in combine(step.per_task(), row, step.regularization_gradient())]
        if directions is not None:  # The chosen direction (none if a row was chosen).
            pick = tf.cast(tf.equal(tf.constant(self._direction_index), choice), tf.float32)
            grads = [g + tf.tensordot(tf.cast(pick, d.dtype), d, axes=1)
                     for g, d in zip(grads, directions)]
        logs = {f"{self.name}/choice": tf.cast(choice, tf.float32)}
        return grads, logs

    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {**super().get_config(),
                "candidates": [c if isinstance(c, str) else ser(c) for c in self.candidates],
                "lookahead": self.lookahead, "update_heads": self.update_heads,
                "chunk_size": self.chunk_size}
