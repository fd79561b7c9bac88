"""Small generated NYUv2- and Cityscapes-like releases, in exactly the released layout.

The tests and the ``:runlocal`` configs read these instead of the real data
(``tf_mtl.data.dense``); nothing binary is checked in. What is written mirrors
the MTAN release (``DENSE_PREDICTION_NOTES`` §1), deterministically from ``seed``:

* ``image/{i}.npy``: float32 ``[H, W, 3]`` uniform in [0, 1];
* ``label/{i}.npy`` (Cityscapes ``label_2``, ``label_7``, ``label_19``, or
  LibMTL's ``label/`` with 7 classes): ``[H, W]`` classes ``0..C-1`` stored as
  float32, about 10% ``-1`` (ignore, the same pixels in every label folder);
* ``depth/{i}.npy``: float32 ``[H, W, 1]``, NYUv2 metres in [0.5, 10],
  Cityscapes disparity in (0, 0.49], about 10% ``0`` (invalid);
* ``normal/{i}.npy`` (NYUv2): float32 ``[H, W, 3]`` unit vectors, about 10% all
  ``0`` (invalid), on other pixels than the invalid depth, so the ``"own"`` and
  ``"depth"`` masks differ.

The release's own dtypes are not documented (MTAN casts to float); the reader
takes any integer or float dtype.
"""

import os

import numpy as np

INVALID_FRACTION = 0.1


def _sample(rng, height, width, depth_range, normals):
    arrays = {"image": rng.uniform(0.0, 1.0, (height, width, 3))}
    low, high = depth_range
    depth = rng.uniform(low, high, (height, width, 1))
    depth[rng.uniform(size=(height, width)) < INVALID_FRACTION] = 0.0
    arrays["depth"] = depth
    if normals:
        normal = rng.normal(size=(height, width, 3))
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        normal[rng.uniform(size=(height, width)) < INVALID_FRACTION] = 0.0
        arrays["normal"] = normal
    return arrays


def _write(root, counts, height, width, seed, labels, depth_range, normals):
    """Writes every split; ``labels`` is ``{folder: num_classes}``."""
    for split_index, (split, n) in enumerate(counts.items()):
        rng = np.random.default_rng([seed, split_index])
        for i in range(n):
            arrays = _sample(rng, height, width, depth_range, normals)
            ignore = rng.uniform(size=(height, width)) < INVALID_FRACTION
            for folder, num_classes in labels.items():
                label = rng.integers(0, num_classes, (height, width)).astype(np.float32)
                arrays[folder] = np.where(ignore, -1.0, label)
            for folder, array in arrays.items():
                os.makedirs(os.path.join(root, split, folder), exist_ok=True)
                np.save(os.path.join(root, split, folder, f"{i}.npy"), array.astype(np.float32))
    return root


def _check(n_train, n_val, height, width):
    for name, value, least in (("n_train", n_train, 1), ("n_val", n_val, 1),
                               ("height", height, 2), ("width", width, 2)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"`{name}` must be an int >= {least}. Received: {name}={value!r}")


def write_nyuv2_like(root, n_train=4, n_val=2, height=288, width=384, seed=0):
    """Writes a small NYUv2-like release (13 classes, depth, normals) under ``root``.

    Returns ``root``.

    Example:
        >>> root = tf_mtl.data.dense_files.write_nyuv2_like("/tmp/nyuv2", 4, 2, 16, 24)
        >>> ds = tf_mtl.data.nyuv2(root, "train")
    """
    _check(n_train, n_val, height, width)
    return _write(root, {"train": n_train, "val": n_val}, height, width, seed, {"label": 13},
                  (0.5, 10.0), normals=True)


def write_cityscapes_like(root, n_train=4, n_val=2, height=128, width=256, seed=0,
                          libmtl_labels=False):
    """Writes a small Cityscapes-like release (``label_2``, ``label_7``, ``label_19``,
    disparity) under ``root``; ``libmtl_labels=True`` writes LibMTL's single
    7-class ``label/`` folder instead. Returns ``root``."""
    _check(n_train, n_val, height, width)
    labels = {"label": 7} if libmtl_labels else {f"label_{c}": c for c in (2, 7, 19)}
    return _write(root, {"train": n_train, "val": n_val}, height, width, seed, labels,
                  (1e-3, 0.49), normals=False)
