"""The test metrics of a dense run count each target's own valid pixels (003's mask="depth"
changes the losses, not the metrics), against NumPy from Maximum Roaming's metric code."""

import numpy as np
import tensorflow as tf

from tf_mtl.data import nyuv2
from tf_mtl.data.dense_files import write_nyuv2_like
from tf_mtl.experiments.dense_evaluation import evaluate


def _normal_errors_by_batch(batches):
    """MR's ``normal_error``: angles over pixels whose target is non-zero, per batch; the
    mean, and the fraction within 11.25 degrees, averaged over batches."""
    means, within = [], []
    for target, prediction in batches:
        valid = target.sum(-1) != 0
        p = prediction / np.linalg.norm(prediction, axis=-1, keepdims=True)   # the head's
        cos = np.clip((p * target).sum(-1), -1, 1)[valid]
        angles = np.degrees(np.arccos(cos))
        means.append(angles.mean())
        within.append((angles < 11.25).mean())
    return np.mean(means), np.mean(within)


def test_normal_metrics_count_the_normals_own_pixels_under_the_depth_mask(tmp_path):
    root = write_nyuv2_like(str(tmp_path), n_train=1, n_val=5, height=16, width=32, seed=3)
    data = nyuv2(root, "val", tasks=("depth", "normal"), mask="depth", batch_size=2,
                 shuffle=False)
    rng = np.random.default_rng(0)
    fixed = tf.constant(rng.normal(size=(1, 16, 32, 3)), tf.float32)

    def model(x, training=False):
        n = tf.shape(x)[0]
        return {"depth": tf.reduce_mean(x, -1, keepdims=True),
                "normal": tf.math.l2_normalize(tf.repeat(fixed, n, axis=0) + x, -1)}

    out = evaluate(model, data, {"depth": (1, "depth_l1"), "normal": (3, "normal_cosine")},
                   {"depth": "batch_mean", "normal": "batch_mean"})
    batches, differs = [], False
    for x, y, w in data:
        x = x.numpy()
        normal = y["normal"].numpy()
        batches.append((normal, np.repeat(fixed.numpy(), len(x), 0) + x))
        # The loader's normal weights are the depth's validity, which differs here.
        differs |= bool(np.any((w["normal"].numpy() != 0) != (normal.sum(-1) != 0)))
    assert differs
    mean, within = _normal_errors_by_batch(batches)
    np.testing.assert_allclose(out["normal"]["mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(out["normal"]["within_11.25"], within, atol=1e-6)
