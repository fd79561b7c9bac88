"""SegNet-MTAN: align_corners upsampling against NumPy, the reference's parameter count
by hand, output shapes, and task_variables = exactly that task's attention modules."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.dense.heads import dense_head
from tf_mtl.dense.mtan import SegNetMTAN, upsample_bilinear_2x

TASKS = ["segmentation", "depth", "normal"]


def _numpy_align_corners_2x(x):
    """Bilinear x2 with align_corners=True from the definition: output index o reads
    source coordinate o (n - 1) / (2n - 1), interpolating its two neighbours."""
    def axis(a, ax):
        n = a.shape[ax]
        out = []
        for o in range(2 * n):
            s = o * (n - 1) / (2 * n - 1) if n > 1 else 0.0
            lo = int(np.floor(s))
            hi = min(lo + 1, n - 1)
            f = s - lo
            out.append(np.take(a, lo, ax) * (1 - f) + np.take(a, hi, ax) * f)
        return np.stack(out, ax)
    return axis(axis(x, 1), 2)


@pytest.mark.parametrize("shape", [(2, 1, 1, 3), (1, 3, 5, 2), (2, 9, 12, 4)])
def test_upsampling_is_bilinear_with_aligned_corners(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    expected = _numpy_align_corners_2x(x.astype("float64"))
    np.testing.assert_allclose(upsample_bilinear_2x(tf.constant(x)).numpy(), expected,
                               rtol=1e-5, atol=1e-6)
    xla = tf.function(upsample_bilinear_2x, jit_compile=True)
    np.testing.assert_allclose(xla(tf.constant(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    keras_half_pixel = keras.layers.UpSampling2D(2, interpolation="bilinear")(x)
    if shape[1] > 1:   # Keras's layer is not align_corners: the test can tell them apart.
        assert np.abs(np.asarray(keras_half_pixel) - expected).max() > 1e-3


def _conv_bn(cin, cout, k=3):
    return k * k * cin * cout + cout + 2 * cout       # kernel, bias, BN gamma and beta


def _attention(cin, c):
    return _conv_bn(cin, c, 1) + _conv_bn(c, c, 1)      # 1x1-BN-ReLU-1x1-BN-sigmoid


def _count(variables):
    return sum(int(np.prod(v.shape)) for v in variables)


def test_parameter_count_of_the_reference_layout_by_hand():
    segnet = 24_943_296   # tests/dense/test_segnet.py counts it conv by conv
    # encoder_block_att: f0->f1, f1->f2, f2->f3, f3->f4, f4->f4.
    shared_encoder_path = (_conv_bn(64, 128) + _conv_bn(128, 256) + _conv_bn(256, 512)
                           + 2 * _conv_bn(512, 512))
    # decoder_block_att, used from the bottom: f4->f4, f3->f2, f2->f1, f1->f0, f0->f0.
    shared_decoder_path = (_conv_bn(512, 512) + _conv_bn(512, 256) + _conv_bn(256, 128)
                           + _conv_bn(128, 64) + _conv_bn(64, 64))
    # encoder_att[j]: [f0, f0, f0], then [2 f_j, f_j, f_j] (its input concatenates the
    # previous level's task feature).
    encoder_modules = (_attention(64, 64) + _attention(2 * 128, 128) + _attention(2 * 256, 256)
                       + _attention(2 * 512, 512) + _attention(2 * 512, 512))
    # decoder_att[k]: [2 f0, f0, f0], then [f_k + f_{k-1}, f_{k-1}, f_{k-1}].
    decoder_modules = (_attention(128, 64) + _attention(128 + 64, 64)
                       + _attention(256 + 128, 128) + _attention(512 + 256, 256)
                       + _attention(512 + 512, 512))
    per_task = encoder_modules + decoder_modules
    heads = 3 * (9 * 64 * 64 + 64) + (64 * 13 + 13) + (64 * 1 + 1) + (64 * 3 + 3)
    expected = segnet + shared_encoder_path + shared_decoder_path + 3 * per_task + heads
    assert per_task == 2_984_576
    assert expected == 44_229_073   # MTAN's count_parameters adds logsigma's 3: 44,229,076

    mtan = SegNetMTAN(TASKS)
    mtan.build((None, 32, 32, 3))
    built_heads = [dense_head("segmentation", 13), dense_head("depth"), dense_head("normal")]
    for head in built_heads:
        head.build((None, 32, 32, 64))
    assert _count(mtan.segnet.trainable_variables) == segnet
    for t in TASKS:
        assert _count(mtan.task_variables(t)) == per_task
    assert _count(mtan.trainable_variables) + sum(
        _count(h.trainable_variables) for h in built_heads) == expected


def test_output_shapes_at_the_papers_resolution_and_a_small_run():
    mtan = SegNetMTAN(TASKS)
    spec = mtan.compute_output_spec(keras.KerasTensor((2, 288, 384, 3)))   # traced, not run
    assert {t: tuple(s.shape) for t, s in spec.items()} == {t: (2, 288, 384, 64) for t in TASKS}
    small = SegNetMTAN(TASKS, filters=[4, 6, 8, 8, 8])
    out = small(tf.random.uniform((2, 64, 32, 3)), training=True)
    assert sorted(out) == sorted(TASKS)
    assert all(tuple(v.shape) == (2, 64, 32, 4) for v in out.values())
    with pytest.raises(ValueError, match="multiples of 32. Received"):
        small(tf.zeros((1, 40, 32, 3)))


def test_task_variables_are_exactly_that_tasks_attention_modules():
    mtan = SegNetMTAN(TASKS, filters=[4, 6, 8, 8, 8])
    x = tf.random.uniform((2, 32, 32, 3))
    mtan(x, training=True)
    ids = {t: {id(v) for v in mtan.task_variables(t)} for t in TASKS}
    shared = {id(v) for v in mtan.segnet.trainable_variables} | {
        id(v) for s in mtan.encoder_convs + mtan.decoder_convs for v in s.trainable_variables}
    everything = {id(v) for v in mtan.trainable_variables}
    assert all(len(ids[t]) == 10 * 2 * 4 for t in TASKS)   # 10 modules x 2 (conv, BN) x 2
    assert not (ids["segmentation"] & ids["depth"]) and not (ids["depth"] & ids["normal"])
    assert not any(ids[t] & shared for t in TASKS)          # no shared conv among them
    assert shared | ids["segmentation"] | ids["depth"] | ids["normal"] == everything
    # Their paths name the task (checkpoints and variable filters read paths).
    for t in TASKS:
        assert all(f"/attention_{t}/" in v.path for v in mtan.task_variables(t))
    assert not any("attention" in v.path for v in mtan.segnet.trainable_variables)
    # A task's output does not depend on another task's attention modules.
    with tf.GradientTape() as tape:
        depth_out = mtan(x, training=True)["depth"]
    grads = tape.gradient(tf.reduce_sum(depth_out), mtan.task_variables("normal"))
    assert all(g is None for g in grads)
    with pytest.raises(ValueError, match="Received: task='edges'"):
        mtan.task_variables("edges")


def test_bad_arguments_and_config():
    with pytest.raises(ValueError, match="Received: tasks"):
        SegNetMTAN(["a", "a"])
    with pytest.raises(ValueError, match="Received: filters"):
        SegNetMTAN(TASKS, filters=[])
    # The deepest attention conv keeps its width (MTAN's 512 -> 512): [4, 8] failed on its
    # first call with a channel mismatch deep in a decoder stage.
    with pytest.raises(ValueError,
                       match=r"last two widths must be equal.*Received: filters=\[4, 8\]"):
        SegNetMTAN(TASKS, filters=[4, 8])
    clone = SegNetMTAN.from_config(SegNetMTAN(TASKS, filters=[4, 4]).get_config())
    assert clone.tasks == TASKS and clone.filters == [4, 4]
