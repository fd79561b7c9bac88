"""Run by tests/dense/test_metrics.py in a fresh process (two logical CPU replicas must be
configured before TensorFlow initialises): the streaming dense metrics in ``evaluate`` under
MirroredStrategy equal the plain functions, a per-batch convention's batch being each
replica's share of the global batch."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tf_mtl  # noqa: E402
from tf_mtl.dense.metrics import depth_metrics, normal_metrics, segmentation_metrics  # noqa: E402
from tf_mtl.dense.streaming_metrics import DepthError, NormalError, SegmentationScore  # noqa: E402

N, H, W, C, PER_REPLICA = 8, 5, 6, 3, 2
KEYS = {"segmentation": ("miou", "pixel_accuracy"), "depth": ("abs_err", "rel_err"),
        "normal": ("mean", "median", "within_11.25", "within_22.5", "within_30")}

rng = np.random.default_rng(0)
labels = rng.integers(-1, C, (N, H, W))
scores = rng.random((N, H, W, C)).astype(np.float32)
depth = rng.uniform(1, 3, (N, H, W, 1))
depth = np.where(rng.random((N, H, W, 1)) < 0.3, 0.0, depth).astype(np.float32)
depth_pred = (depth + rng.normal(0, 0.3, depth.shape)).astype(np.float32)
normal = rng.normal(size=(N, H, W, 3))
normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
normal = np.where(rng.random((N, H, W, 1)) < 0.3, 0.0, normal)
normal_pred = normal + rng.normal(0, 0.3, normal.shape)
normal, normal_pred = normal.astype(np.float32), normal_pred.astype(np.float32)
x = np.concatenate([scores, depth_pred, normal_pred], axis=-1)
ds = tf.data.Dataset.from_tensor_slices(
    (x, {"segmentation": labels, "depth": depth, "normal": normal})).batch(2 * PER_REPLICA)

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
SEGMENTATION = {"confusion": None, "mtan_legacy": PER_REPLICA, "binary": PER_REPLICA}
PIXELS = {"pixel_mean": None, "batch_mean": PER_REPLICA}
with strategy.scope():  # Every convention at once, each metric named "<convention>_<kind>".
    model = tf_mtl.MultiTaskModel(
        keras.layers.Identity(),
        {"segmentation": keras.layers.Lambda(lambda z: z[..., :C]),
         "depth": keras.layers.Lambda(lambda z: z[..., C:C + 1]),
         "normal": keras.layers.Lambda(lambda z: z[..., C + 1:])},
        {"segmentation": keras.losses.SparseCategoricalCrossentropy(ignore_class=-1),
         "depth": "mae", "normal": "mse"})
    model.compile(optimizer="sgd", metrics={
        "segmentation": [SegmentationScore(k, C, c, name=f"{c}_{k}")
                         for c in SEGMENTATION for k in KEYS["segmentation"]],
        "depth": [DepthError(k, c, name=f"{c}_{k}") for c in PIXELS for k in KEYS["depth"]],
        "normal": [NormalError(k, c, name=f"{c}_{k}") for c in PIXELS for k in KEYS["normal"]]})
logs = model.evaluate(ds, return_dict=True, verbose=0)
expected = {("segmentation", c): segmentation_metrics(labels, scores, C, c, size)
            for c, size in SEGMENTATION.items()}
for c, size in PIXELS.items():
    expected["depth", c] = depth_metrics(depth, depth_pred, c, size)
    expected["normal", c] = normal_metrics(normal, normal_pred, c, size)
for (task, convention), values in expected.items():
    for key, value in values.items():
        got = logs[f"{task}_{convention}_{key}"]
        tol = 0.0051 if (key, convention) == ("median", "pixel_mean") else 1e-5
        assert abs(got - value) <= tol, (task, convention, key, got, value)
print("distributed dense metrics check passed")
