"""What each file TFDS's builders download must look like, checked from its first bytes.

A file placed by hand in the wrong format would otherwise fail deep inside
TFDS's preparation (a reshape or a ``KeyError`` minutes in, or a checksum
error that does not say what is wrong). ``check`` reads a few header bytes or
lines only (a CelebA list is counted through), so it is cheap even for the
1.4 GB CelebA zip (its central directory is read, not the images).

CelebA's five files must also agree with each other: an image of
``list_eval_partition.txt`` missing from the zip or a list makes TFDS's builder
fail with a bare ``KeyError`` once it reaches that image.
``celeba_disagreement`` names the image and the files that lack it.
"""

import gzip
import os
import struct
import zipfile

CELEBA_LANDMARKS = ("lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x "
                    "leftmouth_y rightmouth_x rightmouth_y").split()
# TFDS's MNIST builder reads exactly this many images from each file.
MNIST_COUNTS = {"train": 60000, "t10k": 10000}
ML_1M = ("ml-1m/movies.dat", "ml-1m/users.dat", "ml-1m/ratings.dat")
# The order TFDS's builder reads them in: the partition names the images looked up in the rest.
CELEBA_FILES = ("list_eval_partition.txt", "img_align_celeba.zip", "list_attr_celeba.txt",
                "list_landmarks_align_celeba.txt", "identity_CelebA.txt")


def _lines(path, n):
    with open(path, "rb") as f:
        return [f.readline().decode("latin-1").split() for _ in range(n)]


def _unterminated(path):
    """TFDS's builder splits the CelebA lists at newlines and drops the last piece, empty when
    the file ends with a newline: a last line without one would be lost."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 4096))
        tail = f.read()
    if tail.endswith(b"\n"):
        return None
    last = tail.rsplit(b"\n", 1)[-1].decode("latin-1").split() or ["?"]
    return (f"the last line, for {last[0]}, does not end with a newline (TFDS's builder would "
            "drop it)")


def _celeba_table(path, heading):
    count, header, first = _lines(path, 3)
    if len(count) != 1 or not count[0].isdigit():
        return f"line 1 is {' '.join(count)!r}, not the number of images"
    if header != heading:
        return f"line 2 is not the {len(heading)} column names (starts {' '.join(header[:3])!r})"
    if len(first) != len(heading) + 1 or not all(v.lstrip("-").isdigit() for v in first[1:]):
        return f"line 3 is not '<image> {len(heading)} integers' (got {len(first)} fields)"
    problem = _unterminated(path)
    if problem:
        return problem
    with open(path, "rb") as f:
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b"")) - 2
    if rows != int(count[0]):
        return f"line 1 says {count[0]} images, {rows} rows follow"
    return None


def _celeba_pairs(path, values=None, *, last_line_dropped=False):
    first = _lines(path, 1)[0]
    if len(first) != 2 or not first[1].isdigit() or (values and first[1] not in values):
        want = f"one of {sorted(values)}" if values else "an integer"
        return f"line 1 is {' '.join(first)!r}, not '<image>.jpg <{want}>'"
    # TFDS reads list_eval_partition.txt line by line (its last line is kept either way).
    return _unterminated(path) if last_line_dropped else None


def _names(path):
    """The image names a CelebA list or zip holds."""
    if path.endswith(".zip"):
        with zipfile.ZipFile(path) as z:
            return {n.rsplit("/", 1)[-1] for n in z.namelist()}
    with open(path, "rb") as f:
        return {line.split(maxsplit=1)[0].decode("latin-1") for line in f if line.strip()}


def celeba_disagreement(image, paths):
    """Which of CelebA's files at ``paths`` (``{file name: path}``) hold ``image`` and which do
    not, as a sentence; None when ``image`` is no image name they disagree on."""
    if not isinstance(image, str) or not set(CELEBA_FILES) <= set(paths):
        return None
    holds = {f: image in _names(paths[f]) for f in CELEBA_FILES}
    present = [f for f in CELEBA_FILES if holds[f]]
    absent = [f for f in CELEBA_FILES if not holds[f]]
    if not present or not absent:
        return None

    def _and(names):
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{image!r} is in {_and(present)} but not in {_and(absent)}"


def _celeba_attributes(path):
    from tf_mtl.data.celeba import CELEBA_ATTRIBUTES
    return _celeba_table(path, CELEBA_ATTRIBUTES)


def _celeba_zip(path):
    if not zipfile.is_zipfile(path):
        return "not a zip archive"
    with zipfile.ZipFile(path) as z:
        if not any(n.lower().endswith(".jpg") for n in z.namelist()):
            return "the zip holds no .jpg images"
    return None


def _idx(path, magic):
    try:
        with gzip.open(path, "rb") as f:
            header = f.read(8)
    except OSError as e:
        return f"not gzip-compressed ({e})"
    if len(header) < 8:
        return "shorter than an IDX header"
    got_magic, count = struct.unpack(">ii", header)
    want = MNIST_COUNTS[os.path.basename(path).split("-")[0]]
    if got_magic != magic:
        return f"IDX magic number {got_magic}, not {magic}"
    if count != want:
        return f"{count} items; TFDS's builder reads exactly {want}"
    return None


def _ml_1m(path):
    if not zipfile.is_zipfile(path):
        return "not a zip archive"
    with zipfile.ZipFile(path) as z:
        missing = [n for n in ML_1M if n not in z.namelist()]
        if missing:
            return f"the zip lacks {missing}"
        if "::" not in z.open(ML_1M[2]).readline().decode("latin-1"):
            return f"{ML_1M[2]} is not '::'-separated"
    return None


_IMAGES = ("gzip of an IDX image file: magic 2051, then the image count (60000 for train, 10000 "
           "for t10k), 28, 28 and the pixels", lambda p: _idx(p, 2051))
_LABELS = ("gzip of an IDX label file: magic 2049, then the label count (60000 for train, "
           "10000 for t10k) and one byte per label", lambda p: _idx(p, 2049))

# {file name: (what it must be, check returning a problem or None)}.
FORMATS = {
    "img_align_celeba.zip": ("a zip of the aligned 178x218 JPEG images "
                             "(img_align_celeba/000001.jpg, ...)", _celeba_zip),
    "list_attr_celeba.txt": ("a line with the image count, a line with the 40 attribute names, "
                             "then '<image>.jpg' and 40 values 1/-1 per line, as many lines as "
                             "the count, each ending with a newline", _celeba_attributes),
    "list_landmarks_align_celeba.txt": (
        "a line with the image count, a line with the 10 landmark names, then '<image>.jpg' "
        "and 10 integers per line, as many lines as the count, each ending with a newline",
        lambda p: _celeba_table(p, CELEBA_LANDMARKS)),
    "list_eval_partition.txt": ("'<image>.jpg <0|1|2>' per line (train/validation/test)",
                                lambda p: _celeba_pairs(p, {"0", "1", "2"})),
    "identity_CelebA.txt": ("'<image>.jpg <identity number>' per line, each ending with a "
                            "newline", lambda p: _celeba_pairs(p, last_line_dropped=True)),
    "train-images-idx3-ubyte.gz": _IMAGES,
    "t10k-images-idx3-ubyte.gz": _IMAGES,
    "train-labels-idx1-ubyte.gz": _LABELS,
    "t10k-labels-idx1-ubyte.gz": _LABELS,
    "ml-1m.zip": ("a zip holding ml-1m/movies.dat, ml-1m/users.dat and ml-1m/ratings.dat, "
                  "'::'-separated", _ml_1m),
}


def check(name, path):
    """What is wrong with file ``name`` at ``path``, or None (also for names without a check)."""
    if name not in FORMATS:
        return None
    try:
        return FORMATS[name][1](path)
    except (OSError, ValueError, zipfile.BadZipFile) as e:  # Truncated or unreadable files.
        return f"unreadable ({type(e).__name__}: {e})"
