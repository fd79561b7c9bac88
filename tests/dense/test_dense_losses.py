"""Dense losses by hand in NumPy: masks from each task's own target or from depth,
ignore labels, all-invalid batches, 003's binary per-class loss, and two replicas
giving one device's losses."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.fresh_process import ROOT, checkout_env
from tf_mtl.dense.losses import (BinaryPixelCrossEntropy, DepthL1, NormalCosine,
                                 SegmentationCrossEntropy, per_class_targets, validity_weights)

KINDS = {"seg": "segmentation", "depth": "depth", "normal": "normal"}


def _batch(seed, b=3, h=4, w=5, classes=4):
    rng = np.random.default_rng(seed)
    labels = rng.integers(-1, classes, (b, h, w)).astype("int32")
    depth = rng.uniform(0.5, 5, (b, h, w, 1)).astype("float32")
    depth[rng.uniform(size=(b, h, w)) < 0.3] = 0.0
    normal = rng.standard_normal((b, h, w, 3)).astype("float32")
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    normal[rng.uniform(size=(b, h, w)) < 0.3] = 0.0     # not where depth is invalid
    pred = {"seg": rng.standard_normal((b, h, w, classes)).astype("float32"),
            "depth": rng.uniform(0, 5, (b, h, w, 1)).astype("float32"),
            "normal": rng.standard_normal((b, h, w, 3)).astype("float32")}
    pred["normal"] /= np.linalg.norm(pred["normal"], axis=-1, keepdims=True)
    return {"seg": labels, "depth": depth, "normal": normal}, pred


def _numpy(y, pred, mask):
    """MTAN's utils.py formulas; the depth mask for depth and normals when mask='depth'."""
    m_depth = (y["depth"].sum(-1) != 0).astype("float64")
    m_normal = m_depth if mask == "depth" else (y["normal"].sum(-1) != 0).astype("float64")
    valid = y["seg"] != -1
    logp = pred["seg"] - np.log(np.exp(pred["seg"].astype("float64")).sum(-1, keepdims=True))
    nll = [-logp[i, j, k, y["seg"][i, j, k]] for i, j, k in zip(*np.nonzero(valid))]
    return {"seg": np.mean(nll),
            "depth": np.sum(np.abs(pred["depth"] - y["depth"])[..., 0] * m_depth) / m_depth.sum(),
            "normal": 1 - np.sum((pred["normal"] * y["normal"]).sum(-1) * m_normal)
            / m_normal.sum()}


LOSSES = {"seg": SegmentationCrossEntropy(), "depth": DepthL1(), "normal": NormalCosine()}


@pytest.mark.parametrize("mask", ["own", "depth"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_losses_with_masks_from_own_target_or_depth(mask, seed):
    y, pred = _batch(seed)
    weights = validity_weights(y, KINDS, mask=mask)
    expected = _numpy(y, pred, mask)
    for t, loss in LOSSES.items():
        np.testing.assert_allclose(float(loss(y[t], pred[t], sample_weight=weights[t])),
                                   expected[t], rtol=1e-5)
    if mask == "own":   # Without sample weights: each task's own mask.
        for t, loss in LOSSES.items():
            np.testing.assert_allclose(float(loss(y[t], pred[t])), expected[t], rtol=1e-5)
    other = _numpy(y, pred, "depth" if mask == "own" else "own")
    assert abs(float(LOSSES["normal"](y["normal"], pred["normal"], weights["normal"]))
               - other["normal"]) > 1e-4   # the two sources differ on this batch


def test_log_probabilities_and_logits_give_the_same_cross_entropy():
    y, pred = _batch(3)
    log_probs = tf.nn.log_softmax(pred["seg"]).numpy()
    loss = SegmentationCrossEntropy()
    np.testing.assert_allclose(float(loss(y["seg"], log_probs)), float(loss(y["seg"], pred["seg"])),
                               rtol=1e-6)
    np.testing.assert_allclose(float(loss(y["seg"][..., None], pred["seg"])),
                               float(loss(y["seg"], pred["seg"])), rtol=1e-6)
    ignore_255 = SegmentationCrossEntropy(ignore_index=255)
    labels = np.where(y["seg"] == -1, 255, y["seg"])
    np.testing.assert_allclose(float(ignore_255(labels, pred["seg"])),
                               float(loss(y["seg"], pred["seg"])), rtol=1e-6)


def test_all_invalid_contributes_nothing_and_has_finite_gradients():
    y, pred = _batch(4)
    y = {"seg": np.full_like(y["seg"], -1), "depth": np.zeros_like(y["depth"]),
         "normal": np.zeros_like(y["normal"])}
    weights = validity_weights(y, KINDS, mask="depth")
    for t, loss in LOSSES.items():
        p = tf.Variable(pred[t])
        with tf.GradientTape() as tape:
            value = loss(y[t], p, sample_weight=weights[t])
        assert float(value) == 0.0
        assert np.isfinite(tape.gradient(value, p).numpy()).all()


def test_binary_per_class_loss_of_003():
    y, pred = _batch(5, classes=3)
    targets = per_class_targets(y["seg"], 3).numpy()
    expected_targets = np.stack([(y["seg"] == c) for c in range(3)], -1).astype("float32")
    np.testing.assert_array_equal(targets, expected_targets)   # -1: negative for every class
    logits = np.random.default_rng(6).standard_normal(y["seg"].shape + (1,)).astype("float32")
    p = 1 / (1 + np.exp(-logits[..., 0].astype("float64")))
    t = targets[..., 1]
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    loss = BinaryPixelCrossEntropy()
    np.testing.assert_allclose(float(loss(t, logits)), bce.mean(), rtol=1e-5)   # every pixel
    keep = (y["seg"] != -1).astype("float32")
    np.testing.assert_allclose(float(loss(t[..., None], logits, sample_weight=keep)),
                               (bce * keep).sum() / keep.sum(), rtol=1e-5)


def test_bad_arguments():
    y, _ = _batch(7)
    with pytest.raises(ValueError, match="Received: mask='target'"):
        validity_weights(y, KINDS, mask="target")   # the old name of "own"
    with pytest.raises(ValueError, match="Received: kinds"):
        validity_weights(y, {"seg": "segmentation"})
    with pytest.raises(ValueError, match="Received: kinds"):
        validity_weights(y, {**KINDS, "depth": "edges"})
    with pytest.raises(ValueError, match="Received: kinds"):
        validity_weights(y, {"seg": "segmentation", "depth": "normal", "normal": "normal"},
                         mask="depth")
    with pytest.raises(ValueError, match="Received: ignore_index"):
        SegmentationCrossEntropy(ignore_index=-1.5)
    clone = SegmentationCrossEntropy.from_config(SegmentationCrossEntropy(255).get_config())
    assert clone.ignore_index == 255 and clone.reduction == "mean_with_sample_weight"


_TWO_REPLICAS = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, keras
    from tf_mtl import distribute
    distribute.set_logical_cpus(2)
    import tf_mtl
    from tf_mtl.dense.losses import DepthL1, NormalCosine, SegmentationCrossEntropy
    from tests.dense.test_dense_losses import KINDS, _batch
    from tf_mtl.dense.losses import validity_weights
    y, pred = _batch(8, b=4)
    y["depth"][:2] = 0.0            # replica 0 has no valid depth pixel at all
    sw = {t: w.numpy() for t, w in validity_weights(y, KINDS).items()}
    losses = {"seg": SegmentationCrossEntropy(), "depth": DepthL1(), "normal": NormalCosine()}
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = tf_mtl.MultiTaskModel(keras.layers.Identity(),
                                      {t: keras.layers.Identity() for t in KINDS}, losses)
    def part(ctx, tree):
        r = ctx.replica_id_in_sync_group
        return {t: v[2 * r:2 * r + 2] for t, v in tree.items()}
    args = [strategy.experimental_distribute_values_from_function(
        lambda ctx, tree=tree: part(ctx, tree)) for tree in (y, pred, sw)]
    per_replica = strategy.run(tf.function(
        lambda a, b, c: model.compute_task_losses(a, b, c)), args=args)
    two = strategy.reduce("SUM", per_replica, axis=None).numpy()
    one = model.compute_task_losses(y, pred, sw).numpy()
    naive = strategy.reduce("SUM", strategy.run(tf.function(
        lambda a, b, c: model.compute_task_losses(a, b, c, factors=None)), args=args),
        axis=None).numpy()
    try:
        strategy.run(tf.function(lambda a, b: model.compute_task_losses(a, b)), args=args[:2])
        refused = ""
    except ValueError as e:
        refused = str(e)
    print(json.dumps({"two": two.tolist(), "one": one.tolist(), "naive": naive.tolist(),
                      "refused": refused}))
""")


def test_two_replicas_give_the_one_device_mean_over_valid_pixels():
    out = subprocess.run([sys.executable, "-c", _TWO_REPLICAS], capture_output=True, text=True,
                         timeout=600, cwd=ROOT, env=checkout_env())
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(result["two"], result["one"], rtol=1e-5)
    # Keras's per-replica means alone (no global factors) are off: replica 0 has no depth.
    assert abs(result["naive"][0] - result["one"][0]) > 0.1 * result["one"][0]
    assert "needs the valid-pixel mask as the task's sample weights" in result["refused"]
