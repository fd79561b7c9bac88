"""Domain loaders: CIFAR-100 through TFDS (mocked offline), image folders written by the test,
and the planted synthetic domains."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import tf_mtl


def test_cifar100_from_tfds():
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = tf_mtl.data.cifar100("train")
        x, y = next(iter(ds))
        assert x.shape == (32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
        assert 0.0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1.0
        assert 0 <= int(y) < 100
        coarse = [int(e[1]) for e in tf_mtl.data.cifar100("test", label="coarse_label",
                                                          image_size=16)]
        assert len(coarse) == 12 and max(coarse) < 20
        assert next(iter(tf_mtl.data.cifar100("test", image_size=16)))[0].shape == (16, 16, 3)
    with pytest.raises(ValueError, match="Received: split='validation'"):
        tf_mtl.data.cifar100("validation")
    with pytest.raises(ValueError, match="Received: label='fine'"):
        tf_mtl.data.cifar100("train", label="fine")


def _write(path, value, size=6):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = np.full((size, size + 2, 3), value, np.uint8)
    encode = tf.io.encode_png if path.endswith(".png") else tf.io.encode_jpeg
    tf.io.write_file(path, encode(image))


@pytest.fixture
def tiny_imagenet(tmp_path):
    """Tiny-ImageNet's layout: train/<wnid>/images/*.JPEG, val/images + val_annotations.txt."""
    root = tmp_path / "tiny-imagenet-200"
    values = {"n02": 40, "n01": 200, "n03": 120}       # Folder order differs from sorted order.
    for wnid, value in values.items():
        for i in range(3 if wnid != "n03" else 2):
            _write(str(root / "train" / wnid / "images" / f"{wnid}_{i}.png"), value)
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text("not an image\n")
    lines = []
    for i, wnid in enumerate(["n03", "n01", "n01", "n02"]):
        _write(str(root / "val" / "images" / f"val_{i}.png"), values[wnid])
        lines.append(f"val_{i}.png\t{wnid}\t0\t0\t5\t5")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return root, values


def _examples(ds):
    return [(x.numpy(), int(y)) for x, y in ds]


def test_image_folder_class_subfolders(tiny_imagenet):
    root, values = tiny_imagenet
    ds = tf_mtl.data.image_folder(str(root / "train"), image_size=4)
    assert ds.class_names == ["n01", "n02", "n03"]
    examples = _examples(ds)
    assert [y for _, y in examples] == [0, 0, 0, 1, 1, 1, 2, 2]
    for x, y in examples:   # A uniform image stays uniform through the bicubic resize.
        assert x.shape == (4, 4, 3)
        np.testing.assert_allclose(x, values[ds.class_names[y]] / 255.0, atol=1e-5)
    few = tf_mtl.data.image_folder(str(root / "train"), per_class=2, seed=1)
    assert [y for _, y in _examples(few)] == [0, 0, 1, 1, 2, 2]


def test_image_folder_labels_file_and_class_subsets(tiny_imagenet):
    root, values = tiny_imagenet
    val = tf_mtl.data.image_folder(str(root / "val" / "images"),
                                   labels_file=str(root / "val" / "val_annotations.txt"))
    assert val.class_names == ["n01", "n02", "n03"]
    for x, y in _examples(val):
        np.testing.assert_allclose(x[0, 0], values[val.class_names[y]] / 255.0, atol=1e-5)
    # The same seed draws the same classes for train and test.
    train2 = tf_mtl.data.image_folder(str(root / "train"), num_classes=2, class_seed=5)
    val2 = tf_mtl.data.image_folder(str(root / "val" / "images"), num_classes=2, class_seed=5,
                                    labels_file=str(root / "val" / "val_annotations.txt"))
    assert train2.class_names == val2.class_names and len(train2.class_names) == 2
    # MiniPlaces-style integer classes sort numerically.
    (root / "list.txt").write_text("a/10.png 10\na/9.png 9\n")
    _write(str(root / "a" / "10.png"), 10)
    _write(str(root / "a" / "9.png"), 9)
    ints = tf_mtl.data.image_folder(str(root), labels_file=str(root / "list.txt"))
    assert ints.class_names == ["9", "10"]
    assert [(round(float(x[0, 0, 0]) * 255), y) for x, y in _examples(ints)] == [(9, 0), (10, 1)]


def test_image_folder_bad_input(tiny_imagenet, tmp_path):
    root, _ = tiny_imagenet
    with pytest.raises(ValueError, match="`root` must be a folder.*Received: root="):
        tf_mtl.data.image_folder(str(tmp_path / "none"))
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    (tmp_path / "empty" / "cls" / "notes.txt").write_text("no image\n")
    with pytest.raises(ValueError, match="No images.*Received: root="):
        tf_mtl.data.image_folder(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match=r"`num_classes` must be an int in \[1, 3\].*=4"):
        tf_mtl.data.image_folder(str(root / "train"), num_classes=4)
    (tmp_path / "bad.txt").write_text("val_0.png\n")
    with pytest.raises(ValueError, match="line 1 of .*bad.txt: 'val_0.png'"):
        tf_mtl.data.image_folder(str(root / "val" / "images"), labels_file=str(tmp_path / "bad.txt"))
    (tmp_path / "missing.txt").write_text("val_9.png n01\n")
    with pytest.raises(ValueError, match="not under `root`.*'val_9.png'"):
        tf_mtl.data.image_folder(str(root / "val" / "images"),
                                 labels_file=str(tmp_path / "missing.txt"))


def test_image_folder_test_split_numbers_the_train_splits_classes(tiny_imagenet, tmp_path):
    root, values = tiny_imagenet
    train = tf_mtl.data.image_folder(str(root / "train"))
    (tmp_path / "val.txt").write_text("val_0.png n03\nval_1.png n01\n")   # No n02 image.
    labels = str(tmp_path / "val.txt")
    test = tf_mtl.data.image_folder(str(root / "val" / "images"), labels_file=labels,
                                    classes=train.class_names)
    assert test.class_names == ["n01", "n02", "n03"]
    assert [y for _, y in _examples(test)] == [0, 2]      # Numbered as in train: n03 is 2.
    for x, y in _examples(test):
        np.testing.assert_allclose(x[0, 0], values[train.class_names[y]] / 255.0, atol=1e-5)
    # A listed subset keeps only its classes' images, in the listed numbering.
    sub = tf_mtl.data.image_folder(str(root / "val" / "images"), labels_file=labels,
                                   classes=["n03"])
    assert [y for _, y in _examples(sub)] == [0]
    with pytest.raises(ValueError, match=r"found: \['n01', 'n02', 'n03'\].*classes=\['n09'\]"):
        tf_mtl.data.image_folder(str(root / "train"), classes=["n09"])
    with pytest.raises(ValueError, match=r"distinct.*Received: classes=\['n01', 'n01'\]"):
        tf_mtl.data.image_folder(str(root / "train"), classes=["n01", "n01"])
    with pytest.raises(ValueError, match="`classes` or `num_classes`.*num_classes=2"):
        tf_mtl.data.image_folder(str(root / "train"), classes=["n01"], num_classes=2)


def test_synthetic_domains_share_prototypes():
    def class_means(seed, split, share):
        x, y = map(np.stack, zip(*[(a.numpy(), b.numpy()) for a, b in tf_mtl.data.synthetic_domain(
            seed, split, num_classes=2, num_examples=400, image_size=2, share=share, noise=0.1)]))
        return np.stack([x[y == c].mean(0) for c in range(2)])
    a_train, a_test = class_means(1, "train", 0.9), class_means(1, "test", 0.9)
    np.testing.assert_allclose(a_train, a_test, atol=0.05)      # Same prototypes, other draws.
    close = np.corrcoef(a_train.ravel(), class_means(2, "train", 0.9).ravel())[0, 1]
    far = np.corrcoef(class_means(1, "train", 0.1).ravel(),
                      class_means(2, "train", 0.1).ravel())[0, 1]
    assert close > 0.8 and abs(far) < close
    with pytest.raises(ValueError, match="Received: share=1.5"):
        tf_mtl.data.synthetic_domain(0, share=1.5)
