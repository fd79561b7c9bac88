"""The real data path, offline: TFDS's own builders prepare tiny files written here in
the real formats; the loaders read back the labels written; no network fails fast.

Nothing of TFDS is mocked in this file. The tiny files are not the originals, so
they go through ``verify_checksums=False`` (``tf_mtl.data.sources``)."""

import gzip
import importlib
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import tensorflow as tf

import tf_mtl

sources = importlib.import_module("tf_mtl.data.sources")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The names the issue and CelebA's site give the five files.
CELEBA_FILES = ["identity_CelebA.txt", "img_align_celeba.zip", "list_attr_celeba.txt",
                "list_eval_partition.txt", "list_landmarks_align_celeba.txt"]
# CelebA's attribute header as the original list_attr_celeba.txt spells it (line 2).
ATTRIBUTES = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips "
              "Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby "
              "Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
              "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
              "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair "
              "Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie "
              "Young").split()
LANDMARKS = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y " \
            "rightmouth_x rightmouth_y"


def _folder(name, data_dir):
    folder = data_dir / "downloads" / "manual" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_celeba(data_dir, n=6):
    """n aligned 218x178 JPEGs, image i a flat gray 30*i; returns ({image: attributes}, splits)."""
    rng = np.random.default_rng(0)
    folder = _folder("celeb_a", data_dir)
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    attributes = {f: rng.choice([-1, 1], 40) for f in names}
    splits = {f: 0 if i < n // 2 else 1 if i < n - 1 else 2 for i, f in enumerate(names)}
    with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as z:
        for i, f in enumerate(names, 1):
            pixels = np.full((218, 178, 3), 30 * i, np.uint8)
            z.writestr(f"img_align_celeba/{f}", tf.io.encode_jpeg(pixels).numpy())
    header = " ".join(ATTRIBUTES)
    (folder / "list_attr_celeba.txt").write_text(
        f"{n}\n{header}\n" + "".join(f"{f} " + " ".join(map(str, a)) + "\n"
                                     for f, a in attributes.items()))
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\n{LANDMARKS}\n" + "".join(f"{f} " + " ".join(["70"] * 10) + "\n" for f in names))
    (folder / "list_eval_partition.txt").write_text(
        "".join(f"{f} {s}\n" for f, s in splits.items()))
    (folder / "identity_CelebA.txt").write_text("".join(f"{f} {7 + i}\n"
                                                        for i, f in enumerate(names)))
    return attributes, splits


def _idx_gz(path, magic, rows, count):
    """An IDX file holding ``rows`` first, zeros after: TFDS's MNIST builder reads ``count``."""
    shape = rows.shape[1:]
    full = np.zeros((count,) + shape, np.uint8)
    full[:len(rows)] = rows
    header = struct.pack(">i", magic) + struct.pack(f">{1 + len(shape)}i", count, *shape)
    path.write_bytes(gzip.compress(header + full.tobytes(), compresslevel=1))


def write_mnist(name, data_dir, n=12):
    """Image i of each split: a flat gray 10+20*(i % 12) with label i % 10; returns labels."""
    folder = _folder(name, data_dir)
    labels = {}
    for split, count in (("train", 60000), ("t10k", 10000)):
        gray = 10 + 20 * np.arange(n) + (5 if split == "t10k" else 0)
        images = np.broadcast_to(gray[:, None, None], (n, 28, 28)).astype(np.uint8)
        labels[split] = (np.arange(n) + (3 if split == "t10k" else 0)) % 10
        _idx_gz(folder / f"{split}-images-idx3-ubyte.gz", 2051, images, count)
        _idx_gz(folder / f"{split}-labels-idx1-ubyte.gz", 2049, labels[split].astype(np.uint8),
                count)
    return {s: dict(zip(10 + 20 * np.arange(n) + (5 if s == "t10k" else 0), labels[s]))
            for s in labels}


USERS = {"1": ("F", 1, 10, "48067"), "2": ("M", 56, 16, "70072"), "3": ("M", 25, 15, "55117")}
MOVIES = {"1": "Toy Story (1995)::Animation|Children's|Comedy", "2": "Jumanji (1995)::Adventure",
          "3": "Heat (1995)::Action|Crime|Thriller", "4": "Casino (1995)::Drama|Thriller",
          "5": "Sabrina (1995)::Comedy|Romance", "6": "Nixon (1995)::Drama"}
RATINGS = [("1", "1", 5), ("1", "3", 3), ("2", "2", 4), ("2", "4", 1), ("2", "5", 2),
           ("3", "1", 4), ("3", "6", 5)]


def write_movielens(data_dir):
    with zipfile.ZipFile(_folder("movielens", data_dir) / "ml-1m.zip", "w") as z:
        z.writestr("ml-1m/movies.dat", "".join(f"{m}::{t}\n" for m, t in MOVIES.items()))
        z.writestr("ml-1m/users.dat", "".join(f"{u}::{g}::{a}::{o}::{zc}\n"
                                              for u, (g, a, o, zc) in USERS.items()))
        z.writestr("ml-1m/ratings.dat", "".join(f"{u}::{m}::{r}::97830{i}\n"
                                                for i, (u, m, r) in enumerate(RATINGS)))


def test_celeba_prepared_offline_from_the_manual_folder_with_the_written_labels(tmp_path):
    attributes, splits = write_celeba(tmp_path)
    for split, code in (("train", 0), ("validation", 1), ("test", 2)):
        ds = tf_mtl.data.celeba(split, tasks={"all": tf_mtl.data.CELEBA_ATTRIBUTES},
                                image_size=8, batch_size=16, shuffle=False,
                                data_dir=str(tmp_path), verify_checksums=False)
        x, y = next(iter(ds))
        # Each image is a flat gray 30*i: its brightness says which file it came from.
        index = np.round(x.numpy().mean(axis=(1, 2, 3)) * 255 / 30).astype(int)
        got = {f"{i:06d}.jpg": row for i, row in zip(index, y["all"].numpy())}
        assert sorted(got) == sorted(f for f, s in splits.items() if s == code)
        for f, row in got.items():
            np.testing.assert_array_equal(row, (attributes[f] > 0).astype(np.float32))
    # The default labels: one task per TAG attribute, one-hot [not, has].
    x, y = next(iter(tf_mtl.data.celeba("train", tasks=tf_mtl.data.CELEBA_TAG_TASKS,
                                        image_size=8, batch_size=16, shuffle=False,
                                        data_dir=str(tmp_path), verify_checksums=False)))
    index = np.round(x.numpy().mean(axis=(1, 2, 3)) * 255 / 30).astype(int)
    assert sorted(y) == sorted(tf_mtl.data.CELEBA_TAG_TASKS)
    for task in tf_mtl.data.CELEBA_TAG_TASKS:
        column = ATTRIBUTES.index(task)
        for i, row in zip(index, y[task].numpy()):
            has = int(attributes[f"{i:06d}.jpg"][column] > 0)
            np.testing.assert_array_equal(row, np.eye(2, dtype=np.float32)[has])
    # Nothing was staged in TFDS's shared download cache, nor left beside it.
    assert sorted(os.listdir(tmp_path)) == ["celeb_a", "downloads"]
    assert sorted(os.listdir(tmp_path / "downloads")) == ["manual"]
    assert sorted(os.listdir(tmp_path / "downloads" / "manual" / "celeb_a")) == CELEBA_FILES


def test_celeba_attribute_names_are_the_header_of_list_attr_celeba():
    assert tf_mtl.data.CELEBA_ATTRIBUTES == ATTRIBUTES


def test_celeba_copies_that_are_not_the_originals_are_refused_by_name(tmp_path):
    write_celeba(tmp_path)
    with pytest.raises(ValueError, match=r"not the originals: .*manual/celeb_a/identity_CelebA"
                                         r"\.txt \(sha256 .*verify_checksums=False"):
        tf_mtl.data.celeba("train", data_dir=str(tmp_path))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_idx_files_prepared_offline_by_tfds_builder(tmp_path, name):
    truth = write_mnist(name, tmp_path)
    sources.prepare(name, str(tmp_path), verify_checksums=False, max_examples_per_split=12)
    # The staging folder and TFDS's gunzipped copies in it are gone; the shared cache is untouched.
    assert sorted(os.listdir(tmp_path)) == ["downloads", name]
    assert sorted(os.listdir(tmp_path / "downloads")) == ["manual"]
    import tensorflow_datasets as tfds
    for split, key in (("train", "train"), ("test", "t10k")):
        got = [(int(e["image"][0, 0, 0]), int(e["label"])) for e in tfds.as_numpy(
            tfds.load(name, split=split, data_dir=str(tmp_path), download=False))]
        assert sorted(got) == sorted((int(g), int(l)) for g, l in truth[key].items())
    # The loader reads the prepared data: 12 training images -> 10 train composites.
    x, y = next(iter(tf_mtl.data.multi_mnist("train", source=name, data_dir=str(tmp_path),
                                             batch_size=64, shuffle=False)))
    left_gray = np.round(x.numpy()[:, 0, 0, 0] * 255).astype(int)
    assert len(left_gray) == 10
    for gray, label in zip(left_gray, y["left"].numpy()):
        assert truth["train"][gray] == label


def test_movielens_1m_zip_prepared_offline_with_the_written_ratings(tmp_path):
    write_movielens(tmp_path)
    watched = []
    for split in ("train", "validation", "test"):
        for x, y, _ in tf_mtl.data.movielens(split, batch_size=64, data_dir=str(tmp_path),
                                             verify_checksums=False):
            seen = y["watch"].numpy()[:, 0] == 1
            watched += [(str(u), str(m), int(r)) for u, m, r in zip(
                x["uid"].numpy()[seen], x["vid"].numpy()[seen], y["rating"].numpy()[seen, 0])]
            for u, g in zip(x["uid"].numpy(), x["gender"].numpy()):
                assert g == (USERS[str(u)][0] == "M")
    assert sorted(watched) == sorted(RATINGS)


def test_builders_preparation_modules_import():
    """What a fresh install needs beyond tfds.load under mock data (setup.py declares it)."""
    import importlib_resources  # noqa: F401  TFDS's dataset_builder imports it lazily.
    import tensorflow_datasets as tfds
    for name in ("celeb_a", "mnist", "fashion_mnist", "movielens"):
        cls = tfds.builder_cls(name)
        assert callable(cls._split_generators) and cls.url_infos
    importlib.import_module("tensorflow_datasets.structured.movielens_parsing")


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def proxy(monkeypatch):
    """Sends every HTTP(S) request to a loopback port; yields a function choosing the port."""
    for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)

    def use(port):
        for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(var, f"http://127.0.0.1:{port}")
    return use


def test_unreachable_source_fails_within_seconds_naming_files_url_and_folder(tmp_path, proxy):
    proxy(_closed_port())                          # Nothing listens: connection refused.
    start = time.monotonic()
    with pytest.raises(ConnectionError) as error:
        tf_mtl.data.multi_mnist("train", data_dir=str(tmp_path))
    assert time.monotonic() - start < 5
    message = str(error.value)
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert f"{f} (" in message
    assert "https://storage.googleapis.com/cvdf-datasets/mnist/" in message
    assert f"{tmp_path}/downloads/manual/mnist/" in message and "retries=True" in message


def test_a_silent_source_fails_after_the_probe_timeout(tmp_path, proxy):
    with socket.socket() as silent:                # Accepts connections, never answers.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        proxy(silent.getsockname()[1])
        start = time.monotonic()
        with pytest.raises(ConnectionError, match=r"celeb_a' within 3 s: https://drive\.google"
                                                  r".*img_align_celeba\.zip \(1443\.5 MB\)"):
            tf_mtl.data.celeba("train", data_dir=str(tmp_path))
        elapsed = time.monotonic() - start
    assert sources.PROBE_TIMEOUT <= elapsed < sources.PROBE_TIMEOUT + 4


def test_retries_true_keeps_tfds_retrying(tmp_path):
    """With the probe off, TFDS is still retrying seconds after a refused connection."""
    env = dict(os.environ, HTTPS_PROXY=f"http://127.0.0.1:{_closed_port()}", NO_PROXY="")
    code = ("import sys, tf_mtl; print('calling', flush=True); "
            f"tf_mtl.data.movielens('train', data_dir={str(tmp_path)!r}, retries=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "calling"
        time.sleep(4)
        assert proc.poll() is None                 # Fail-fast would have ended it by now.
    finally:
        proc.kill()
        proc.wait()


def test_data_dir_that_is_not_writable(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"`data_dir` is not writable .*Received: data_dir="
                                         rf"'{blocker}/tfds'"):
        tf_mtl.data.movielens("train", data_dir=str(blocker / "tfds"))


def test_partial_manual_folder_names_the_missing_and_misnamed_files(tmp_path):
    write_celeba(tmp_path)
    folder = tmp_path / "downloads" / "manual" / "celeb_a"
    (folder / "list_landmarks_align_celeba.txt").unlink()
    (folder / "list_attr_celeba.txt").rename(folder / "list_attr_celeba.csv")
    with pytest.raises(ValueError) as error:
        tf_mtl.data.celeba("train", data_dir=str(tmp_path))
    message = str(error.value)
    assert f"{folder}/ is missing" in message
    assert "list_attr_celeba.txt (26.7 MB, https://drive.google.com/" in message
    assert "list_landmarks_align_celeba.txt (12.2 MB" in message
    assert "img_align_celeba.zip (" not in message          # Present: not named as missing.
    assert "Misnamed: 'list_attr_celeba.csv' (expected 'list_attr_celeba.txt'?)" in message


def _spoil(tmp_path, name, what):
    folder = tmp_path / "downloads" / "manual" / name
    if what == "attr_header":
        path = folder / "list_attr_celeba.txt"
        lines = path.read_text().splitlines()
        path.write_text("\n".join([lines[0], " ".join(lines[1].split()[1:])] + lines[2:]))
    elif what in ("attr_no_final_newline", "identity_no_final_newline"):
        path = folder / {"attr": "list_attr_celeba.txt", "identity": "identity_CelebA.txt"}[
            what.split("_")[0]]
        path.write_text(path.read_text().rstrip("\n"))
    elif what == "landmarks_count":
        path = folder / "list_landmarks_align_celeba.txt"
        path.write_text("7" + path.read_text()[1:])      # write_celeba wrote 6 rows.
    elif what == "zip_not_zip":
        (folder / "img_align_celeba.zip").write_bytes(b"<html>quota exceeded</html>")
    elif what == "labels_as_images":
        (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
            (folder / "t10k-images-idx3-ubyte.gz").read_bytes())
    elif what == "not_gzip":
        (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x00\x00\x08\x03")
    elif what == "ml_no_ratings":
        with zipfile.ZipFile(folder / "ml-1m.zip", "w") as z:
            z.writestr("ml-1m/movies.dat", "1::Toy Story (1995)::Comedy\n")


@pytest.mark.parametrize("name, what, message", [
    ("celeb_a", "attr_header", r"celeb_a/list_attr_celeba\.txt is not in the format .*line 2 is "
                               r"not the 40 column names .*Expected a line with the image count"),
    ("celeb_a", "attr_no_final_newline", r"list_attr_celeba\.txt is not .*the last line, "
                                         r"for 000006\.jpg, does not end with a newline"),
    ("celeb_a", "identity_no_final_newline", r"identity_CelebA\.txt is not .*the last line, "
                                             r"for 000006\.jpg, does not end with a newline"),
    ("celeb_a", "landmarks_count", r"list_landmarks_align_celeba\.txt is not .*line 1 says 7 "
                                   r"images, 6 rows follow"),
    ("celeb_a", "zip_not_zip", r"img_align_celeba\.zip is not .*not a zip archive. Expected a zip"
                               r" of the aligned 178x218 JPEG"),
    ("mnist", "labels_as_images", r"t10k-labels-idx1-ubyte\.gz is not .*IDX magic number 2051, "
                                  r"not 2049. Expected gzip of an IDX label file"),
    ("mnist", "not_gzip", r"train-images-idx3-ubyte\.gz is not .*not gzip-compressed"),
    ("movielens", "ml_no_ratings", r"ml-1m\.zip is not .*lacks \['ml-1m/users\.dat', "
                                   r"'ml-1m/ratings\.dat'\]. Expected a zip holding"),
])
def test_manual_file_in_the_wrong_format_is_named_with_what_was_expected(tmp_path, name, what,
                                                                         message):
    {"celeb_a": write_celeba, "mnist": lambda d: write_mnist("mnist", d, n=2),
     "movielens": write_movielens}[name](tmp_path)
    _spoil(tmp_path, name, what)
    load = {"celeb_a": tf_mtl.data.celeba, "mnist": tf_mtl.data.multi_mnist,
            "movielens": tf_mtl.data.movielens}[name]
    with pytest.raises(ValueError, match=message + ".*Received: data_dir="):
        load("train", data_dir=str(tmp_path))


def test_download_false_on_missing_data_says_where_to_place_the_files(tmp_path):
    with pytest.raises(RuntimeError, match=r"'movielens/1m-ratings' is not prepared .*download="
                                           r"False.*ml-1m\.zip \(5\.9 MB\) from https://files\."
                                           r"grouplens\.org/.*downloads/manual/movielens/"):
        tf_mtl.data.movielens("train", data_dir=str(tmp_path), download=False)


def test_files_left_in_the_shared_manual_folder_are_named_with_where_to_move_them(tmp_path):
    write_movielens(tmp_path)
    shared = tmp_path / "downloads" / "manual"
    (shared / "movielens" / "ml-1m.zip").rename(shared / "ml-1m.zip")
    with pytest.raises(ValueError, match=r"lie in .*/downloads/manual/: \['ml-1m.zip'\]. Move "
                                         r"them into .*/downloads/manual/movielens/"):
        tf_mtl.data.movielens("train", data_dir=str(tmp_path))


@pytest.mark.parametrize("arg", ["verify_checksums", "retries"])
def test_switches_must_be_bools(tmp_path, arg):
    with pytest.raises(ValueError, match=f"`{arg}` must be True or False. Received: {arg}='no'"):
        tf_mtl.data.movielens("train", data_dir=str(tmp_path), **{arg: "no"})


def _cache(downloads, builder, filename, data, **info):
    """Writes ``data`` where TFDS caches its download of ``filename`` (TFDS's own file name)."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import resource as resource_lib
    url, expected = next((u, i) for u, i in tfds.builder_cls(builder).url_infos.items()
                         if i.filename == filename)
    path = downloads / resource_lib.get_dl_fname(url, expected.checksum)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    (downloads / (path.name + ".INFO")).write_text(
        json.dumps({"urls": [url], "original_fname": filename, **info}))
    return path


def _mnist_pairs(name, data_dir):
    """Sorted (gray, label) per split of the prepared dataset."""
    import tensorflow_datasets as tfds
    return {key: sorted((int(e["image"][0, 0, 0]), int(e["label"])) for e in tfds.as_numpy(
        tfds.load(name, split=split, data_dir=str(data_dir), download=False)))
        for split, key in (("train", "train"), ("test", "t10k"))}


def _pairs(truth):
    return {key: sorted((int(g), int(l)) for g, l in truth[key].items()) for key in truth}


def test_verify_checksums_false_never_touches_tfds_shared_download_cache(tmp_path, monkeypatch):
    """A killed run leaves what the shared cache holds while TFDS prepares: nothing of ours."""
    import tensorflow_datasets as tfds
    truth = write_mnist("mnist", tmp_path)
    downloads = tmp_path / "downloads"
    genuine = _cache(downloads, "mnist", "train-images-idx3-ubyte.gz", b"a genuine download")
    cached = {p.name: p.read_bytes() for p in downloads.iterdir() if p.is_file()}
    cls, seen = tfds.builder_cls("mnist"), []
    generate = cls._split_generators

    def observed(self, dl_manager):
        splits = generate(self, dl_manager)          # The files are downloaded/read by now.
        seen.append(sorted(os.listdir(downloads)))
        return splits
    monkeypatch.setattr(cls, "_split_generators", observed)
    sources.prepare("mnist", str(tmp_path), verify_checksums=False, max_examples_per_split=12)
    assert seen == [sorted(["manual", genuine.name, genuine.name + ".INFO"])]
    assert {p.name: p.read_bytes() for p in downloads.iterdir() if p.is_file()} == cached
    assert sorted(os.listdir(tmp_path)) == ["downloads", "mnist"]
    assert _mnist_pairs("mnist", tmp_path) == _pairs(truth)


def test_links_staged_in_the_download_cache_by_older_versions_are_removed(tmp_path):
    truth = write_mnist("mnist", tmp_path)
    downloads = tmp_path / "downloads"
    stale = _cache(downloads, "mnist", "t10k-labels-idx1-ubyte.gz", b"a tiny copy",
                   staged_by="tf_mtl, verify_checksums=False")
    (downloads / "extracted").mkdir()
    (downloads / "extracted" / f"GZIP.{stale.name}").write_bytes(b"its extraction")
    genuine = _cache(downloads, "mnist", "train-labels-idx1-ubyte.gz", b"a genuine download")
    sources.prepare("mnist", str(tmp_path), verify_checksums=False, max_examples_per_split=12)
    assert sorted(os.listdir(downloads)) == sorted(
        ["extracted", "manual", genuine.name, genuine.name + ".INFO"])
    assert not os.listdir(downloads / "extracted")
    assert _mnist_pairs("mnist", tmp_path) == _pairs(truth)


@pytest.mark.parametrize("where", ["downloads", "downloads/mnist"])  # TFDS 4.9.3's, 4.9.10's.
def test_files_in_tfds_download_cache_are_prepared_without_network(tmp_path, proxy, where):
    """A copied ~/tensorflow_datasets/downloads, or a download whose preparation failed."""
    import tensorflow_datasets as tfds
    truth = write_mnist("mnist", tmp_path)
    manual = tmp_path / "downloads" / "manual" / "mnist"
    for f in sorted(os.listdir(manual)):
        _cache(tmp_path / where, "mnist", f, (manual / f).read_bytes())
    shutil.rmtree(manual)
    proxy(_closed_port())
    if where == "downloads/mnist" and tfds.__version__ == "4.9.3":
        # TFDS 4.9.3 never looks there: it would download, so the probe refuses at once.
        with pytest.raises(ConnectionError, match="Cannot reach the source of TFDS 'mnist'"):
            sources.prepare("mnist", str(tmp_path), max_examples_per_split=12)
        return
    sources.prepare("mnist", str(tmp_path), max_examples_per_split=12)
    assert _mnist_pairs("mnist", tmp_path) == _pairs(truth)


def test_an_error_while_preparing_from_placed_files_is_not_called_a_download_failure(tmp_path):
    write_mnist("mnist", tmp_path, n=2)
    (tmp_path / "mnist").write_text("")          # TFDS cannot make its dataset folder there.
    with pytest.raises(NotADirectoryError, match=f"{tmp_path}/mnist/"):
        sources.prepare("mnist", str(tmp_path), verify_checksums=False, max_examples_per_split=2)
    assert sorted(os.listdir(tmp_path)) == ["downloads", "mnist"]    # No staging folder left.


def _without(path, image):
    """Rewrites the zip or list at ``path`` without ``image`` (a list keeps its count right)."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            entries = {n: z.read(n) for n in z.namelist() if not n.endswith(image)}
        with zipfile.ZipFile(path, "w") as z:
            for n, data in entries.items():
                z.writestr(n, data)
        return
    lines = [l for l in path.read_text().splitlines() if not l.startswith(image)]
    path.write_text("\n".join([str(len(lines) - 2)] + lines[1:]) + "\n")


@pytest.mark.parametrize("dropped_from, message", [
    ("img_align_celeba.zip", r"'000002\.jpg' is in list_eval_partition\.txt, "
                             r"list_attr_celeba\.txt, list_landmarks_align_celeba\.txt and "
                             r"identity_CelebA\.txt but not in img_align_celeba\.zip"),
    ("list_attr_celeba.txt", r"'000002\.jpg' is in list_eval_partition\.txt, "
                             r"img_align_celeba\.zip, list_landmarks_align_celeba\.txt and "
                             r"identity_CelebA\.txt but not in list_attr_celeba\.txt"),
])
def test_celeba_files_that_disagree_name_the_image_and_the_files(tmp_path, dropped_from,
                                                                 message):
    write_celeba(tmp_path)
    folder = tmp_path / "downloads" / "manual" / "celeb_a"
    _without(folder / dropped_from, "000002.jpg")
    with pytest.raises(ValueError, match=r"The CelebA files in .*/manual/celeb_a/ disagree: "
                                         + message + r".*Received: data_dir="):
        sources.prepare("celeb_a", str(tmp_path), verify_checksums=False)


def test_originals_in_the_manual_folder_are_read_by_tfds_with_checksums_verified(tmp_path,
                                                                                 monkeypatch):
    """What users do: the original files in downloads/manual/celeb_a/, verify_checksums=True."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import checksums
    attributes, splits = write_celeba(tmp_path)
    folder = tmp_path / "downloads" / "manual" / "celeb_a"
    cls, read = tfds.builder_cls("celeb_a"), []
    # TFDS's registry gets the tiny files' size and SHA-256: they are "the originals".
    monkeypatch.setattr(cls, "url_infos", {u: checksums.compute_url_info(folder / i.filename)
                                           for u, i in cls.url_infos.items()})
    generate = cls._split_generators

    def observed(self, dl_manager):
        splits = generate(self, dl_manager)
        read.extend(str(p) for p in splits[0].gen_kwargs["downloaded_dirs"].values())
        return splits
    monkeypatch.setattr(cls, "_split_generators", observed)
    x, y = next(iter(tf_mtl.data.celeba("train", tasks=["Male", "Young"], image_size=8,
                                        batch_size=16, shuffle=False, data_dir=str(tmp_path))))
    assert sorted(read) == [str(folder / f) for f in CELEBA_FILES]    # Read in place.
    index = np.round(x.numpy().mean(axis=(1, 2, 3)) * 255 / 30).astype(int)
    assert sorted(f"{i:06d}.jpg" for i in index) == sorted(f for f, s in splits.items() if s == 0)
    for task in ("Male", "Young"):
        for i, row in zip(index, y[task].numpy()):
            has = int(attributes[f"{i:06d}.jpg"][ATTRIBUTES.index(task)] > 0)
            np.testing.assert_array_equal(row, np.eye(2, dtype=np.float32)[has])
    # Nothing staged: beside the manual folder only TFDS's own (empty) extraction folder.
    assert sorted(os.listdir(tmp_path)) == ["celeb_a", "downloads"]
    assert sorted(os.listdir(tmp_path / "downloads")) == ["extracted", "manual"]
    assert not os.listdir(tmp_path / "downloads" / "extracted")
