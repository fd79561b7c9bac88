"""002's learning-rate schedule (``LossPlateauHalving``) against a re-implementation written
from ``train_taskonomy.py`` (the t-test by its formula, NumPy; only the t distribution's tail
from SciPy), on a real ``MultiTaskModel`` and through the runner (resume, ``epoch_split``)."""

import json
import math
import os

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

import tf_mtl
from tf_mtl.experiments import checkpointing, components, config_checks, experiment
from tf_mtl.experiments.loss_plateau import LossPlateauHalving


# --------------------------------------------------------------- the reference, rewritten
def _paired_t(a, b):
    """Student's paired t-test: t = mean(d) / (std(d, ddof=1) / sqrt(n)), two-sided p."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) < 2:
        return math.nan, math.nan
    with np.errstate(all="ignore"):
        t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    return t, (2 * scipy.stats.t.sf(abs(t), len(d) - 1) if np.isfinite(t) else
               (0.0 if np.isinf(t) else math.nan))


def _reference(losses, epochs, batch_size, window, max_window, first_epoch=2, factor=0.5):
    """train_taskonomy.py's learning_rate_schedule after every batch, on the full history:
    the batch indices that halved the rate and the window after each."""
    history, last_tick, ticks, windows = [], 0, [], []
    for loss, epoch in zip(losses, epochs):
        history.append(loss)
        if epoch < first_epoch:
            continue
        wind = window // batch_size
        if len(history) - last_tick > wind:
            start, a_end, b_start = len(history) - wind, len(history) + (-wind * 5) // 8, \
                len(history) + (-wind * 3) // 8
            a = sorted(history[start:a_end])
            b = sorted(history[b_start:])
            a = a[int(len(a) * .05):int(len(a) * .95)]
            b = b[int(len(b) * .05):int(len(b) * .95)]
            n = min(len(a), len(b))
            t, p = _paired_t(a[:n], b[:n])
            if t < 0 or p > .99:
                last_tick = len(history)
                ticks.append(len(history) - 1)
                window = min(max_window, 2 * window)
                windows.append(window)
    return ticks, windows


def _drive(callback, losses, epochs):
    """The callback's rule fed ``losses`` (no model): the batch indices where it halved."""
    callback.set_state({"history": [], "batches": 0, "ticks": 0, "last_tick": 0,
                        "window": callback.initial_window, "initial_learning_rate": 0.1,
                        "learning_rate": 0.1})
    ticks, seen = [], 0
    for i, (loss, epoch) in enumerate(zip(losses, epochs)):
        if epoch != seen or i == 0:
            callback.on_epoch_begin(epoch)
            seen = epoch
        before = callback.ticks
        callback.record(loss)
        if callback.ticks > before:
            ticks.append(i)
    return ticks


def _epochs(n, per_epoch):
    return [i // per_epoch for i in range(n)]


RNG = np.random.default_rng(0)
FLAT = list(1.0 + 0.05 * RNG.standard_normal(3000))
FALLING = list(np.linspace(3.0, 1.0, 3000) + 0.05 * RNG.standard_normal(3000))


@pytest.mark.parametrize("name, losses", [("flat", FLAT), ("falling", FALLING),
                                          ("falls_then_flat", FALLING[:1500] + FLAT[:1500])])
def test_the_rule_halves_where_the_reference_does(name, losses):
    # 808 samples / 8 = 101 batches: not a multiple of 8, so -wind*5//8 (floor of a negative)
    # and -(wind*5//8) differ; max 3232 samples: the window doubles twice, then stays.
    cb = LossPlateauHalving(batch_size=8, initial_window=808, max_window=3232)
    epochs = _epochs(len(losses), 150)
    got = _drive(cb, losses, epochs)
    want, windows = _reference(losses, epochs, 8, 808, 3232)
    assert got == want
    assert cb.ticks == len(want) and cb.window == (windows[-1] if windows else 808)
    assert cb.learning_rate == pytest.approx(0.1 * 0.5 ** len(want), rel=1e-12)
    if name == "flat":
        assert len(want) >= 4 and windows[:3] == [1616, 3232, 3232]   # doubled, capped
        assert min(want) >= 300                    # nothing in epochs 0 and 1 (150 each)
    if name == "falling":
        assert want == []                          # steady progress never halves
    if name == "falls_then_flat":
        assert want and min(want) > 1500           # halves only once the fall has stopped
    assert len(cb.history) <= 2 * (3232 // 8)      # only the tail the rule reads is kept


def test_first_epoch_and_the_exact_first_tick():
    losses = FLAT[:1000]
    for first in (0, 2, 5):
        cb = LossPlateauHalving(batch_size=8, initial_window=808, max_window=3232,
                                first_epoch=first)
        got = _drive(cb, losses, _epochs(1000, 100))
        want, _ = _reference(losses, _epochs(1000, 100), 8, 808, 3232, first_epoch=first)
        assert got == want and got[0] >= max(101, 100 * first)
    # From epoch 0: the first test runs at the 102nd loss (len(h) - 0 > 101 batches).
    for n, tested in ((101, False), (102, True)):
        cb = LossPlateauHalving(batch_size=8, initial_window=808, first_epoch=0)
        _drive(cb, FLAT[:n], [0] * n)
        assert all(np.isfinite(cb.last_test)) == tested, n


def test_a_constant_loss_never_halves():
    cb = LossPlateauHalving(batch_size=8, initial_window=808, first_epoch=0)
    assert _drive(cb, [1.0] * 1000, [0] * 1000) == []      # t of identical samples: NaN


def test_p_above_99_percent_halves_and_below_does_not():
    # Two histories of 102 losses whose one test (from epoch 0) falls either side of the
    # p > .99 threshold with t > 0 (seeds found by the reference's own computation).
    for seed, halves in ((518, False), (458, True)):
        losses = list(1.0 + 0.05 * np.random.default_rng(seed).standard_normal(102))
        ticks, _ = _reference(losses, [0] * 102, 8, 808, 3232, first_epoch=0)
        cb = LossPlateauHalving(batch_size=8, initial_window=808, first_epoch=0)
        got = _drive(cb, losses, [0] * 102)
        t, p = cb.last_test
        assert t > 0 and (p > .99) == halves and (0.95 < p) and got == ticks
        assert bool(got) == halves, (seed, t, p)


def test_state_through_json_mid_run_decides_as_the_uninterrupted_run():
    epochs = _epochs(3000, 150)
    straight = LossPlateauHalving(batch_size=8, initial_window=296, max_window=2368)
    want = _drive(straight, FLAT, epochs)
    for stop_epoch in (3, 4, 5, 7):
        stop = 150 * stop_epoch
        first = LossPlateauHalving(batch_size=8, initial_window=296, max_window=2368)
        ticks = _drive(first, FLAT[:stop], epochs[:stop])
        state = json.loads(json.dumps(first.get_state()))
        second = LossPlateauHalving(batch_size=8, initial_window=296, max_window=2368)
        second.set_state(state)
        assert second.get_state() == first.get_state()
        seen = epochs[stop - 1]
        for i in range(stop, 3000):
            if epochs[i] != seen:
                second.on_epoch_begin(epochs[i])
                seen = epochs[i]
            before = second.ticks
            second.record(FLAT[i])
            if second.ticks > before:
                ticks.append(i)
        assert ticks == want and second.learning_rate == straight.learning_rate, stop_epoch


def test_a_plain_keras_models_batch_weighted_loss_is_left_as_keras_gives_it():
    # Keras's own train_step weights its loss tracker by the batch size: 20 samples in
    # batches of 8 end with a batch of 4.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 3)).astype("float32")
    y = rng.normal(size=(20, 1)).astype("float32")

    def model():
        keras.utils.set_random_seed(5)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        m.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
        return m

    after = _Recorder()
    cb = LossPlateauHalving(batch_size=8, initial_window=80, first_epoch=99)
    got = model().fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                      callbacks=[cb, after])
    plain_logs = _Recorder()
    plain = model().fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                        callbacks=[plain_logs])
    np.testing.assert_allclose(got.history["loss"], plain.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(after.losses, plain_logs.losses, rtol=1e-6)
    # The schedule's history: each batch's own loss (the last batch's unweighted mean).
    sizes = [8, 8, 4] * 2
    means = np.asarray(plain_logs.losses, np.float64)
    own = []
    for e in range(2):
        m, n = means[3 * e:3 * e + 3], np.cumsum(sizes[:3])
        run = m * n
        own += [run[0] / 8, (run[1] - run[0]) / 8, (run[2] - run[1]) / 4]
    np.testing.assert_allclose(cb.history, own, rtol=1e-4)


# -------------------------------------------------------------------- on a real model
def _model(seed, lr=0.05):
    keras.utils.set_random_seed(seed)
    model = tf_mtl.MultiTaskModel(keras.Sequential([keras.layers.Dense(8, activation="relu")]),
                                  {t: keras.layers.Dense(1) for t in "ab"},
                                  {"a": "mse", "b": "mse"}, loss_weights={"a": 1.0, "b": 0.5})
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9))
    model.build_for(tf.TensorSpec([None, 5]))      # Weights exist before the first batch.
    return model


def _noise_data(n=128, batch=8):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, 5)).astype("float32")   # Labels unrelated to x: a plateau.
    y = {"a": rng.standard_normal((n, 1)).astype("float32"),
         "b": 3 + rng.standard_normal((n, 1)).astype("float32")}
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch), x, y


class _Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights, self.rates, self.losses, self.epochs, self._epoch = [], [], [], [], 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.weights.append(self.model.get_weights())
        self.rates.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])
        self.epochs.append(self._epoch)


def test_each_batchs_own_loss_and_the_logs_left_as_keras_gives_them():
    ds, x, y = _noise_data(n=48)
    before, after = _Recorder(), _Recorder()       # Around the schedule: raw, then restored.
    model = _model(1)
    cb = LossPlateauHalving(batch_size=8, initial_window=80, first_epoch=99)  # No halving.
    history = model.fit(ds, epochs=2, verbose=0, callbacks=[before, cb, after])
    # The batch's loss by hand: the weights before the step, the forward pass, NumPy's mse.
    copy = _model(2)
    by_hand = []
    for weights, i in zip(before.weights, range(12)):
        copy.set_weights(weights)
        rows = slice((i % 6) * 8, (i % 6) * 8 + 8)
        pred = copy(x[rows])
        by_hand.append(np.mean((pred["a"].numpy() - y["a"][rows]) ** 2)
                       + 0.5 * np.mean((pred["b"].numpy() - y["b"][rows]) ** 2))
    np.testing.assert_allclose(cb.history, by_hand, rtol=2e-6)
    assert cb.history == before.losses
    # What the callbacks after it and the epoch's logs see: Keras's float32 running mean.
    for e in range(2):
        raw = np.asarray(before.losses[6 * e:6 * e + 6], np.float32)
        means = [float(np.float32(np.cumsum(raw, dtype=np.float32)[k]) / np.float32(k + 1))
                 for k in range(6)]
        assert after.losses[6 * e:6 * e + 6] == means
        assert history.history["loss"][e] == means[-1]
    # The same as a run without the schedule (float noise only).
    plain = _model(1).fit(ds, epochs=2, verbose=0).history["loss"]
    np.testing.assert_allclose(history.history["loss"], plain, rtol=1e-5)


def test_the_optimizers_rate_is_set_and_training_stops_below_the_minimum():
    ds, _, _ = _noise_data()
    rec = _Recorder()
    model = _model(3, lr=0.02)
    # 3 halvings end it: 0.02 / 8 = 0.0025 < 0.003.
    cb = LossPlateauHalving(batch_size=8, initial_window=8 * 12, max_window=8 * 12,
                            min_learning_rate=0.003, first_epoch=1)
    history = model.fit(ds, epochs=30, verbose=0, callbacks=[rec, cb])
    ticks, _ = _reference(rec.losses, rec.epochs, 8, 96, 96, first_epoch=1)
    assert len(ticks) >= 3 and cb.ticks == len(ticks)
    lr0 = rec.rates[0]
    for i, rate in enumerate(rec.rates):           # The rate each step ran with.
        halvings = sum(t < i for t in ticks)
        assert rate == pytest.approx(lr0 * 0.5 ** halvings, rel=1e-6), i
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(
        lr0 * 0.5 ** len(ticks), rel=1e-6)
    # The epoch of the third halving is finished; no epoch after it runs.
    stop_epoch = rec.epochs[ticks[2]]
    assert len(history.epoch) == stop_epoch + 1 < 30
    assert rec.epochs[-1] == stop_epoch and rec.epochs.count(stop_epoch) == 16   # all of it


def test_refused_settings_at_train_begin():
    ds, _, _ = _noise_data(n=16)
    model = _model(0)
    model.compile(optimizer=keras.optimizers.SGD(
        keras.optimizers.schedules.ExponentialDecay(0.1, 4, 0.5)))
    with pytest.raises(ValueError, match="float learning_rate, not a schedule"):
        model.fit(ds, epochs=1, verbose=0, callbacks=[LossPlateauHalving(batch_size=8)])
    model.compile(optimizer="sgd", steps_per_execution=2)
    with pytest.raises(ValueError, match="Received: steps_per_execution=2"):
        model.fit(ds, epochs=1, verbose=0, callbacks=[LossPlateauHalving(batch_size=8)])


# ------------------------------------------------------------------------- the runner
SCHEDULE = {"name": "loss_plateau", "initial_window": 16 * 20, "max_window": 16 * 40,
            "min_learning_rate": 0.0, "first_epoch": 1}


def _config(epochs, **changes):
    c = experiment.base_config()
    c.epochs, c.verbose, c.tensorboard = epochs, 0, False
    c.data.update(num_tasks=2, num_examples=256, batch_size=16, input_dim=8, label_noise=1.0)
    c.model.encoder_kwargs = {"units": [8]}
    c.optimizer.learning_rate = 0.05
    c.lr_schedule = dict(SCHEDULE)
    for key, value in changes.items():
        setattr(c, key, value)
    return c


def _schedule_state(workdir):
    meta, _ = checkpointing.read_checkpoint(os.path.join(workdir, "checkpoint.bin"))
    return meta["schedule"]


def test_a_resumed_run_halves_as_the_uninterrupted_one(tmp_path, monkeypatch):
    straight = str(tmp_path / "straight")
    experiment.train(_config(6), straight)
    want = _schedule_state(straight)
    assert want["ticks"] >= 2

    class Killed(Exception):
        pass

    def kill(self, batch, logs=None):   # In epoch 3, after its checkpoint of epoch 2.
        if self.epochs_done == 3 and batch == 5:
            raise Killed()
    resumed = str(tmp_path / "resumed")
    monkeypatch.setattr(checkpointing.EpochCheckpoint, "on_train_batch_end", kill,
                        raising=False)
    with pytest.raises(Killed):
        experiment.train(_config(6), resumed)
    partial = _schedule_state(resumed)
    assert 0 < partial["ticks"] < want["ticks"]     # Halved before and after the kill.
    monkeypatch.undo()
    experiment.train(_config(6), resumed)
    got = _schedule_state(resumed)
    for field in ("batches", "ticks", "last_tick", "window"):
        assert got[field] == want[field], field
    assert got["learning_rate"] == pytest.approx(want["learning_rate"], rel=1e-12)
    np.testing.assert_allclose(got["history"], want["history"], rtol=1e-5)
    meta, arrays = checkpointing.read_checkpoint(os.path.join(resumed, "checkpoint.bin"))
    rate = arrays[meta["paths"].index(next(p for p in meta["paths"]
                                           if p.endswith("learning_rate")))]
    assert float(rate) == pytest.approx(want["learning_rate"], rel=1e-6)


@pytest.mark.parametrize("over, steps", [(15, 4), (16, 16)])   # 16 batches a pass.
def test_epoch_split_cuts_a_long_pass_into_parts(tmp_path, over, steps):
    c = _config(5, epoch_split={"over_batches": over, "parts": 4})
    c.lr_schedule.name = ""                          # Constant rate: the split alone.
    out = experiment.train(c, str(tmp_path))
    model = out["model"]
    assert int(model.optimizer.iterations) == 5 * steps      # 20 steps cross a pass end.
    assert len(out["history"]["loss"]) == 5
    with open(tmp_path / "results.json") as f:
        assert json.load(f)["epochs_trained"] == 5


def test_epoch_batches():
    assert components.epoch_batches(None, 41_358) == 41_358
    assert components.epoch_batches({"over_batches": 10_000, "parts": 5}, 41_358) == 8_271
    assert components.epoch_batches({"over_batches": 10_000, "parts": 5}, 10_000) == 10_000
    assert components.epoch_batches({"over_batches": 10_000, "parts": 5}, 10_001) == 2_000


# ----------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "Received: batch_size=0"),
    ({"batch_size": 8.0}, "Received: batch_size=8.0"),
    ({"batch_size": 96, "initial_window": 95}, "`initial_window` must be an int >= 96. "
                                               "Received: initial_window=95"),
    ({"batch_size": 96, "initial_window": 1000, "max_window": 999},
     "Received: max_window=999"),
    ({"batch_size": 96, "min_learning_rate": -1e-5}, "Received: min_learning_rate=-1e-05"),
    ({"batch_size": 96, "min_learning_rate": float("nan")}, "Received: min_learning_rate=nan"),
    ({"batch_size": 96, "first_epoch": -1}, "Received: first_epoch=-1"),
    ({"batch_size": 96, "factor": 1.0}, "Received: factor=1.0"),
    ({"batch_size": 96, "factor": 0}, "Received: factor=0"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")):
        LossPlateauHalving(**kwargs)


def test_set_state_needs_every_field():
    with pytest.raises(ValueError, match=r"lacks the fields \['batches'"):
        LossPlateauHalving(batch_size=8).set_state({"history": []})


@pytest.mark.parametrize("change, message", [
    ({"lr_schedule": {"name": "cosine"}}, "Received: config.lr_schedule.name='cosine'"),
    ({"lr_schedule": {"name": "loss_plateau", "batch_size": 8}},
     "Received: config.lr_schedule.batch_size=8"),
    ({"lr_schedule": {"name": "loss_plateau", "initial_window": 10}},
     "Received: initial_window=10"),
    ({"epoch_split": {"parts": 0}}, "Received: parts=0"),
    ({"epoch_split": {"over_batches": -1}}, "Received: over_batches=-1"),
    ({"epoch_split": {"part": 5}}, "Received: config.epoch_split.part=5"),
])
def test_config_checks(change, message):
    c = _config(1, **change)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(".", r"\.")
                       .replace("[", r"\[")):
        config_checks.check_config(c)


def test_config_check_refuses_two_schedules():
    c = _config(1)
    c.optimizer.halve_every_epochs = 2
    with pytest.raises(ValueError, match="halve_every_epochs=2"):
        config_checks.check_config(c)
    c.lr_schedule.name = ""                          # Off: the optimizer's schedule alone.
    config_checks.check_config(c)


def test_get_config_round_trip():
    cb = LossPlateauHalving(batch_size=96, initial_window=96 * 7, max_window=96 * 70,
                            min_learning_rate=1e-4, first_epoch=3, factor=0.25)
    again = LossPlateauHalving.from_config(cb.get_config())
    assert again.get_config() == cb.get_config() == {
        "batch_size": 96, "initial_window": 672, "max_window": 6720,
        "min_learning_rate": 1e-4, "first_epoch": 3, "factor": 0.25}
    assert json.loads(json.dumps(cb.get_state())) == cb.get_state()
