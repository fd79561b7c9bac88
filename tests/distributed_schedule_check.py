"""Run by tests/test_step_schedule.py in a fresh process (two logical CPU replicas must be
configured before TensorFlow initialises its devices): probes on a schedule (every > 1) and
the rules that reduce across replicas train under MirroredStrategy exactly as on one device,
step by step: weights, rule state, per-step logs (IT-MTL's choice) and affinities."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_mtl  # noqa: E402
from tf_mtl import updates  # noqa: E402
from tf_mtl.transference import Transference  # noqa: E402

TASKS = ["t0", "t1", "t2"]


def encoder():
    return keras.Sequential([
        keras.layers.Dense(8, activation="relu", kernel_regularizer=keras.regularizers.L2(0.01)),
        keras.layers.Dense(4, activation="tanh")])


def mr_encoder():
    """A Maximum Roaming encoder."""
    return keras.Sequential([keras.layers.Dense(8, activation="relu"),
                             tf_mtl.routing.MaximumRoaming(num_tasks=3, sharing_ratio=0.5,
                                                      update_every=2),
                             keras.layers.Dense(4, activation="tanh")])


CASES = {  # name: (rule, probes, encoder)
    "equal_probe_every3": (updates.EqualWeights, lambda: [
        Transference(every=3, update_heads=True, log_pairs=True, name="exact"),
        Transference(every=1, method="first_order", name="first_order")], encoder),
    "itmtl": (lambda: updates.ITMTL(["t0", "t1|t2", "all", updates.PCGrad(seed=1)]),
              list, encoder),
    "uncertainty": (updates.UncertaintyWeights, lambda: [Transference(every=2)], encoder),
    "pcgrad": (lambda: updates.PCGrad(seed=3), list, encoder),
}


def make(case):
    rule, probes, enc = CASES[case]
    keras.utils.set_random_seed(0)
    losses = {t: "mse" for t in TASKS}
    if case == "odd_batch":  # Divides by the sum of the sample weights, not the count.
        losses["t2"] = keras.losses.MeanSquaredError(reduction="mean_with_sample_weight")
    model = tf_mtl.MultiTaskModel(
        enc(), {t: keras.layers.Dense(1) for t in TASKS}, losses,
        loss_weights={"t0": 0.5, "t1": 2.0}, update=rule(), probes=probes())
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    return model


class StepLogs(keras.callbacks.Callback):
    """Every step's logs (IT-MTL's choice, the rules' weights)."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append({k: float(v) for k, v in (logs or {}).items()})


def state(model):
    """Weights, the rule's state and the model's variables that live on every replica."""
    values = model.get_weights() + [v.numpy() for v in model.update.variables]
    return values + [v.numpy() for v in model.optimizer.variables]


def train(model, x, y):
    steps = StepLogs()
    if isinstance(x, tf.data.Dataset):
        history = model.fit(x, epochs=2, verbose=0, callbacks=[steps]).history
    else:
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                            callbacks=[steps]).history
    return history, steps.steps


def check(case, strategy, x, y, num_steps=8):
    with strategy.scope():
        mirrored = make(case)
    h_mirrored, s_mirrored = train(mirrored, x, y)
    single = make(case)
    h_single, s_single = train(single, x, y)
    assert set(h_mirrored) == set(h_single), (case, set(h_mirrored) ^ set(h_single))
    for key in h_single:
        np.testing.assert_allclose(h_mirrored[key], h_single[key], rtol=2e-4, atol=1e-6,
                                   err_msg=f"{case}: {key}")
    assert len(s_mirrored) == len(s_single) == num_steps
    for i, (a, b) in enumerate(zip(s_mirrored, s_single)):
        assert set(a) == set(b), (case, i)
        for key in b:
            np.testing.assert_allclose(a[key], b[key], rtol=2e-4, atol=1e-6,
                                       err_msg=f"{case}: step {i}: {key}")
    for a, b in zip(state(mirrored), state(single)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=case)
    return mirrored, single, h_single, s_single


def check_roaming_masks(mirrored, single):
    """Each replica holds the same masks (and visited sets, counters), equal to one
    device's, and the plan did move (8 steps, an update every 2)."""
    layer, reference = mirrored.encoder.layers[1], single.encoder.layers[1]
    assert int(reference.updates_done.numpy()) == 4   # after steps 2, 4, 6, 8
    assert not np.array_equal(reference.masks.numpy(), reference.initial_masks)
    names = [v.name for v in layer.non_trainable_variables]
    assert "masks" in names and "visited" in names, names
    for v, r in zip(layer.non_trainable_variables, reference.non_trainable_variables):
        copies = [c.numpy() for c in
                  mirrored.distribute_strategy.experimental_local_results(v.value)]
        assert len(copies) == 2, v.name
        for c in copies:
            np.testing.assert_array_equal(c, r.numpy(), err_msg=v.name)


def main():
    x, y, _ = tf_mtl.data.synthetic_arrays(num_tasks=3, num_groups=3, num_examples=64)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    _, _, h, steps = check("equal_probe_every3", strategy, x, y)
    # 4 steps an epoch at iterations 0..7: exact measures at 0, 3 | 6.
    assert h["exact/steps"] == [2.0, 1.0] and h["first_order/steps"] == [4.0, 4.0], h
    assert "exact/t0|t1|t2>t1" in h
    print("equal_probe_every3 ok", flush=True)
    _, _, h, steps = check("itmtl", strategy, x, y)
    choices = [s["itmtl/choice"] for s in steps]
    assert len(set(choices)) > 1, choices   # a choice that never changes compares little
    print("itmtl ok", choices, flush=True)
    # A last partial batch splits unevenly (15 examples: 8 and 7 per replica), with
    # per-task sample weights and one loss dividing by their sum.
    CASES["odd_batch"] = (updates.EqualWeights, lambda: [
        Transference(every=2, name="exact"), Transference(method="cosine", name="cos")], encoder)
    weights = np.linspace(0.2, 2.0, 31).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x[:31], {t: v[:31] for t, v in y.items()}, {
        "t0": weights, "t1": np.ones(31, "float32"), "t2": weights[::-1].copy()})).batch(16)
    check("odd_batch", strategy, ds, None, num_steps=4)
    print("odd_batch ok", flush=True)
    for case in ("uncertainty", "pcgrad"):
        check(case, strategy, x, y)
        print(case, "ok", flush=True)
    CASES["roaming"] = (updates.EqualWeights, list, mr_encoder)
    mirrored, single, _, _ = check("roaming", strategy, x, y)
    check_roaming_masks(mirrored, single)
    print("roaming ok", flush=True)
    # Several steps per call: the due set would change inside the compiled loop.
    with strategy.scope():
        model = make("uncertainty")
        model.compile(optimizer="sgd", steps_per_execution=2)
    try:
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    except ValueError as e:
        assert "steps_per_execution=2" in str(e) and "steps_per_execution=1" in str(e), e
    else:
        raise AssertionError("steps_per_execution=2 with every=2 under 2 replicas should fail")
    print("distributed schedule check passed")


if __name__ == "__main__":
    sys.exit(main())
