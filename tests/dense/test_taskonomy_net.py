"""Standley's Taskonomy network and losses against counts and formulas from the reference."""

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.dense.taskonomy_losses import (TaskonomyL1, TaskonomyRotateL1,
                                           make_taskonomy_losses, total_test_loss)
from tf_mtl.dense.taskonomy_net import (FULL_SIZES, HALF_SIZES, GradientScale, TaskonomyDecoder,
                                        TaskonomyEncoder, taskonomy_decoders)


def _reference_encoder_parameters(sizes):
    """PyTorch ``parameters()`` of ``xception_taskonomy_new``'s Encoder + final_conv + its BN,
    counted from the reference's layer list (weights, conv biases where bias=True, BN
    gamma/beta)."""
    def bn(c):
        return 2 * c

    def sep(cin, cout):                       # depthwise [cin, 1, 3, 3] + pointwise [cout, cin]
        return cin * 9 + cin * cout

    def block(cin, cout, reps, stride):
        n = sep(cin, cout) + bn(cout) + (reps - 1) * (sep(cout, cout) + bn(cout))
        if cin != cout or stride != 1:
            n += cin * cout + bn(cout)        # skip 1x1 (no bias) + BN
        if stride != 1:
            n += cout * cout * 4 + cout       # 2x2 stride-2 conv with bias
        return n
    s = sizes
    n = 3 * s[0] * 9 + bn(s[0]) + s[0] * s[1] * 9 + bn(s[1])
    n += sum(block(s[i], s[i + 1], 2, 2) for i in (1, 2, 3))
    n += sum(block(s[i], s[i + 1], 3, 1) for i in range(4, 12))
    return n + sep(s[12], 512) + bn(512)


def _reference_decoder_parameters(channels):
    n, cin = 0, 512
    for i, c in enumerate((128, 64, 48, 32)):
        n += cin * c * 4 + c + 2 * c          # ConvTranspose2d(bias) + BN
        if i < 3:
            n += c * c * 9 + c + 2 * c        # Conv2d 3x3 (bias) + BN
        cin = c
    return n + 32 * channels * 9 + channels


def _count(layer):
    return sum(int(np.prod(w.shape)) for w in layer.trainable_weights)


@pytest.fixture(scope="module")
def encoders():
    out = {}
    for size in ("full", "half"):
        e = TaskonomyEncoder(num_tasks=5, size=size)
        e(np.zeros((1, 32, 32, 3), "float32"))
        out[size] = e
    return out


# xception_taskonomy_new's channel counts, written out from the reference's layer list.
REFERENCE_FULL = (32, 64, 128, 256) + (728,) * 9
REFERENCE_HALF = (24, 48, 96, 192) + (512,) * 9


def test_parameter_counts_and_half_width_ratio_match_the_reference(encoders):
    full, half = _count(encoders["full"]), _count(encoders["half"])
    assert (FULL_SIZES, HALF_SIZES) == (REFERENCE_FULL, REFERENCE_HALF)
    assert full == _reference_encoder_parameters(REFERENCE_FULL)
    assert half == _reference_encoder_parameters(REFERENCE_HALF)
    assert half / full == pytest.approx(_reference_encoder_parameters(REFERENCE_HALF)
                                        / _reference_encoder_parameters(REFERENCE_FULL), abs=0)
    assert 0.45 < half / full < 0.55                    # "half-size": about half the parameters.
    decoder = TaskonomyDecoder(18)
    decoder(np.zeros((1, 2, 2, 512), "float32"))
    assert _count(decoder) == _reference_decoder_parameters(18)


def test_shapes(encoders):
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype("float32")
    rep = encoders["full"](x)
    assert rep.shape == (2, 4, 4, 512)
    decoders = taskonomy_decoders("sdnke")
    shapes = {t: tuple(d(rep).shape) for t, d in decoders.items()}
    assert shapes == {"s": (2, 64, 64, 18), "d": (2, 64, 64, 1), "n": (2, 64, 64, 3),
                      "k": (2, 64, 64, 1), "e": (2, 64, 64, 1)}
    assert TaskonomyDecoder(1, half_sized_output=True)(rep).shape == (2, 32, 32, 1)


def test_gradient_into_the_shared_part_scaled_by_one_over_sqrt_tasks():
    x = np.random.default_rng(1).normal(size=(2, 32, 32, 3)).astype("float32")
    one, four = TaskonomyEncoder(num_tasks=1), TaskonomyEncoder(num_tasks=4)
    one(x), four(x)
    four.set_weights(one.get_weights())
    decoder = TaskonomyDecoder(1)
    decoder(one(x))

    def grads(encoder):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(decoder(encoder(x, training=False), training=False) ** 2)
        return tape.gradient(loss, encoder.trainable_variables + decoder.trainable_variables)
    g1, g4 = grads(one), grads(four)
    n = len(one.trainable_variables)
    for a, b in zip(g1[:n], g4[:n]):
        np.testing.assert_allclose(b.numpy(), 0.5 * a.numpy(), rtol=1e-5, atol=1e-8)
    for a, b in zip(g1[n:], g4[n:]):                     # The decoder's own gradient: unscaled.
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6)
    with tf.GradientTape() as tape:
        v = tf.constant([1.0, 2.0])
        tape.watch(v)
        y = GradientScale(0.25)(v) * 3.0
    np.testing.assert_allclose(tape.gradient(y, v).numpy(), [0.75, 0.75])


def test_bad_arguments():
    with pytest.raises(ValueError, match="Received: num_tasks=0"):
        TaskonomyEncoder(num_tasks=0)
    with pytest.raises(ValueError, match="Received: size='quarter'"):
        TaskonomyEncoder(size="quarter")
    with pytest.raises(ValueError, match="Received: tasks='sx'"):
        taskonomy_decoders("sx")
    with pytest.raises(ValueError, match="Received: scale=0"):
        GradientScale(0)


def _data(seed=0, b=3, h=6, w=5, c=3):
    rng = np.random.default_rng(seed)
    y, p = rng.normal(size=(b, h, w, c)), rng.normal(size=(b, h, w, c))
    m = (rng.uniform(size=(b, h, w)) > 0.3).astype(np.float32)
    return y.astype("float32"), p.astype("float32"), m


def test_masked_l1_keeps_masked_pixels_in_the_denominator():
    y, p, m = _data()
    expected = (np.abs(p - y) * m[..., None]).sum() / y.size
    assert float(TaskonomyL1()(y, p, sample_weight=m)) == pytest.approx(expected, rel=1e-5)
    assert float(TaskonomyL1()(y, p)) == pytest.approx(np.abs(p - y).mean(), rel=1e-5)


def test_rotate_loss_by_brute_force():
    y, p, m = _data(1)
    b, h, w, _ = y.shape
    per_sample = []
    for i in range(b):
        best = np.inf
        for a in range(3):
            for c in range(3):
                diff = np.abs(p[i, a:a + h - 2, c:c + w - 2] - y[i, 1:-1, 1:-1])
                best = min(best, (diff * m[i, 1:-1, 1:-1, None]).mean())
        per_sample.append(best)
    assert float(TaskonomyRotateL1()(y, p, sample_weight=m)) == pytest.approx(
        np.mean(per_sample), rel=1e-5)
    np.testing.assert_allclose(TaskonomyRotateL1.per_sample(y, p, m), per_sample, rtol=1e-5)
    unmasked = [min(np.abs(p[i, a:a + h - 2, c:c + w - 2] - y[i, 1:-1, 1:-1]).mean()
                    for a in range(3) for c in range(3)) for i in range(b)]
    np.testing.assert_allclose(TaskonomyRotateL1().call(y, p), unmasked, rtol=1e-5)
    # A prediction shifted by one pixel costs nothing on the interior.
    shifted = np.roll(y, 1, axis=1)
    assert float(TaskonomyRotateL1()(y, shifted)) == pytest.approx(0.0, abs=1e-7)
    assert float(TaskonomyL1()(y, shifted)) > 0.1


def test_segmentation_ignores_class_zero():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 18, (2, 4, 4))
    logits = rng.normal(size=(2, 4, 4, 18)).astype("float32")
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    valid = labels != 0
    expected = -np.take_along_axis(logp, labels[..., None], -1)[..., 0][valid].mean()
    loss = make_taskonomy_losses("s")["s"]
    assert float(loss(labels, logits, sample_weight=valid.astype("float32"))) == pytest.approx(
        expected, rel=1e-5)


def test_losses_per_task_and_total():
    plain, rotated = make_taskonomy_losses("sdnke"), make_taskonomy_losses("dnk", rotate_loss=True)
    assert [type(plain[t]).__name__ for t in "dnke"] == ["TaskonomyL1"] * 4
    assert [type(rotated[t]).__name__ for t in "dnk"] == ["TaskonomyRotateL1"] * 2 + ["TaskonomyL1"]
    assert total_test_loss({"s_loss": 1.5, "d_loss": 0.25, "loss": 9.0}, "sd") == 1.75
    with pytest.raises(ValueError, match="lacks the losses of \\['n'\\]"):
        total_test_loss({"s_loss": 1.5}, "sn")
    with pytest.raises(ValueError, match="Received: rotate_loss=1"):
        make_taskonomy_losses("d", rotate_loss=1)


def test_size_percentages():
    from tf_mtl.dense.taskonomy_net import size_channels
    assert size_channels(100) == FULL_SIZES and size_channels(50) == HALF_SIZES
    assert size_channels("half") == HALF_SIZES
    # Other costs: channels times sqrt(cost), as a conv's cost grows with both its widths.
    assert size_channels(25) == tuple(int(round(c * 0.5)) for c in FULL_SIZES)
    with pytest.raises(ValueError, match="Received: size=0"):
        size_channels(0)
    with pytest.raises(ValueError, match="Received: size=\\[1, 2\\]"):
        size_channels([1, 2])


def test_the_002_settings_cost_from_per_image_times():
    """``setting_image_seconds`` against the 36 networks listed one by one: every task
    subset at full size (a decoder per task, the encoder once) and five half singles."""
    import itertools
    from tf_mtl.benchmarks.taskonomy import setting_image_seconds
    per_image = {"full, 1 decoder": 1.0, "full, 5 decoders": 2.0, "half, 1 decoder": 0.5}
    per_decoder = (2.0 - 1.0) / 4
    networks = [1.0 + (k - 1) * per_decoder for k in range(1, 6)
                for _ in itertools.combinations("sdnke", k)] + [0.5] * 5
    assert len(networks) == 36
    assert setting_image_seconds(per_image) == pytest.approx(sum(networks), rel=1e-12)
    assert setting_image_seconds(dict.fromkeys(per_image, 1.0)) == pytest.approx(36.0)
