"""Small generated Taskonomy buildings, in exactly the layout ``tf_mtl.data.taskonomy`` reads.

For tests and ``:runlocal`` configs; nothing binary is checked in. The label of
an image is found by replacing ``rgb`` in its path, folder and file name alike (Standley's
loader), and files are named as the release names them: ``point_<i>_view_0_domain_<folder>.png``. Written deterministically from
``seed``, with the PNG bit depths of the release:

* ``rgb``: 8-bit RGB, uniform;
* ``segment_semantic``: 8-bit gray, classes 0..17 (0, ignored, about 10%);
* ``depth_zbuffer``: 16-bit gray, raw in [1000, 8000] (0.5 to 6.5 after decoding),
  about 10% 65535 (no depth);
* ``normal``: 8-bit RGB, uniform;
* ``keypoints2d``, ``edge_texture``: 16-bit gray, uniform in [0, 2000];
* ``mask`` (``mask_folder=True``): 8-bit gray, 0 or 255, on other pixels than
  the invalid depth, so the two mask sources differ.

Example:
    >>> import tempfile
    >>> root = write_taskonomy_like(tempfile.mkdtemp(), ["b0", "b1"], images_per_building=2,
    ...                             size=16)
    >>> sorted(os.listdir(os.path.join(root, "rgb", "b0")))
    ['point_0_view_0_domain_rgb.png', 'point_1_view_0_domain_rgb.png']
"""

import os

import numpy as np
import tensorflow as tf

INVALID_FRACTION = 0.1


def write_png(path, array):
    """Writes ``array`` (``[H, W]`` or ``[H, W, C]``, uint8 or uint16) as a PNG of that depth."""
    array = np.asarray(array)
    if array.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"`array` must be uint8 or uint16. Received: dtype={array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(array))
    return path


def file_name(index, folder="rgb"):
    """The release's name of example ``index``'s file in ``folder``."""
    return f"point_{index}_view_0_domain_{folder}.png"


def _example(rng, size, mask_folder):
    shape = (size, size)
    invalid = rng.uniform(size=shape) < INVALID_FRACTION
    depth = rng.integers(1000, 8001, shape).astype(np.uint16)
    depth[invalid] = 65535
    labels = rng.integers(1, 18, shape)
    labels[rng.uniform(size=shape) < INVALID_FRACTION] = 0
    arrays = {"rgb": rng.integers(0, 256, shape + (3,), dtype=np.uint8),
              "segment_semantic": labels.astype(np.uint8),
              "depth_zbuffer": depth,
              "normal": rng.integers(0, 256, shape + (3,), dtype=np.uint8),
              "keypoints2d": rng.integers(0, 2001, shape).astype(np.uint16),
              "edge_texture": rng.integers(0, 2001, shape).astype(np.uint16)}
    if mask_folder:
        arrays["mask"] = np.where(rng.uniform(size=shape) < INVALID_FRACTION, 0, 255).astype(
            np.uint8)
    return arrays


def write_taskonomy_like(root, buildings=("b0", "b1"), images_per_building=2, size=32, seed=0,
                         mask_folder=False):
    """Writes ``images_per_building`` examples of ``size x size`` per building; returns ``root``."""
    if isinstance(buildings, str) or not list(buildings):
        raise ValueError(f"`buildings` must be a non-empty list of names. Received: "
                         f"buildings={buildings!r}")
    for name, value in (("images_per_building", images_per_building), ("size", size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    for b, building in enumerate(buildings):
        rng = np.random.default_rng([seed, b])
        for i in range(images_per_building):
            for folder, array in _example(rng, size, mask_folder).items():
                write_png(os.path.join(root, folder, building, file_name(i, folder)), array)
    return root


GENERATED_BUILDINGS = {"train": ["gen_train"], "val": ["gen_val"], "test": ["gen_test"]}
"""The buildings ``write_generated`` writes, as ``tf_mtl.data.taskonomy``'s ``buildings``."""


def write_generated(root, n_train=4, n_val=2, height=32, width=32, seed=0):
    """The runner's ``config.data.generate`` (``tf_mtl.experiments.dense_setup``): ``n_train``
    images in building ``gen_train``, ``n_val`` in ``gen_val`` and in ``gen_test``
    (``GENERATED_BUILDINGS``), square (``height == width``). Returns ``root``."""
    if height != width:
        raise ValueError(f"Taskonomy examples are square: `height` must equal `width`. "
                         f"Received: height={height!r}, width={width!r}")
    for index, (split, count) in enumerate((("train", n_train), ("val", n_val), ("test", n_val))):
        write_taskonomy_like(root, GENERATED_BUILDINGS[split], count, height, seed + 1000 * index)
    return root
