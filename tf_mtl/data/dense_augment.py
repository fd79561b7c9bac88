"""MTAN's optional NYUv2 augmentation: random scale-crop, then a random horizontal flip.

As MTAN's ``im2im_pred/create_dataset.py`` (``RandomScaleCrop``, added after
the paper; ``001``'s runs use no augmentation) codes it at HEAD, for an ``H x W``
example (at ``001``'s commit ``b6504093`` the depth was resized bilinearly; HEAD's
nearest resize, followed here, never blends a depth with an invalid 0):

1. Draw a scale ``s`` from ``SCALES`` = 1.0 / 1.2 / 1.5 (uniformly), crop a
   window of ``h = int(H / s)`` rows and ``w = int(W / s)`` columns at a
   uniform offset ``top`` in ``[0, H - h]``, ``left`` in ``[0, W - w]``, and
   resize it back to ``H x W``: the image and the normals bilinearly with
   PyTorch's ``align_corners=True`` (source coordinate ``dst * (h - 1) / (H - 1)``),
   the label and the depth by PyTorch's ``"nearest"`` (source index
   ``floor(dst * (h / H))`` in float32, as its kernels compute it), so no label
   or depth value is ever blended; the depth is divided by ``s`` (the scene
   looks ``s`` times closer). Invalid depths stay 0 (nearest).
2. With probability 1/2 mirror every array left-right and negate the
   normal's x channel (channel 0), which is what a mirror does to a surface
   direction.

The masks are taken from the augmented targets afterwards, as MTAN's loss
takes them: a bilinear resize blends an invalid (zero) normal with its valid
neighbours at the border of an invalid region, and such a blended pixel counts
as valid, as in MTAN.

Randomness is stateless: every draw comes from the example's own seed
(``tf.random.experimental.stateless_split``), so a given seed gives the same
augmentation on every run and every replica. ``scale_crop`` and ``flip`` are the
deterministic parts, exposed so tests and users can apply one known transform.
"""

import tensorflow as tf

SCALES = (1.0, 1.2, 1.5)
# Bilinear for continuous fields; every other array (label, depth) nearest, never blended.
BILINEAR = ("image", "normal")


def _resize(x, name, height, width):
    """TF's legacy resize kernels compute exactly PyTorch's: ``ResizeBilinear`` with
    ``align_corners=True`` and ``ResizeNearestNeighbor`` without half-pixel centres
    (``floor(dst * (in / out))`` in float32)."""
    size = tf.stack([height, width])
    if name in BILINEAR:
        return tf.raw_ops.ResizeBilinear(images=x[None], size=size, align_corners=True,
                                         half_pixel_centers=False)[0]
    return tf.raw_ops.ResizeNearestNeighbor(images=x[None], size=size, align_corners=False,
                                            half_pixel_centers=False)[0]


def crop_size(height, width, scale):
    """``(h, w)`` of the window ``scale`` crops: ``int(H / s)``, ``int(W / s)`` as MTAN.

    In float64 as Python divides: in float32 ``288 / 1.2`` is 239.99998, not 240
    (and a Python ``1.2`` made a float32 tensor first would crop 12 to 9).
    """
    scale = tf.cast(scale, tf.float64) if tf.is_tensor(scale) else tf.constant(scale, tf.float64)
    return (tf.cast(tf.cast(height, tf.float64) / scale, tf.int32),
            tf.cast(tf.cast(width, tf.float64) / scale, tf.int32))


def scale_crop(arrays, scale, top, left):
    """Crops the ``int(H/scale) x int(W/scale)`` window at ``(top, left)`` of every array
    and resizes it back to ``H x W``; depth is divided by ``scale``.

    Args:
        arrays: ``{name: tensor}`` with names among ``"image"``, ``"label"``
            (``[H, W]``), ``"depth"``, ``"normal"`` (``[H, W, C]``).
        scale, top, left: the transform (scalar tensors or numbers).
    """
    height, width = tf.shape(arrays["image"])[0], tf.shape(arrays["image"])[1]
    h, w = crop_size(height, width, scale)
    out = {}
    for name, x in arrays.items():
        flat = x[..., None] if name == "label" else x  # Labels [H, W] get a channel axis.
        window = flat[top:top + h, left:left + w]
        resized = _resize(window, name, height, width)
        if name == "depth":
            resized = resized / tf.cast(scale, resized.dtype)
        out[name] = resized[..., 0] if name == "label" else resized
    return out


def flip(arrays):
    """Mirrors every array left-right; the normal's x channel changes sign."""
    out = {name: tf.reverse(x, axis=[1]) for name, x in arrays.items()}
    if "normal" in out:
        out["normal"] = out["normal"] * tf.constant([-1.0, 1.0, 1.0], out["normal"].dtype)
    return out


def random_augment(arrays, seed):
    """MTAN's augmentation of one example with the stateless ``seed`` (int ``[2]``)."""
    scale_seed, top_seed, left_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 4))
    height, width = tf.shape(arrays["image"])[0], tf.shape(arrays["image"])[1]
    choice = tf.random.stateless_uniform([], scale_seed, 0, len(SCALES), dtype=tf.int32)
    scale = tf.gather(tf.constant(SCALES, tf.float64), choice)
    h, w = crop_size(height, width, scale)
    top = tf.random.stateless_uniform([], top_seed, 0, height - h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([], left_seed, 0, width - w + 1, dtype=tf.int32)
    out = scale_crop(arrays, scale, top, left)
    mirrored = tf.random.stateless_uniform([], flip_seed) < 0.5
    return tf.cond(mirrored, lambda: flip(out), lambda: out)
