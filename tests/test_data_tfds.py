"""The TFDS loaders, offline: tfds.testing.mock_data makes random examples with
the real feature specs."""

import importlib
import pickle

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tf_mtl
# The package re-exports functions under the modules' names: import the modules.
mm = importlib.import_module("tf_mtl.data.multi_mnist")
ml = importlib.import_module("tf_mtl.data.movielens")


@pytest.fixture
def mock():
    with tfds.testing.mock_data(num_examples=24, policy=tfds.testing.MockPolicy.USE_CODE):
        yield


def test_celeba_tag_tasks_are_two_class_one_hot(mock):
    ds = tf_mtl.data.celeba("train", batch_size=8, image_size=32)
    x, y = next(iter(ds))
    assert x.shape == (8, 32, 32, 3) and x.dtype.name == "float32"
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert sorted(y) == sorted(tf_mtl.data.CELEBA_TAG_TASKS)
    label = y["Wearing_Hat"].numpy()
    assert label.shape == (8, 2) and np.all(label.sum(1) == 1)


def test_celeba_groups_are_multi_label_and_cover_all_40_attributes(mock):
    groups = tf_mtl.data.CELEBA_MR_GROUPS
    assert sorted(a for g in groups.values() for a in g) == sorted(tf_mtl.data.CELEBA_ATTRIBUTES)
    ds = tf_mtl.data.celeba("validation", tasks=groups, batch_size=4)
    x, y = next(iter(ds))
    assert x.shape == (4, 64, 64, 3)
    assert y["hair"].shape == (4, 9) and set(np.unique(y["hair"].numpy())) <= {0.0, 1.0}


def test_celeba_same_seed_same_examples(mock):
    a = next(iter(tf_mtl.data.celeba("train", batch_size=6, seed=3)))[0].numpy()
    b = next(iter(tf_mtl.data.celeba("train", batch_size=6, seed=3)))[0].numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs, message", [
    (dict(tasks=["Smiling", "Frowning"]), r"Unknown CelebA attributes: \['Frowning'\]"),
    (dict(tasks=[]), "at least one attribute"),
    (dict(tasks={"g": []}), "at least one attribute"),
    (dict(image_size=0), "Received: image_size=0"),
    (dict(split="dev"), "Received: split='dev'"),
])
def test_celeba_bad_input(kwargs, message):
    split = kwargs.pop("split", "train")
    with pytest.raises(ValueError, match=message):
        tf_mtl.data.celeba(split, **kwargs)


def test_celeba_failed_download_says_where_to_put_the_files(tmp_path):
    with pytest.raises(RuntimeError, match="img_align_celeba.zip.*downloads/manual"):
        tf_mtl.data.celeba("train", data_dir=str(tmp_path), download=False)


def test_multi_mnist_composition_on_known_inputs():
    left = np.zeros((2, 28, 28), np.uint8)
    right = np.zeros((2, 28, 28), np.uint8)
    left[:, 0, 0], right[:, 0, 0], right[:, 27, 27] = 200, 100, 50
    left[:, 20, 20], right[:, 12, 12] = 30, 90     # Both land on canvas (20, 20).
    canvas = mm.compose(left, right)
    assert canvas.shape == (2, 36, 36)
    assert canvas[0, 0, 0] == 200             # Left digit: top-left corner.
    assert canvas[0, 8, 8] == 100             # Right digit shifted by 8.
    assert canvas[0, 35, 35] == 50
    assert canvas[0, 20, 20] == 90            # Overlap keeps the brighter pixel.


def test_multi_mnist_partners_have_other_classes():
    labels = np.random.default_rng(0).integers(0, 10, 1000)
    p = mm.partners(labels, seed=1)
    assert np.all(labels[p] != labels)
    np.testing.assert_array_equal(p, mm.partners(labels, seed=1))


@pytest.mark.parametrize("source", ["mnist", "fashion_mnist", "mixed"])
def test_multi_mnist_from_tfds(mock, source):
    train = tf_mtl.data.multi_mnist("train", source=source, batch_size=100, shuffle=False)
    val = tf_mtl.data.multi_mnist("validation", source=source, batch_size=100)
    x, y = next(iter(train))
    assert x.shape == (20, 36, 36, 1) and sorted(y) == ["left", "right"]   # 24 - 24 // 6
    assert next(iter(val))[0].shape[0] == 4
    if source != "mixed":
        assert np.all(y["left"].numpy() != y["right"].numpy())
    assert tf_mtl.data.multi_mnist("test", image_size=28, batch_size=3).element_spec[0].shape[1] == 28


def test_multi_mnist_pickle(tmp_path):
    rng = np.random.default_rng(0)
    content = (rng.random((12, 36, 36)), rng.integers(0, 10, (12, 2)),
               rng.random((6, 36, 36)), rng.integers(0, 10, (6, 2)))
    path = tmp_path / "multi_mnist.pickle"
    path.write_bytes(pickle.dumps(content))
    x, y = next(iter(tf_mtl.data.multi_mnist_pickle(str(path), "train", batch_size=64,
                                                    shuffle=False)))
    assert x.shape == (10, 36, 36, 1)
    np.testing.assert_array_equal(y["right"].numpy(), content[1][:10, 1])
    with pytest.raises(FileNotFoundError, match="Received: path="):
        tf_mtl.data.multi_mnist_pickle(str(tmp_path / "none.pickle"), "train")
    bad = tmp_path / "bad.pickle"
    bad.write_bytes(pickle.dumps((np.zeros((3, 36, 36)), np.zeros((3,)), 1, 2)))
    with pytest.raises(ValueError, match="wrong format"):
        tf_mtl.data.multi_mnist_pickle(str(bad), "train")
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a Lin et al"):
        tf_mtl.data.multi_mnist_pickle(str(bad), "test")


def test_movielens_negatives_balanced_per_user_and_rating_masked():
    rng = np.random.default_rng(0)
    n = 60
    ratings = {
        "user": np.array([str(u).encode() for u in rng.integers(1, 6, n)]),
        "movie": np.array([str(m).encode() for m in rng.integers(1, 40, n)]),
        "title": np.array([b"Toy Story (1995)"] * n), "genre": np.zeros((n, 21), np.float32),
        "gender": rng.integers(0, 2, n), "age": np.full(n, 25.0, np.float32),
        "occupation": rng.integers(0, 21, n), "zip": np.array([b"48067"] * n),
        "rating": rng.integers(1, 6, n).astype(np.float32),
    }
    pairs = ml.build_pairs(ratings, seed=0)
    for user in np.unique(pairs["user_index"]):
        mine = pairs["user_index"] == user
        assert pairs["watch"][mine].sum() == (~pairs["watch"][mine].astype(bool)).sum()
    assert np.all(pairs["rating"][pairs["watch"] == 0] == 0)
    assert np.all(pairs["rating"][pairs["watch"] == 1] >= 1)
    assert set(pairs["uid"]) <= set(range(1, 6))   # Numeric ids map to themselves.


def test_movielens_from_tfds(mock):
    ds = tf_mtl.data.movielens("train", batch_size=8)
    x, y, sw = next(iter(ds))
    assert sorted(x) == sorted(ml.EMBED) and x["title"].shape == (8, ml.TITLE_WORDS)
    np.testing.assert_array_equal(sw["rating"].numpy(), y["watch"].numpy()[:, 0])
    again = next(iter(tf_mtl.data.movielens("train", batch_size=8)))[0]["vid"].numpy()
    np.testing.assert_array_equal(x["vid"].numpy(), again)
    encoder = tf_mtl.data.MovieLensEncoder(hidden=[16])
    assert encoder(x).shape == (8, 16)
