r"""``002``'s learning-rate schedule: halve the rate when the training loss stops falling.

Standley et al. 2020 ("Which tasks should be learned together", ``002``) §4: the rate "was
reduced by half every time the training loss stopped decreasing"; their ``train_taskonomy.py``
(``learning_rate_schedule``, called after every batch) decides it with a paired t-test on the
history ``h`` of per-batch training losses, and stops training below a minimum rate:

* nothing while the epoch index is below ``first_epoch`` (2: the first two epochs never
  halve; the losses of every epoch still enter ``h``);
* ``w = window // batch_size`` (the window is counted in samples; it starts at
  ``initial_window``);
* when ``len(h) - last_tick > w``: ``a = h[-w : -w*5//8]`` (the window's first 3/8),
  ``b = h[-w*3//8 :]`` (its last 3/8), Python's floor division of the negative products
  as written; each sorted and cut to ``[int(.05 n) : int(.95 n)]`` (outliers), both cut to
  the shorter length, ``(t, p) = scipy.stats.ttest_rel(a, b, nan_policy="omit")``
  (``plateau_test``);
* if ``t < 0`` (the later losses are higher) or ``p > 0.99`` (no difference): ``ticks += 1``,
  ``last_tick = len(h)``, ``lr = lr0 * factor**ticks``, ``window = min(max_window, 2 window)``;
* once ``lr < min_learning_rate`` no further epoch runs (the reference checks it at the start
  of each epoch and breaks: the epoch in which the rate fell is finished, validated and
  checkpointed, then training ends).

Defaults are the reference's arguments: ``initial_window = 500,000`` and ``max_window =
2,000,000`` samples, ``min_learning_rate = 3e-5``, factor 0.5, from epoch 2 on (with
``lr0 = 0.1``: 12 halvings reach 2.4e-5 and end training).

Conventions:

* The loss appended is the batch's own training loss, the objective the step minimised
  (Keras's ``"loss"``: the weighted task losses plus the model's added losses), as the
  reference appends its ``float(loss)``. Keras reports ``"loss"`` as the running mean
  over the epoch and ``MultiTaskModel`` logs no per-batch value; recovering it as
  ``(k + 1) r_k - k r_{k-1}`` is not exact, since the mean's float32 total has already
  rounded each addition (an error of about ``k`` float32 ulps of the loss: ~1e-3 relative
  at batch 8,000). So the callback empties the loss tracker before each batch (the step's
  ``"loss"`` is then that batch's float32 value, exactly) and puts the running total back
  after it, the batch's own total and count accumulated in float32 as Keras does (a plain
  Keras model's tracker is weighted by the batch size, ``MultiTaskModel``'s is not), so the
  tracker, the epoch's ``"loss"``
  and the ``"loss"`` the callbacks after this one see are the values they would be
  without it (bit for bit on one replica; under ``MirroredStrategy``, 2 CPU replicas
  checked, within a float32 ulp, the replicas' totals being summed in another order).
  Put it first in ``fit``'s callbacks; ``steps_per_execution`` must be 1 (one batch per
  call). Its cost: four scalar assignments per batch (not measurable beside a 1.6 ms CPU
  step) and, once a window is full, one t-test per batch until it halves (1 ms at 5,208
  losses, 3.5 ms at 20,833: the 500,000- and 2,000,000-sample windows at batch 96).
* Only the last ``max_window // batch_size`` losses (all the rule ever reads) are kept,
  with the count of all of them (``len(h)``).
* ``lr0`` is the optimizer's rate when training first begins; the optimizer's rate is a
  variable (a float ``learning_rate``; a ``LearningRateSchedule`` is refused).
* The state (kept losses, count, ticks, last tick, window, ``lr0``, rate) is
  ``get_state()`` / ``set_state()``; ``tf_mtl.experiments.EpochCheckpoint`` saves it with
  each epoch's checkpoint, so a resumed run decides as one never interrupted would (the
  reference restarts ``ticks``, the window and ``lr0`` from the resumed rate).
* A constant loss never halves: the t-test of identical samples is NaN (as the reference).
* A ``fit`` begun with the rate already below the minimum runs one batch (Keras reads
  ``stop_training`` after a batch); the runner starts none (its checkpoint records the stop).

Example:
    >>> rng = np.random.default_rng(0)
    >>> flat = list(1.0 + 0.1 * rng.standard_normal(800))   # no progress: halve
    >>> t, p = plateau_test(flat, 800)
    >>> bool(t < 0 or p > 0.99)
    True
    >>> falling = list(np.linspace(2.0, 1.0, 800) + 0.1 * rng.standard_normal(800))
    >>> t, p = plateau_test(falling, 800)
    >>> bool(t < 0 or p > 0.99)
    False
    >>> schedule = LossPlateauHalving(batch_size=96)
    >>> schedule.get_config()["initial_window"] // 96   # batches in the first window
    5208
"""

import math
import numbers
import warnings

import keras
import numpy as np
import scipy.stats

from tf_mtl import keras_internals

_STATE_FIELDS = ("history", "batches", "ticks", "last_tick", "window",
                 "initial_learning_rate", "learning_rate")


def plateau_test(history, batches):
    """``(t, p)`` of the rule's paired t-test over the last ``batches`` losses of
    ``history`` (see the module docstring): NaN where too few values remain."""
    a = sorted(history[-batches:-batches * 5 // 8])
    b = sorted(history[-batches * 3 // 8:])
    a = a[int(len(a) * .05):int(len(a) * .95)]
    b = b[int(len(b) * .05):int(len(b) * .95)]
    n = min(len(a), len(b))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")   # Too few values / zero variance: NaN, no tick.
        result = scipy.stats.ttest_rel(a[:n], b[:n], nan_policy="omit")
    return float(result.statistic), float(result.pvalue)


def _int_at_least(name, value, low):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}. Received: {name}={value!r}")


class LossPlateauHalving(keras.callbacks.Callback):
    """Halves the learning rate when a t-test shows no training progress (``002``).

    Args:
        batch_size: samples per optimizer step (the global batch): the windows are in samples.
        initial_window: samples the first test looks back over (500,000); at least one batch.
        max_window: the window doubles after each halving up to this (2,000,000).
        min_learning_rate: training ends after the epoch whose rate fell below it (3e-5).
        first_epoch: the first epoch index whose batches may halve the rate (2).
        factor: the rate is ``lr0 * factor**ticks`` (0.5).

    Attributes (the state): ``history`` (the last losses kept), ``batches`` (all losses
    seen), ``ticks``, ``last_tick``, ``window``, ``initial_learning_rate``,
    ``learning_rate``, and ``last_test`` (the latest ``(t, p)``).
    """

    def __init__(self, batch_size, initial_window=500_000, max_window=2_000_000,
                 min_learning_rate=3e-5, first_epoch=2, factor=0.5):
        super().__init__()
        _int_at_least("batch_size", batch_size, 1)
        _int_at_least("initial_window", initial_window, batch_size)   # >= one batch
        _int_at_least("max_window", max_window, initial_window)
        _int_at_least("first_epoch", first_epoch, 0)
        if (isinstance(min_learning_rate, bool) or not isinstance(min_learning_rate, numbers.Real)
                or not math.isfinite(min_learning_rate) or min_learning_rate < 0):
            raise ValueError("`min_learning_rate` must be a finite number >= 0 (0: never stop). "
                             f"Received: min_learning_rate={min_learning_rate!r}")
        if (isinstance(factor, bool) or not isinstance(factor, numbers.Real)
                or not 0 < factor < 1):
            raise ValueError(f"`factor` must be a number in (0, 1). Received: factor={factor!r}")
        self.batch_size, self.initial_window = batch_size, initial_window
        self.max_window, self.min_learning_rate = max_window, min_learning_rate
        self.first_epoch, self.factor = first_epoch, factor
        self.history, self.batches, self.ticks, self.last_tick = [], 0, 0, 0
        self.window = initial_window
        self.initial_learning_rate = self.learning_rate = None
        self.last_test = (math.nan, math.nan)
        self._epoch, self._total, self._count = 0, np.float32(0), np.float32(0)

    def get_config(self):
        return {"batch_size": self.batch_size, "initial_window": self.initial_window,
                "max_window": self.max_window, "min_learning_rate": self.min_learning_rate,
                "first_epoch": self.first_epoch, "factor": self.factor}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # ------------------------------------------------------------------ state
    def get_state(self):
        """The decision state as a JSON-able dict (``EpochCheckpoint`` saves it)."""
        return {f: (list(self.history) if f == "history" else getattr(self, f))
                for f in _STATE_FIELDS}

    def set_state(self, state):
        """Restores a ``get_state()`` dict (before ``fit``; the optimizer's rate is set to
        its ``learning_rate`` when training begins)."""
        missing = sorted(set(_STATE_FIELDS) - set(state))
        if missing:
            raise ValueError(f"`state` lacks the fields {missing}. Received: "
                             f"state with fields {sorted(state)}")
        for f in _STATE_FIELDS:
            setattr(self, f, list(state[f]) if f == "history" else state[f])

    # -------------------------------------------------------------- callbacks
    def on_train_begin(self, logs=None):
        if getattr(self.model, "steps_per_execution", 1) != 1:
            raise ValueError("LossPlateauHalving reads each batch's loss: compile with "
                             "steps_per_execution=1. Received: steps_per_execution="
                             f"{self.model.steps_per_execution}")
        optimizer = self.model.optimizer
        current = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        if self.initial_learning_rate is None:   # A fresh run; else a restored state.
            self.initial_learning_rate = self.learning_rate = current
        try:
            optimizer.learning_rate = self.learning_rate
        except TypeError as e:
            raise ValueError("LossPlateauHalving sets the optimizer's learning rate: give the "
                             "optimizer a float learning_rate, not a schedule. Received: "
                             f"optimizer={optimizer!r} with a LearningRateSchedule") from e
        if self.learning_rate < self.min_learning_rate:
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._total, self._count = epoch, np.float32(0), np.float32(0)

    def on_train_batch_begin(self, batch, logs=None):
        keras_internals.loss_tracker(self.model).reset_state()   # The step's "loss": its own.

    def on_train_batch_end(self, batch, logs=None):
        if logs is None or "loss" not in logs:
            raise ValueError("LossPlateauHalving needs the step's 'loss' log. Received: logs "
                             f"with keys {sorted(logs or {})}")
        loss = float(logs["loss"])
        # The running mean back, accumulated in float32 as the tracker's update does, with
        # the batch's own total and count (Keras's train_step weights by the batch size,
        # MultiTaskModel's does not).
        tracker = keras_internals.loss_tracker(self.model)
        self._total = self._total + np.float32(keras.ops.convert_to_numpy(tracker.total))
        self._count = self._count + np.float32(keras.ops.convert_to_numpy(tracker.count))
        tracker.total.assign(self._total)
        tracker.count.assign(self._count)
        logs["loss"] = float(self._total / self._count)
        self.record(loss)

    def on_epoch_end(self, epoch, logs=None):
        if self.learning_rate < self.min_learning_rate:
            self.model.stop_training = True   # The reference's check before the next epoch.

    # ------------------------------------------------------------------- rule
    def record(self, loss):
        """Appends one batch's ``loss`` and applies the rule (``on_train_batch_end`` calls
        it; the epoch is the one ``on_epoch_begin`` last saw)."""
        self.history.append(float(loss))
        self.batches += 1
        keep = self.max_window // self.batch_size
        if len(self.history) > 2 * keep:   # Amortised: trim once per `keep` batches.
            del self.history[:-keep]
        if self._epoch < self.first_epoch:
            return
        batches = self.window // self.batch_size
        if self.batches - self.last_tick > batches:
            self.last_test = plateau_test(self.history, batches)
            t, p = self.last_test
            if t < 0 or p > .99:
                self._tick()

    def _tick(self):
        self.ticks += 1
        self.last_tick = self.batches
        self.learning_rate = self.initial_learning_rate * self.factor ** self.ticks
        if self.model is not None:
            self.model.optimizer.learning_rate = self.learning_rate
        self.window = min(self.max_window, 2 * self.window)
