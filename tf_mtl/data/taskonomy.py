"""Taskonomy as ``002`` (Standley et al.) and ``001`` §5.1.2 read it: five dense tasks from PNGs.

Layout (Standley's ``taskonomy_loader.py``): ``root/<folder>/<building>/<file>.png``,
the label of an image is the rgb path with ``rgb`` replaced by the task's folder, in the
folder and in the file name alike (the release names files
``point_<i>_view_<j>_domain_rgb.png`` / ``..._domain_depth_zbuffer.png``; Standley's
``file_name.replace('rgb', task)``).
Tasks are named by ``002``'s letters (Figure 5, ``001`` Table 7):

====  ====================  ========================================  =================
task  folder                ``y`` (decoded from the raw PNG value)     weights ``w``
====  ====================  ========================================  =================
s     ``segment_semantic``  int32 ``[H, W]``: the raw class 0..17       ``raw != 0``
d     ``depth_zbuffer``     ``[H, W, 1]``: ``(raw - 1500) / 1000``      the mask (below)
n     ``normal``            ``[H, W, 3]``: ``(rgb / 255 - 0.5) * 2``    the mask (below)
k     ``keypoints2d``       ``[H, W, 1]``: ``(raw - 50) / 100``         1
e     ``edge_texture``      ``[H, W, 1]``: ``(raw - 718) / 1070``       1
====  ====================  ========================================  =================

Segmentation's class 0 is ignored by its loss (Standley: ``ignore_index=0``); its
weights say so. The **mask** (depth and normals; Standley's loader): ``raw_depth <
8192`` (depth in 1/512 m, 65535 = no depth) when depth is among the tasks or no
``mask`` folder exists (the depth file is then read for normals alone), else the
``mask`` folder's image (nonzero = valid). ``e`` is ``002``'s "Edge Detection",
a 2D task: Taskonomy's ``edge_texture`` (Standley's code calls it ``t``; its ``e``
is ``edge_occlusion``, a 3D task ``002`` did not use).

The image is ``[H, W, 3]`` float32 in [0, 1] (torchvision's ``ToTensor``).
Everything is resized to ``image_size`` bilinearly (PIL's bilinear downscaling
filters; here ``tf.image.resize(antialias=True)``), before decoding, as Standley
resizes the raw images; deviation: segmentation is resized nearest (bilinear
blends class ids), and files already at ``image_size`` are not touched. PNGs may
be 8- or 16-bit (each file's IHDR bit depth is read; an 8-bit file decoded at 16
bits is scaled by 257 and is scaled back). Training flips left-right with
probability 1/2 (Standley's ``augment``), negating the normal's x channel.

Splits (building lists in ``tf_mtl/data/taskonomy_buildings/``, sources in its
``SOURCE.md``):

* ``split_source="tag"`` (default; ``001`` D.2 / TAG's medium split): 107 train,
  18 val, 17 test buildings; every training image, and the first 1000 (sorted) of each
  val and test building, as TAG's ``tag.patch`` evaluates (``model_limit=1000``).
* ``split_source="standley"`` (``002``): 482 train buildings; val and test read
  the 52 val buildings, val the first 1000 images of each building (sorted),
  test images 1000-2000 (``train_taskonomy.py``'s ``model_limit``).

What is checked when. At construction: ``root/rgb`` and each building's folder
exist; each task's (and the mask's) folder holds a file for every rgb file (the
first missing one is named); unknown task letters are refused. While reading:
a file that is not a PNG of the expected channels stops iteration with an error
naming it.
"""

import importlib.resources
import os

import tensorflow as tf

TASK_FOLDERS = {"s": "segment_semantic", "d": "depth_zbuffer", "n": "normal", "k": "keypoints2d",
                "e": "edge_texture"}
CHANNELS = {"s": 1, "d": 1, "n": 3, "k": 1, "e": 1, "rgb": 3, "mask": 1}
SEGMENTATION_CLASSES = 18
DEPTH_INVALID = 8192     # Raw depth at or above is no depth (Standley: mask = raw < 2**13).
DECODE = {"d": (1500.0, 1000.0), "k": (50.0, 100.0), "e": (718.0, 1070.0)}   # (raw - a) / b
SPLIT_SOURCES = ("tag", "standley")
# Each building's sorted images a validation / test split reads by default, per source:
# Standley's loader slices val and test from the same buildings; TAG's tag.patch evaluates
# and tests on the first 1000 images of each of its val and test buildings (model_limit).
EVAL_IMAGES = {"standley": {"val": (0, 1000), "test": (1000, 2000)},
               "tag": {"val": (0, 1000), "test": (0, 1000)}}


def building_list(source, split):
    """The buildings of ``source``'s ``split`` (``"tag"``: train/val/test; ``"standley"``:
    train/val, its test images come from the val buildings)."""
    if source not in SPLIT_SOURCES:
        raise ValueError(f"`split_source` must be one of {SPLIT_SOURCES}. Received: "
                         f"split_source={source!r}")
    if source == "standley" and split == "test":
        split = "val"
    folder = importlib.resources.files("tf_mtl.data") / "taskonomy_buildings"
    path = folder / f"{source}_{split}.txt"
    if not path.is_file():
        raise ValueError(f"`split` must be 'train', 'val' or 'test'. Received: split={split!r}")
    return path.read_text().split()


def parse_tasks(tasks):
    """``"sdnke"`` or a sequence of letters -> list of distinct known letters."""
    letters = list(tasks) if tasks is not None else []
    if (not letters or any(t not in TASK_FOLDERS for t in letters)
            or len(set(letters)) != len(letters)):
        raise ValueError(f"`tasks` must be distinct letters among {''.join(TASK_FOLDERS)} "
                         f"({TASK_FOLDERS}). Received: tasks={tasks!r}")
    return letters


def _records(root, buildings, image_range):
    """Sorted rgb file paths of every building (within ``image_range`` per building)."""
    records = []
    for building in buildings:
        folder = os.path.join(root, "rgb", building)
        if not os.path.isdir(folder):
            raise ValueError(f"Building {building!r} has no rgb folder: expected {folder}. "
                             f"Received: root={root!r}")
        names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
        if image_range is not None:
            names = names[image_range[0]:image_range[1]]
        records += [(building, n) for n in names]
    if not records:
        raise ValueError(f"No rgb images in buildings {buildings[:5]}... under {root}. "
                         f"Received: root={root!r}")
    return records


def label_name(name, folder):
    """The file name of ``folder``'s label of the rgb file ``name`` (module docstring)."""
    return name.replace("rgb", folder)


def _check_labels(root, records, folder):
    """Every record has its ``folder`` file; returns False only for an absent ``mask``."""
    listed = {}
    for building, name in records:
        if building not in listed:
            where = os.path.join(root, folder, building)
            listed[building] = set(os.listdir(where)) if os.path.isdir(where) else set()
        if label_name(name, folder) not in listed[building]:
            raise ValueError(f"Missing label file "
                             f"{os.path.join(root, folder, building, label_name(name, folder))} "
                             f"for task folder {folder!r} (the rgb file "
                             f"{os.path.join(root, 'rgb', building, name)} exists). "
                             f"Received: root={root!r}")


def read_raw(path, channels):
    """A PNG's raw values as float32 ``[H, W, channels]``, 8- or 16-bit alike."""
    contents = tf.io.read_file(path)
    depth = tf.io.decode_raw(tf.strings.substr(contents, 24, 1), tf.uint8)[0]  # IHDR bit depth.
    raw = tf.cast(tf.io.decode_png(contents, channels=channels, dtype=tf.uint16), tf.float32)
    return tf.where(tf.equal(depth, 8), raw / 257.0, raw)


def _resize(x, size, nearest=False):
    """``[size, size, C]``; a file already at that size is returned untouched."""
    method = "nearest" if nearest else "bilinear"
    same = tf.reduce_all(tf.equal(tf.shape(x)[:2], size))
    out = tf.cond(same, lambda: x,
                  lambda: tf.image.resize(x, (size, size), method=method, antialias=not nearest))
    return tf.ensure_shape(out, [size, size, x.shape[-1]])


def decode(raw, task):
    """``y`` of ``task`` from its raw PNG values ``[H, W, C]`` (the table above)."""
    if task == "s":
        return tf.cast(tf.round(raw[..., 0]), tf.int32)
    if task == "n":
        return (raw / 255.0 - 0.5) * 2.0
    offset, scale = DECODE[task]
    return (raw - offset) / scale


def example(root, building, name, tasks, image_size, mask_from, flip):
    """``(image, {task: y}, {task: w})`` of one rgb file (graph code, for ``tf.data``)."""
    def path(folder):   # label_name, on a string tensor.
        return tf.strings.join([root, folder, building,
                                tf.strings.regex_replace(name, "rgb", folder)], separator=os.sep)

    image = _resize(read_raw(path("rgb"), 3) / 255.0, image_size)
    raws = {t: _resize(read_raw(path(TASK_FOLDERS[t]), CHANNELS[t]), image_size, nearest=t == "s")
            for t in tasks}
    mask = None
    if "d" in tasks or mask_from == "depth":
        depth = (raws["d"] if "d" in raws
                 else _resize(read_raw(path("depth_zbuffer"), 1), image_size))
        mask = tf.cast(depth[..., 0] < DEPTH_INVALID, tf.float32)
    elif mask_from == "mask":
        mask = tf.cast(_resize(read_raw(path("mask"), 1), image_size, nearest=True)[..., 0] > 0,
                       tf.float32)
    y = {t: decode(raws[t], t) for t in tasks}
    w = {}
    for t in tasks:
        if t == "s":
            w[t] = tf.cast(tf.not_equal(y[t], 0), tf.float32)
        elif t in ("d", "n"):
            w[t] = mask
        else:
            w[t] = tf.ones([image_size, image_size], tf.float32)
    if flip is not None:
        image, y, w = tf.cond(flip, lambda: mirror(image, y, w), lambda: (image, y, w))
    return image, y, w


def mirror(image, y, w):
    """Left-right mirror of an example; the normal's x channel changes sign."""
    image = tf.reverse(image, [1])
    y = {t: tf.reverse(v, [1]) for t, v in y.items()}
    if "n" in y:
        y["n"] = y["n"] * tf.constant([-1.0, 1.0, 1.0])
    return image, y, {t: tf.reverse(v, [1]) for t, v in w.items()}


def taskonomy(root, split, tasks="sdnke", buildings=None, image_size=256, *, split_source="tag",
              image_range=None, augment=None, batch_size=32, shuffle=None, seed=0):
    """Taskonomy batches ``(image, {task: y}, {task: w})`` (module doc for every convention).

    Args:
        root: the data root holding ``rgb/`` and the task folders.
        split: ``"train"``, ``"val"`` (or ``"validation"``) or ``"test"``.
        tasks: letters among ``"sdnke"`` (module doc).
        buildings: building names, or ``{split: names}``; default: ``split_source``'s
            list for ``split``.
        image_size: side of the square examples (``002``: 256).
        split_source: ``"tag"`` (``001``) or ``"standley"`` (``002``).
        image_range: ``(start, stop)`` of each building's sorted images; default every
            training image, and for val/test ``EVAL_IMAGES[split_source]`` (Standley's
            slices; TAG's first 1000 per building).
        augment: random left-right flips; default True for ``"train"``.
        batch_size: examples per batch.
        shuffle: shuffle (seeded) each pass; default True for ``"train"``.
        seed: the shuffle's and the flips' seed.

    Example:
        >>> import tempfile
        >>> root = tf_mtl.data.taskonomy_files.write_taskonomy_like(tempfile.mkdtemp(),
        ...                                                         ["b0", "b1"])
        >>> ds = tf_mtl.data.taskonomy(root, "train", buildings=["b0"], image_size=32)
    """
    tasks = parse_tasks(tasks)
    if split not in ("train", "val", "validation", "test"):
        raise ValueError(f"`split` must be 'train', 'val' (or 'validation') or 'test'. "
                         f"Received: split={split!r}")
    split = "val" if split == "validation" else split
    if isinstance(buildings, dict):   # {split: [names]}: one config field for every split.
        if split not in buildings:
            raise ValueError(f"`buildings` names no buildings for split {split!r}. Received: "
                             f"buildings={buildings!r}")
        buildings = buildings[split]
    for name, value in (("image_size", image_size), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be an int >= 1. Received: {name}={value!r}")
    if buildings is None:
        buildings = building_list(split_source, split)
    elif isinstance(buildings, str) or not list(buildings):
        raise ValueError(f"`buildings` must be a non-empty list of names. Received: "
                         f"buildings={buildings!r}")
    if image_range is None:
        building_list(split_source, "train")   # Checks split_source.
        image_range = EVAL_IMAGES[split_source].get(split)
    if not os.path.isdir(os.path.join(root, "rgb")):
        raise ValueError(f"`root` must hold rgb/<building>/<file>.png. Received: root={root!r}")
    records = _records(root, list(buildings), image_range)
    for t in tasks:
        _check_labels(root, records, TASK_FOLDERS[t])
    mask_from = None
    if "n" in tasks and "d" not in tasks:
        mask_from = "mask" if os.path.isdir(os.path.join(root, "mask")) else "depth"
        _check_labels(root, records, "mask" if mask_from == "mask" else "depth_zbuffer")
    train = split == "train"
    augment = train if augment is None else augment
    shuffle = train if shuffle is None else shuffle

    def load(building, name, draw):
        flip = tf.random.stateless_uniform([], tf.stack([tf.cast(seed, tf.int64), draw])) < 0.5
        return example(root, building, name, tasks, image_size, mask_from,
                       flip if augment else None)

    ds = tf.data.Dataset.from_tensor_slices(([b for b, _ in records], [n for _, n in records]))
    if shuffle:
        ds = ds.shuffle(len(records), seed=seed, reshuffle_each_iteration=True)
    draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip(ds, draws).map(lambda r, d: load(r[0], r[1], d),
                                            num_parallel_calls=tf.data.AUTOTUNE,
                                            deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
