"""Epoch checkpoints restore everything the next epoch depends on, dropout's seeds included."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.experiments import checkpointing
from tf_mtl.data import epochs as epoch_data


RULES = {"uw": tf_mtl.updates.UncertaintyWeights,
         # State shaped like the shared variables, made by build_for before the restore.
         "dbmtl": tf_mtl.updates.DBMTL,
         "it_moco": lambda: tf_mtl.updates.ITMTL(["all", tf_mtl.updates.MoCo()])}


def _model(seed, rule="uw"):
    keras.utils.set_random_seed(seed)
    encoder = keras.Sequential([keras.layers.Dense(8, activation="relu"),
                                keras.layers.Dropout(0.5)])
    model = tf_mtl.MultiTaskModel(encoder, {t: keras.layers.Dense(1) for t in ("a", "b")},
                                  {"a": "mse", "b": "mse"},
                                  update=RULES[rule]())
    model.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.ExponentialDecay(0.01, 4, 0.5, staircase=True)))
    model.build_for(tf.TensorSpec([None, 5]))
    model.optimizer.build(model.trainable_variables)
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 5)).astype("float32")
    y = {"a": x[:, :1] * 2, "b": x[:, 1:2] - x[:, 2:3]}
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(8)


@pytest.mark.parametrize("rule", sorted(RULES))
def test_a_restored_model_continues_exactly_like_the_original(tmp_path, rule):
    path = str(tmp_path / "ckpt.bin")
    original = _model(seed=1, rule=rule)
    ckpt = checkpointing.EpochCheckpoint(path)
    original.fit(_data(), epochs=1, verbose=0, callbacks=[ckpt])
    restored = _model(seed=2, rule=rule)  # Other initial weights and other dropout seeds.
    assert (checkpointing.EpochCheckpoint(path).restore(restored)) == (1, True)
    for a, b in zip(checkpointing.state_variables(original),
                    checkpointing.state_variables(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    # Dropout draws from the restored seed-generator state: the next epoch is identical.
    original.fit(_data(), epochs=1, verbose=0)
    restored.fit(_data(), epochs=1, verbose=0)
    # Float noise only (one CI run under load differed by 3e-5 relative after the epoch:
    # oneDNN's kernels are not bitwise reproducible run to run); other dropout masks or
    # optimizer state would differ by orders of magnitude more.
    for a, b in zip(original.variables, restored.variables):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6,
                                   err_msg=a.path)
    assert int(restored.optimizer.iterations) == 8


def test_without_the_seed_state_dropout_would_differ(tmp_path):
    """The test above can fail: restoring all but the seed generators breaks it."""
    path = str(tmp_path / "ckpt.bin")
    original = _model(seed=1)
    original.fit(_data(), epochs=1, verbose=0, callbacks=[checkpointing.EpochCheckpoint(path)])
    restored = _model(seed=2)
    checkpointing.EpochCheckpoint(path).restore(restored)
    for v in restored.variables:
        if "seed_generator" in v.path:
            v.assign(v.numpy() + 7)
    original.fit(_data(), epochs=1, verbose=0)
    restored.fit(_data(), epochs=1, verbose=0)
    assert not np.allclose(np.asarray(original.encoder.layers[0].kernel),
                           np.asarray(restored.encoder.layers[0].kernel))


def test_early_stopping_state_and_best_weights_are_restored(tmp_path):
    path = str(tmp_path / "ckpt.bin")
    model = _model(seed=1)
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    model.fit(_data(), epochs=2, verbose=0,
              callbacks=[stop, checkpointing.EpochCheckpoint(path, stop)])
    fresh = keras.callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    ckpt = checkpointing.EpochCheckpoint(path, fresh)
    ckpt.restore(_model(seed=3))
    fresh.on_train_begin()  # Resets itself, as in fit; the checkpoint then restores it.
    ckpt.on_train_begin()
    assert (fresh.wait, fresh.best_epoch) == (stop.wait, stop.best_epoch)
    assert fresh.best == pytest.approx(stop.best)
    for a, b in zip(fresh.best_weights, stop.best_weights):
        np.testing.assert_array_equal(a, b)


def test_a_stopped_run_resumed_for_its_ending_stays_stopped(tmp_path):
    path = str(tmp_path / "ckpt.bin")
    model = _model(seed=1)
    # mode "max" on a falling loss: epoch 0 stays best, patience 1 stops after epoch 1.
    stop = keras.callbacks.EarlyStopping(monitor="loss", mode="max", patience=1,
                                         restore_best_weights=True)
    model.fit(_data(), epochs=4, verbose=0,
              callbacks=[stop, checkpointing.EpochCheckpoint(path, stop)])
    meta, _ = checkpointing.read_checkpoint(path)
    assert (meta["epoch"], meta["stopped"]) == (2, True)
    # Killed before results were written: the next start only runs the ending callbacks.
    resumed = _model(seed=3)
    fresh = keras.callbacks.EarlyStopping(monitor="loss", mode="max", patience=1)
    ckpt = checkpointing.EpochCheckpoint(path, fresh)
    ckpt.restore(resumed)
    ending = keras.callbacks.CallbackList([fresh, ckpt], model=resumed)
    ending.on_train_begin()
    ending.on_train_end()
    meta, _ = checkpointing.read_checkpoint(path)
    assert (meta["epoch"], meta["stopped"], meta["done"]) == (2, True, True)


def test_another_model_is_refused(tmp_path):
    path = str(tmp_path / "ckpt.bin")
    model = _model(seed=1)
    model.fit(_data(), epochs=1, verbose=0, callbacks=[checkpointing.EpochCheckpoint(path)])
    other = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([4]), {"a": keras.layers.Dense(1)},
                                  {"a": "mse"})
    other.compile(optimizer="sgd")
    other.build_for(tf.TensorSpec([None, 5]))
    other.optimizer.build(other.trainable_variables)
    with pytest.raises(ValueError, match="written by another model. Received: .* saved "
                                         "variables"):
        checkpointing.EpochCheckpoint(path).restore(other)
    assert checkpointing.EpochCheckpoint(str(tmp_path / "none.bin")).restore(other) == (0, False)


def test_truncate_csv_and_atomic_writes(tmp_path):
    path = str(tmp_path / "metrics.csv")
    open(path, "w").write("epoch,loss\n0,1.0\n1,0.5\n2,0.4\n")
    checkpointing.truncate_csv(path, 2)
    assert open(path).read() == "epoch,loss\n0,1.0\n1,0.5\n"
    checkpointing.atomic_write_json(str(tmp_path / "r.json"), {"a": 1})
    assert os.listdir(tmp_path) == sorted(os.listdir(tmp_path)) and \
        sorted(os.listdir(tmp_path)) == ["metrics.csv", "r.json"]


def test_epoch_order_depends_on_seed_and_epoch_only():
    ds = tf.data.Dataset.from_tensor_slices(np.arange(20, dtype="int64")).batch(4)
    whole, steps = epoch_data.epoch_stream(ds, batch_size=4, seed=3, epochs=4)
    batches = [b.numpy().tolist() for b in whole]
    assert steps == 5 and len(batches) == 20
    epochs = [sum(batches[e * 5:(e + 1) * 5], []) for e in range(4)]
    assert all(sorted(e) == list(range(20)) for e in epochs)   # Each epoch: one pass.
    assert epochs[0] != epochs[1]                               # Reshuffled every epoch.
    later, _ = epoch_data.epoch_stream(ds, batch_size=4, seed=3, epochs=4, initial_epoch=2)
    assert [b.numpy().tolist() for b in later] == batches[10:]
    # Epochs of 3 steps cut across passes: epoch 3 starts 9 batches in, inside pass 1.
    cut, _ = epoch_data.epoch_stream(ds, batch_size=4, seed=3, epochs=4, steps_per_epoch=3)
    cut_later, _ = epoch_data.epoch_stream(ds, batch_size=4, seed=3, epochs=4,
                                           steps_per_epoch=3, initial_epoch=3)
    assert [b.numpy().tolist() for b in cut_later][:3] == \
        [b.numpy().tolist() for b in cut][9:12]
    with pytest.raises(ValueError, match="Received: initial_epoch=4, epochs=4"):
        epoch_data.epoch_stream(ds, batch_size=4, seed=3, epochs=4, initial_epoch=4)
