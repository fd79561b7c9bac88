import json

import keras
import numpy as np
import pytest

import tf_mtl
from tf_mtl.callbacks import AffinityLogger, run_mean


def _model(probes):
    tasks = ["t0", "t1", "t2"]
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([8, 4]),
                                  {t: keras.layers.Dense(1) for t in tasks},
                                  {t: "mse" for t in tasks}, probes=probes)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def test_run_mean_ignores_missing_entries():
    epochs = [{"a": {"a": 1.0, "b": None}}, {"a": {"a": 3.0, "b": 2.0}}]
    assert run_mean(epochs) == {"a": {"a": 2.0, "b": 2.0}}


def test_logger_writes_epoch_means_run_mean_and_plot_with_validation(tmp_path):
    ds, _ = tf_mtl.data.synthetic("train", num_tasks=3, num_groups=3, num_examples=96,
                                  batch_size=16)
    val, _ = tf_mtl.data.synthetic("validation", num_tasks=3, num_groups=3, num_examples=32)
    probe = tf_mtl.transference.Transference(every=2, method="first_order", log_pairs=True)
    model = _model([probe])
    seen = []

    class Spy(keras.callbacks.Callback):  # Epoch means as the train step logs them.
        def on_train_batch_end(self, batch, logs=None):
            if batch == 5:
                seen.append(logs["transference/t1>t2"])

    logger = AffinityLogger(str(tmp_path), tensorboard_dir=str(tmp_path / "tb"))
    model.fit(ds, validation_data=val, epochs=2, verbose=0, callbacks=[Spy(), logger])
    epochs = json.load(open(tmp_path / "affinity_epochs.json"))
    assert [e["epoch"] for e in epochs] == [0, 1]
    # The validation pass resets metrics; the logger must have read them before.
    for e, value in zip(epochs, seen):
        assert e["scores"]["t1"]["t2"] == pytest.approx(value, rel=1e-5)
    mean = json.load(open(tmp_path / "affinity.json"))
    assert set(mean) == {"t0", "t1", "t2", "t0|t1|t2"}
    assert mean["t1"]["t2"] == pytest.approx(np.mean(seen), rel=1e-5)
    assert (tmp_path / "affinity.png").stat().st_size > 1000
    assert list((tmp_path / "tb" / "affinity").iterdir())


def test_logger_needs_a_transference_probe(tmp_path):
    model = _model([])
    x = np.zeros((4, 32), "float32")
    y = {t: np.zeros((4, 1), "float32") for t in ["t0", "t1", "t2"]}
    with pytest.raises(ValueError, match="Transference probe. Received"):
        model.fit(x, y, verbose=0, callbacks=[AffinityLogger(str(tmp_path))])


def test_normalized_affinity_divides_by_self_transference():
    from tf_mtl.plots import affinity_array
    scores = {"a": {"a": 2.0, "b": 1.0}, "b": {"a": -1.0, "b": 0.5}}
    _, values = affinity_array(scores, ["a", "b"], normalize=True)
    np.testing.assert_allclose(values, [[1.0, 2.0], [-0.5, 1.0]])
