"""Dense metrics against NumPy written from the sources' definitions (notes §4), loop by loop.

Split: 5 images (an uneven last batch at batch 2), images 2 and 3 (the second batch) without
a labelled / valid pixel, scattered ignore labels and invalid pixels elsewhere.
"""

import doctest

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.dense import metrics as dense_metrics
from tf_mtl.dense import streaming_metrics
from tf_mtl.dense.metrics import delta_m, depth_metrics, normal_metrics, segmentation_metrics
from tf_mtl.dense.streaming_metrics import DepthError, NormalError, SegmentationScore

N, H, W, C, BATCH = 5, 6, 7, 4, 2


def _split(seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, (N, H, W))
    labels[rng.random((N, H, W)) < 0.2] = -1
    labels[2:4] = -1                                             # a batch with no labelled pixel
    scores = rng.random((N, H, W, C)).astype(np.float32)
    depth = rng.uniform(0.5, 5.0, (N, H, W, 1)).astype(np.float32)
    depth[rng.random((N, H, W)) < 0.3] = 0.0
    depth[2:4] = 0.0                                             # a batch with no valid pixel
    depth_pred = (depth + rng.normal(0, 0.5, depth.shape)).astype(np.float32)
    normal = rng.normal(size=(N, H, W, 3))
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    normal[rng.random((N, H, W)) < 0.3] = 0.0
    normal[2:4] = 0.0
    normal_pred = normal + rng.normal(0, 0.4, normal.shape)
    normal_pred /= np.linalg.norm(normal_pred, axis=-1, keepdims=True)
    return (labels, scores, depth, depth_pred, normal.astype(np.float32),
            normal_pred.astype(np.float32))


def _batches(n, size):
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


# ------------------------------------------------------------------ NumPy references
def ref_confusion(labels, pred):
    matrix = np.zeros((C, C))
    for y, p in zip(labels.ravel(), pred.ravel()):
        if y >= 0:
            matrix[y, p] += 1
    ious = [matrix[c, c] / (matrix[c].sum() + matrix[:, c].sum() - matrix[c, c])
            for c in range(C) if matrix[c].sum() + matrix[:, c].sum() > 0]
    return np.mean(ious), np.trace(matrix) / matrix.sum()


def ref_mtan_legacy(labels, pred, batch):
    values = []
    for images in _batches(len(labels), batch):
        mious, accs = [], []
        for i in images:
            y, p = labels[i], pred[i]
            if not (y >= 0).any():
                continue                                         # no labelled pixel: left out
            ious = []
            for c in range(C):
                union = (((p == c) | (y == c)) & (y >= 0)).sum()
                if union:
                    ious.append(((p == c) & (y == c)).sum() / union)
            mious.append(np.mean(ious))
            accs.append((p == y).sum() / (y >= 0).sum())
        if mious:
            values.append((np.mean(mious), np.mean(accs)))
    return tuple(np.mean(values, axis=0))


def ref_binary(labels, probabilities, batch):
    class_ious, accuracies = [], []
    for c in range(C):
        batch_ious = []
        for images in _batches(len(labels), batch):
            ious = []
            for i in images:
                positive, truth = probabilities[i, ..., c] >= 0.5, labels[i] == c
                union = (positive | truth).sum()
                if union:
                    ious.append((positive & truth).sum() / union)
            if ious:
                batch_ious.append(np.mean(ious))
        class_ious.append(np.mean(batch_ious) if batch_ious else 0.0)
    for images in _batches(len(labels), batch):
        hits = [(probabilities[i, ..., c] >= 0.5) == (labels[i] == c) for i in images for c in range(C)]
        accuracies.append(np.mean(hits))
    return np.mean(class_ious), np.mean(accuracies)


def ref_depth(y, p, batch):
    """(per-batch mean over batches with a valid pixel, mean over all valid pixels)."""
    def errors(images):
        out = [(abs(p[i, h, w, 0] - y[i, h, w, 0]), abs(p[i, h, w, 0] - y[i, h, w, 0]) / y[i, h, w, 0])
               for i in images for h in range(H) for w in range(W) if y[i, h, w, 0] != 0]
        return np.array(out).reshape(-1, 2)
    per_batch = [errors(b).mean(0) for b in _batches(len(y), batch) if len(errors(b))]
    return np.mean(per_batch, axis=0), errors(range(len(y))).mean(0)


def ref_normal(y, p, batch, normalize):
    def stats(images):
        angles = []
        for i in images:
            for h in range(H):
                for w in range(W):
                    if y[i, h, w].sum() != 0:
                        q = p[i, h, w] / np.linalg.norm(p[i, h, w]) if normalize else p[i, h, w]
                        angles.append(np.degrees(np.arccos(np.clip(np.dot(q, y[i, h, w]), -1, 1))))
        a = np.array(angles)
        return None if not a.size else [a.mean(), np.median(a), (a < 11.25).mean(),
                                        (a < 22.5).mean(), (a < 30).mean()]
    if batch is None:
        return stats(range(len(y)))
    return np.mean([s for s in map(stats, _batches(len(y), batch)) if s is not None], axis=0)


NORMAL_KEYS = ("mean", "median", "within_11.25", "within_22.5", "within_30")


# ------------------------------------------------------------------ conventions
def test_confusion_matches_reference_and_ignores_labels():
    labels, scores = _split()[:2]
    out = segmentation_metrics(labels, scores, C)
    miou, acc = ref_confusion(labels, scores.argmax(-1))
    assert out["miou"] == pytest.approx(miou, abs=1e-6)
    assert out["pixel_accuracy"] == pytest.approx(acc, abs=1e-6)
    # Class ids give the same; what is predicted on ignored pixels changes nothing.
    ids = scores.argmax(-1)
    ids_elsewhere = np.where(labels < 0, (ids + 1) % C, ids)
    assert segmentation_metrics(labels, ids_elsewhere, C) == pytest.approx(out, abs=1e-9)


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_mtan_legacy_matches_reference_incl_uneven_last_batch(batch):
    labels, scores = _split(1)[:2]
    out = segmentation_metrics(labels, scores, C, convention="mtan_legacy", batch_size=batch)
    miou, acc = ref_mtan_legacy(labels, scores.argmax(-1), batch)
    assert np.isfinite(list(out.values())).all()
    assert out["miou"] == pytest.approx(miou, abs=1e-6)
    assert out["pixel_accuracy"] == pytest.approx(acc, abs=1e-6)


@pytest.mark.parametrize("batch", [1, 2])
def test_binary_matches_reference_ignored_pixels_are_negatives(batch):
    labels, scores = _split(2)[:2]
    out = segmentation_metrics(labels, scores, C, convention="binary", batch_size=batch)
    miou, acc = ref_binary(labels, scores, batch)
    assert out["miou"] == pytest.approx(miou, abs=1e-6)
    assert out["pixel_accuracy"] == pytest.approx(acc, abs=1e-6)
    logits = np.log(scores) - np.log1p(-scores)
    from_logits = segmentation_metrics(labels, logits, C, convention="binary", batch_size=batch,
                                       from_logits=True)
    assert from_logits == pytest.approx(out, abs=1e-6)


def test_binary_class_never_in_a_union_scores_zero():
    labels = np.zeros((2, 3, 3), int)
    probabilities = np.zeros((2, 3, 3, 2), np.float32)
    probabilities[..., 0] = 1.0                                 # class 0 perfect, class 1 absent
    out = segmentation_metrics(labels, probabilities, 2, convention="binary", batch_size=1)
    assert out == pytest.approx({"miou": 0.5, "pixel_accuracy": 1.0})


@pytest.mark.parametrize("convention,batch",
                         [("batch_mean", 2), ("batch_mean", 3), ("pixel_mean", None)])
def test_depth_matches_reference_without_nan(convention, batch):
    _, _, y, p = _split(3)[:4]
    out = depth_metrics(y, p, convention=convention, batch_size=batch)
    per_batch, per_pixel = ref_depth(y, p, batch or 1)
    expected = per_batch if convention == "batch_mean" else per_pixel
    assert [out["abs_err"], out["rel_err"]] == pytest.approx(expected, rel=1e-5)


def test_all_invalid_depth_and_normals_give_zero_not_nan():
    zeros = np.zeros((3, 2, 2, 1), np.float32)
    for convention, batch in [("batch_mean", 2), ("pixel_mean", None)]:
        assert depth_metrics(zeros, zeros + 1, convention, batch) == {"abs_err": 0.0, "rel_err": 0.0}
        out = normal_metrics(np.zeros((3, 2, 2, 3)), np.ones((3, 2, 2, 3)), convention, batch)
        assert out == dict.fromkeys(NORMAL_KEYS, 0.0)


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_normals_batch_mean_matches_reference(batch):
    y, p = _split(4)[4:]
    out = normal_metrics(y, p * 1.3, convention="batch_mean", batch_size=batch)  # used as given
    expected = ref_normal(y, p * 1.3, batch, normalize=False)
    assert [out[k] for k in NORMAL_KEYS] == pytest.approx(expected, rel=1e-5, abs=1e-4)


def test_normals_pixel_mean_matches_reference_with_exact_median():
    y, p = _split(5)[4:]
    out = normal_metrics(y, p * 1.3, convention="pixel_mean")             # normalized first
    expected = ref_normal(y, p * 1.3, None, normalize=True)
    assert [out[k] for k in NORMAL_KEYS] == pytest.approx(expected, rel=1e-5, abs=1e-4)


def test_swapped_conventions_give_different_numbers():
    labels, scores, depth, depth_pred, normal, normal_pred = _split(6)
    legacy = segmentation_metrics(labels, scores, C, convention="mtan_legacy", batch_size=BATCH)
    confusion = segmentation_metrics(labels, scores, C)
    binary = segmentation_metrics(labels, scores, C, convention="binary", batch_size=BATCH)
    for a, b in [(legacy, confusion), (legacy, binary), (confusion, binary)]:
        assert abs(a["miou"] - b["miou"]) > 1e-3 and abs(a["pixel_accuracy"] - b["pixel_accuracy"]) > 1e-3
    # The uneven last batch weighs as much as a full one: batch 1 and 2 differ.
    assert abs(legacy["miou"] - segmentation_metrics(labels, scores, C, "mtan_legacy", 1)["miou"]) > 1e-4
    batch = depth_metrics(depth, depth_pred, "batch_mean", BATCH)
    pixel = depth_metrics(depth, depth_pred, "pixel_mean")
    assert abs(batch["abs_err"] - pixel["abs_err"]) > 1e-4
    batch = normal_metrics(normal, normal_pred, "batch_mean", BATCH)
    pixel = normal_metrics(normal, normal_pred, "pixel_mean")
    assert abs(batch["mean"] - pixel["mean"]) > 1e-3 and abs(batch["median"] - pixel["median"]) > 1e-3


# ------------------------------------------------------------------ Δm
def test_delta_m_by_hand_both_conventions_and_signs():
    hib = {"seg": {"miou": True, "acc": True}, "depth": {"abs": False}}
    base = {"seg": {"miou": 0.40, "acc": 0.50}, "depth": {"abs": 0.80}}
    new = {"seg": {"miou": 0.44, "acc": 0.45}, "depth": {"abs": 0.60}, "extra": {"x": 1.0}}
    # Per metric, + = better: miou +0.10, acc -0.10, abs +0.25.
    # LibMTL: mean of task means = ((0.10 - 0.10) / 2 + 0.25) / 2 = 0.125 (better).
    assert delta_m(new, base, hib) == pytest.approx(0.125)
    # Nash-MTL: -100 x mean over the 3 metrics = -100 x 0.25 / 3 (negative = better).
    assert delta_m(new, base, hib, convention="nash_mtl") == pytest.approx(-25.0 / 3)
    worse = {"seg": {"miou": 0.36, "acc": 0.50}, "depth": {"abs": 0.80}}   # miou -0.10 only
    assert delta_m(worse, base, hib) == pytest.approx(-0.025)
    assert delta_m(worse, base, hib, convention="nash_mtl") == pytest.approx(100 * 0.1 / 3)
    assert delta_m(base, base, hib) == 0.0


def test_delta_m_tables_name_the_metric_functions_keys():
    labels, scores, depth, depth_pred, normal, normal_pred = _split()
    results = {"segmentation": segmentation_metrics(labels, scores, C),
               "depth": depth_metrics(depth, depth_pred, "pixel_mean"),
               "normal": normal_metrics(normal, normal_pred, "pixel_mean")}
    for task, metrics in dense_metrics.NYUV2_HIGHER_IS_BETTER.items():
        assert set(metrics) == set(results[task]) == set(dense_metrics.NYUV2_SINGLE_TASK_BASELINE[task])
    assert sum(map(len, dense_metrics.NYUV2_HIGHER_IS_BETTER.values())) == 9
    assert [v for m in dense_metrics.NYUV2_HIGHER_IS_BETTER.values() for v in m.values()] == \
        [True, True, False, False, False, False, True, True, True]        # LibMTL / Nash-MTL SIGN
    assert set(dense_metrics.CITYSCAPES_HIGHER_IS_BETTER) == {"segmentation", "depth"}
    assert np.isfinite(delta_m(results, dense_metrics.NYUV2_SINGLE_TASK_BASELINE,
                               dense_metrics.NYUV2_HIGHER_IS_BETTER, "nash_mtl"))


# ------------------------------------------------------------------ streaming
def _identity_model():
    """A MultiTaskModel whose input holds the predictions: heads slice them out."""
    heads = {"segmentation": keras.layers.Lambda(lambda z: z[..., :C]),
             "depth": keras.layers.Lambda(lambda z: z[..., C:C + 1]),
             "normal": keras.layers.Lambda(lambda z: z[..., C + 1:])}
    losses = {"segmentation": keras.losses.SparseCategoricalCrossentropy(ignore_class=-1),
              "depth": "mae", "normal": "mse"}
    return tf_mtl.MultiTaskModel(keras.layers.Identity(), heads, losses)


@pytest.mark.parametrize("per_batch", [True, False])
def test_streaming_metrics_in_evaluate_equal_the_functions(per_batch):
    labels, scores, depth, depth_pred, normal, normal_pred = _split(7)
    seg, pix = ("mtan_legacy", "batch_mean") if per_batch else ("confusion", "pixel_mean")
    model = _identity_model()
    metrics = {"segmentation": [SegmentationScore(k, C, seg) for k in ("miou", "pixel_accuracy")],
               "depth": [DepthError(k, pix) for k in ("abs_err", "rel_err")],
               "normal": [NormalError(k, pix) for k in NORMAL_KEYS]}
    model.compile(optimizer="sgd", metrics=metrics)
    x = np.concatenate([scores, depth_pred, normal_pred], axis=-1)
    ds = tf.data.Dataset.from_tensor_slices(
        (x, {"segmentation": labels, "depth": depth, "normal": normal})).batch(BATCH)
    logs = model.evaluate(ds, return_dict=True, verbose=0)
    size = BATCH if per_batch else None
    expected = {"segmentation": segmentation_metrics(labels, scores, C, seg, size),
                "depth": depth_metrics(depth, depth_pred, pix, size),
                "normal": normal_metrics(normal, normal_pred, pix, size)}
    for task, values in expected.items():
        for key, value in values.items():
            # The pixel_mean median is a histogram estimate: within half a 0.01-degree bin.
            tol = 0.005 + 1e-4 if (task, key, per_batch) == ("normal", "median", False) else 1e-5
            assert logs[f"{task}_{key}"] == pytest.approx(value, abs=tol), (task, key)


def test_streaming_binary_weights_config_and_xla():
    labels, scores = _split(8)[:2]
    metric = SegmentationScore("pixel_accuracy", C, "binary", from_logits=False, name="acc")
    clone = SegmentationScore.from_config(metric.get_config())
    assert (clone.name, clone.kind, clone.num_classes, clone.convention) == (
        "acc", "pixel_accuracy", C, "binary")
    step = tf.function(metric.update_state, jit_compile=True)
    for b in _batches(N, BATCH):
        step(labels[list(b)], scores[list(b)])
    expected = segmentation_metrics(labels, scores, C, "binary", BATCH)["pixel_accuracy"]
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    # A zero sample_weight leaves pixels out: weighting out the last image = dropping it.
    weighted = SegmentationScore("miou", C, "confusion")
    weights = np.ones((N, H, W), np.float32)
    weights[-1] = 0
    weighted.update_state(labels, scores, sample_weight=weights)
    assert float(weighted.result()) == pytest.approx(
        segmentation_metrics(labels[:-1], scores[:-1], C)["miou"], abs=1e-6)
    for other in (DepthError("rel_err", "pixel_mean"),
                  NormalError("within_30", "pixel_mean", median_bins=90)):
        assert type(other).from_config(other.get_config()).get_config() == other.get_config()


def test_streaming_metric_refuses_out_of_range_labels():
    metric = SegmentationScore("miou", 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels >= num_classes"):
        metric.update_state(np.array([[[0, 2]]]), np.zeros((1, 1, 2, 2)))


# ------------------------------------------------------------------ bad input
def test_bad_inputs_name_the_argument():
    labels, scores, depth, depth_pred, normal, normal_pred = _split()
    cases = [
        (lambda: segmentation_metrics(labels, scores, C, convention="miou"), "convention"),
        (lambda: segmentation_metrics(labels, scores, C + 1), "num_classes"),
        (lambda: segmentation_metrics(labels, scores, 0), "num_classes"),
        (lambda: segmentation_metrics(np.where(labels == 3, C, labels), scores, C), "labels"),
        (lambda: segmentation_metrics(np.where(labels == 3, -2, labels), scores, C), "labels"),
        (lambda: segmentation_metrics(labels.astype(np.float32), scores, C), "labels"),
        (lambda: segmentation_metrics(labels, scores[:, :-1], C), "predictions"),
        (lambda: segmentation_metrics(labels, scores.argmax(-1) + 1, C), "predictions"),
        (lambda: segmentation_metrics(labels, scores.argmax(-1), C, "binary", 2), "predictions"),
        (lambda: segmentation_metrics(labels, scores, C, batch_size=2), "batch_size"),
        (lambda: segmentation_metrics(labels, scores, C, "mtan_legacy"), "batch_size"),
        (lambda: segmentation_metrics(labels, scores, C, "binary", 0), "batch_size"),
        (lambda: depth_metrics(depth, depth_pred, "pixel_mean", 2), "batch_size"),
        (lambda: depth_metrics(depth, depth_pred), "batch_size"),
        (lambda: depth_metrics(depth, depth_pred, "batch_mean", -1), "batch_size"),
        (lambda: depth_metrics(depth, depth_pred, "median", 2), "convention"),
        (lambda: depth_metrics(depth[..., 0], depth_pred[..., 0], "pixel_mean"), "depth_true"),
        (lambda: depth_metrics(depth, depth_pred[:, :-1], "pixel_mean"), "depth_pred"),
        (lambda: normal_metrics(normal, normal_pred[..., :2], "pixel_mean"), "normal_pred"),
        (lambda: normal_metrics(normal[..., :2], normal_pred[..., :2], "pixel_mean"), "normal_true"),
        (lambda: normal_metrics(normal, normal_pred, "mean", 2), "convention"),
        (lambda: delta_m({}, {}, {"a": {"m": True}}, convention="percent"), "convention"),
        (lambda: delta_m({"a": {"m": 1.0}}, {"a": {"m": 0.0}}, {"a": {"m": True}}), "baseline"),
        (lambda: delta_m({"a": {}}, {"a": {"m": 1.0}}, {"a": {"m": True}}), "results"),
        (lambda: delta_m({"a": {"m": 1.0}}, {}, {"a": {"m": True}}), "baseline"),
        (lambda: delta_m({}, {}, {"a": {"m": 1}}), "higher_is_better"),
        (lambda: SegmentationScore("iou", C), "kind"),
        (lambda: NormalError("mean", median_bins=0), "median_bins"),
    ]
    for call, argument in cases:
        with pytest.raises(ValueError, match="Received") as info:
            call()
        assert f"`{argument}`" in str(info.value), (argument, str(info.value))


def test_public_home_and_docstring_examples():
    for name in ("segmentation_metrics", "depth_metrics", "normal_metrics", "delta_m",
                 "SegmentationScore", "DepthError", "NormalError", "NYUV2_HIGHER_IS_BETTER",
                 "CITYSCAPES_HIGHER_IS_BETTER", "NYUV2_SINGLE_TASK_BASELINE"):
        assert name in tf_mtl.metrics.__all__ and getattr(tf_mtl.metrics, name) is not None
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for module in (dense_metrics, streaming_metrics):
        for test in doctest.DocTestFinder().find(module):
            test.globs.update(tf_mtl=tf_mtl, np=np, keras=keras, tf=tf)
            runner.run(test)
    assert runner.summarize(verbose=False).failed == 0


def test_streaming_metrics_under_mirrored_strategy_equal_the_functions():
    from tests.fresh_process import run_check
    proc = run_check("dense/distributed_metrics_check.py")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "distributed dense metrics check passed" in proc.stdout
