"""``003``'s CelebA protocol: TR at p = 0.9, selection on the all-attribute validation
F-score, and the released code's per-task steps as a config option."""

import csv
import importlib

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

import tf_mtl
from tf_mtl.experiments import config_checks, experiment
from tf_mtl.experiments.attribute_metrics import AttributeScore

ATTRIBUTES = {"a": 2, "b": 3}


def _routing(name):
    return dict(importlib.import_module(f"configs.{name}").get_config().model.encoder_kwargs)


def test_table_1_settings():
    assert _routing("celeba_task_routing")["routing"]["sharing_ratio"] == 0.9  # "TR (p = 0.9)"
    assert _routing("celeba_mr")["routing"]["sharing_ratio"] == 0.8  # "MR (p = 0.8)"
    for name in ("celeba_mr", "celeba_task_routing", "celeba_etrnlp"):
        c = importlib.import_module(f"configs.{name}").get_config()
        assert (c.early_stopping_monitor, c.early_stopping_mode) == (
            "val_all_attributes_fscore", "max")
        assert c.model.task_steps == "summed" and c.early_stopping_patience > 0
        config_checks.check_config(c)


def _fscore_over_all_attributes(model, x, y):
    """Written from 003's code: per attribute from the counts over the split, then the mean
    over every attribute of every task (logit > 0 is probability > 0.5)."""
    pred = model.predict(x, verbose=0)
    scores = []
    for t in ATTRIBUTES:
        hit, truth = pred[t] > 0, y[t] > 0.5
        tp, fp, fn = (np.sum(a, 0) for a in (hit & truth, hit & ~truth, ~hit & truth))
        p = np.divide(tp, tp + fp, out=np.zeros(len(tp)), where=tp + fp > 0)
        r = np.divide(tp, tp + fn, out=np.zeros(len(tp)), where=tp + fn > 0)
        scores += list(np.divide(2 * p * r, p + r, out=np.zeros(len(tp)), where=p + r > 0))
    return float(np.mean(scores))


class _Recorder(keras.callbacks.Callback):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y, self.fscores, self.weights, self.logs = x, y, [], [], []

    def on_epoch_end(self, epoch, logs=None):
        self.fscores.append(_fscore_over_all_attributes(self.model, self.x, self.y))
        self.weights.append(self.model.get_weights())
        self.logs.append(dict(logs))


def test_best_weights_are_the_epoch_of_highest_validation_fscore_not_lowest_loss():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)

    def split(n):  # Rare attributes barely tied to x: the loss falls as F-score falls.
        x = rng.normal(size=(n, 4)).astype("float32")
        return x, {t: (rng.random((n, k)) < 0.25 + 0.1 * (x[:, :1] > 1)).astype("float32")
                   for t, k in ATTRIBUTES.items()}

    (x, y), (xv, yv) = split(96), split(64)
    model = tf_mtl.MultiTaskModel(
        encoder=keras.layers.Dense(4, activation="tanh"),
        heads={t: keras.layers.Dense(k, bias_initializer=keras.initializers.Constant(1.5))
               for t, k in ATTRIBUTES.items()},
        losses={t: keras.losses.BinaryCrossentropy(from_logits=True) for t in ATTRIBUTES})
    model.compile(optimizer=keras.optimizers.SGD(0.3),
                  metrics={t: [AttributeScore(k) for k in ("precision", "recall", "fscore")]
                           for t in ATTRIBUTES})
    recorder = _Recorder(xv, yv)
    config = importlib.import_module("configs.celeba_mr").get_config()
    stopping = keras.callbacks.EarlyStopping(  # As experiment.train builds it.
        monitor=config.early_stopping_monitor, mode=config.early_stopping_mode, patience=20,
        restore_best_weights=True)
    model.fit(x, y, validation_data=(xv, yv), epochs=8, batch_size=32, verbose=0,
              callbacks=[experiment.attribute_score_logger(ATTRIBUTES), recorder, stopping])
    logged = [l["val_all_attributes_fscore"] for l in recorder.logs]
    np.testing.assert_allclose(logged, recorder.fscores, atol=1e-4)
    best = int(np.argmax(recorder.fscores))
    assert best != int(np.argmin([l["val_loss"] for l in recorder.logs]))  # They disagree.
    for got, want in zip(model.get_weights(), recorder.weights[best]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("change, message", [
    ({"early_stopping_mode": "auto"}, "early_stopping_mode='auto'"),
    ({"metrics": {"all": ["precision_logits"]}}, "metrics="),
])
def test_an_attribute_monitor_needs_its_scores_and_mode_max(change, message):
    config = importlib.import_module("configs.celeba_mr").get_config()
    config.update(change)
    with pytest.raises(ValueError, match="Received: " + message):
        config_checks.check_config(config)


@pytest.mark.slow
def test_train_logs_the_score_and_steps_once_per_group_per_batch(tmp_path):
    config = importlib.import_module("configs.celeba_mr").get_config("runlocal")
    routing = config.model.encoder_kwargs.routing  # The routed ResNet's layout, smaller.
    config.model.encoder, config.model.encoder_kwargs = "resnet_lite", {
        "filters": 8, "routing": routing}
    config.epochs, config.verbose, config.model.task_steps = 2, 0, "sequential"
    with tfds.testing.mock_data(num_examples=48, policy=tfds.testing.MockPolicy.USE_CODE):
        result = experiment.train(config, str(tmp_path))
    assert int(result["model"].optimizer.iterations) == 8 * 2 * config.steps_per_epoch
    sizes = {t: len(a) for t, a in tf_mtl.data.CELEBA_MR_GROUPS.items()}
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # The mean over all 40 attributes of the groups' macro F-scores.
        want = sum(sizes[t] * float(row[f"val_{t}_fscore"]) for t in sizes) / 40
        np.testing.assert_allclose(float(row["val_all_attributes_fscore"]), want, rtol=1e-5)
