"""One split of an MTAN-preprocessed release on disk: its folders, its files and their checks.

``Release`` is what ``tf_mtl.data.dense`` reads samples through. At construction
it checks the layout (``root``, the split folder, every folder the tasks need),
that every folder holds exactly the ``0.npy..N-1.npy`` of ``image/``, and reads
the first sample in full; ``read(i)`` loads and checks one sample (the loaders
call it inside their ``tf.data`` map). ``read_array`` never unpickles.
"""

import os

import numpy as np

# The release has train/ and val/ only; MTAN and LibMTL evaluate on val/ and call it the test set.
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "val"}
CHANNELS = {"image": 3, "depth": 1, "normal": 3}


def read_array(path):
    """One ``.npy`` array, loaded without unpickling; ``ValueError`` naming ``path`` otherwise."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY" and magic[:2] != b"PK":  # Neither .npy nor .npz (a zip).
            pickled = magic[:1] == b"\x80"  # Pickle protocols 2+ start with PROTO.
            raise ValueError("a pickle" if pickled else f"its first bytes are {magic!r}")
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e):
            raise ValueError(f"{path} holds pickled data (an object array or a pickle); it is "
                             "refused because loading a pickle runs its code. Expected a plain "
                             f"numeric .npy array. Received: {e}") from None
        raise ValueError(f"{path} is not a NumPy .npy file. Received: {e}") from None
    if not isinstance(array, np.ndarray):  # An .npz archive holds several arrays.
        array.close()
        raise ValueError(f"{path} is an .npz archive, not one .npy array. Received: "
                         f"{type(array).__name__}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{path} must hold integers or floats. Received: dtype {array.dtype}")
    return array


class Release:
    """One split of a release on disk: its folders, sample count and the first sample's shape.

    Args:
        root: the release's folder (holding ``train/`` and ``val/``).
        split: a key of ``SPLIT_FOLDERS``.
        folders: ``{key: [folder names, first found is read]}``; ``"image"`` first.
        num_classes: labels must be integers in ``[-1, num_classes)``.
        about: the expected layout and where it is published, for every message.
    """

    def __init__(self, root, split, folders, num_classes, about):
        if not isinstance(root, (str, os.PathLike)) or not os.path.isdir(root):
            raise ValueError(f"`root` must be the folder of the release ({about}). "
                             f"Received: root={root!r}")
        if split not in SPLIT_FOLDERS:
            raise ValueError(f"`split` must be one of {sorted(SPLIT_FOLDERS)} ('validation' and "
                             f"'test' read val/). Received: split={split!r}")
        self.about, self.num_classes = about, num_classes
        split_dir = os.path.join(root, SPLIT_FOLDERS[split])
        if not os.path.isdir(split_dir):
            nested = sorted(d for d in os.listdir(root)
                            if os.path.isdir(os.path.join(root, d, SPLIT_FOLDERS[split])))
            hint = (f" It lies one level down: root={os.path.join(root, nested[0])!r}?"
                    if nested else "")
            raise ValueError(f"No {SPLIT_FOLDERS[split]}/ folder in `root`: {about}.{hint} "
                             f"Received: root={root!r}, split={split!r}")
        self.folders = {}
        for key, names in folders.items():
            found = [n for n in names if os.path.isdir(os.path.join(split_dir, n))]
            if not found:
                present = sorted(os.listdir(split_dir))
                raise ValueError(f"No {' or '.join(n + '/' for n in names)} folder in {split_dir} "
                                 f"(it holds {present}): {about}. Received: root={root!r}")
            self.folders[key] = os.path.join(split_dir, found[0])
        self.count = self._count()
        first = self.read(0)
        self.height, self.width = first["image"].shape[:2]

    def _count(self):
        def numbers(folder):
            names = [f for f in os.listdir(folder) if f.endswith(".npy")]
            stems = {f[:-4] for f in names}
            odd = sorted(s for s in stems if not s.isdigit() or str(int(s)) != s)
            if odd:
                raise ValueError(f"{folder} holds files not named <i>.npy: {odd[:5]}: "
                                 f"{self.about}. Received: {len(names)} .npy files")
            return {int(s) for s in stems}
        image = numbers(self.folders["image"])
        if not image:
            raise ValueError(f"{self.folders['image']} holds no .npy files: {self.about}. "
                             "Received: an empty folder")
        if image != set(range(len(image))):
            gap = min(set(range(len(image))) - image)
            raise ValueError(f"{self.folders['image']} must hold 0.npy..{len(image) - 1}.npy: "
                             f"{self.about}. Received: {len(image)} files without {gap}.npy")
        for key, folder in self.folders.items():
            missing = sorted(image - numbers(folder))
            if missing:
                raise ValueError(f"Sample {missing[0]} has no {key} file: "
                                 f"{os.path.join(folder, f'{missing[0]}.npy')} is missing "
                                 f"({len(missing)} of {len(image)} missing): {self.about}. "
                                 f"Received: {folder}")
        return len(image)

    def read(self, index):
        """``{key: array}`` of sample ``index``, each checked against the first image's size."""
        out, hw = {}, getattr(self, "height", None) and (self.height, self.width)
        for key, folder in self.folders.items():  # The image first: it sets H x W.
            path = os.path.join(folder, f"{int(index)}.npy")
            array = read_array(path)
            hw = hw or array.shape[:2]
            out[key] = self._checked(key, array, path, hw)
        return out

    def _checked(self, key, array, path, hw):
        if key == "image" and (array.ndim != 3 or array.shape[-1] != 3):
            raise ValueError(f"{path} must be an image of shape [H, W, 3] (channels last): "
                             f"{self.about}. Received: shape {array.shape}")
        want = tuple(hw) + ((CHANNELS[key],) if key in CHANNELS else ())
        if array.shape != want:
            raise ValueError(f"{path} must be an array of shape {want} (H x W of the first "
                             f"image): {self.about}. Received: shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{path} holds NaN or infinite values. Received: "
                             f"{int(np.sum(~np.isfinite(array)))} of them")
        if key == "label":
            bad = (array < -1) | (array >= self.num_classes) | (array != np.round(array))
            if bad.any():
                raise ValueError(f"{path} must hold integer labels in [-1, {self.num_classes}) "
                                 f"(-1 = ignore) for num_classes={self.num_classes}. Received: "
                                 f"values {np.unique(array[bad])[:5].tolist()}")
            return array.astype(np.int32)
        return array.astype(np.float32)
