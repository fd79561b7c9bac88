"""The TFDS loaders, offline: tfds.testing.mock_data makes random examples with
the real feature specs."""

import importlib
import pickle

import keras
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
    encoder = tf_mtl.data.MovieLensEncoder(hidden=[16], dropout=[0.0])
    assert encoder(x).shape == (8, 16)


def _movielens_features(rng, n):
    x = {k: rng.integers(0, ml.VOCAB[k], n).astype(np.int32)
         for k in ml.EMBED if k not in ("title", "genre")}
    x["title"] = rng.integers(0, 30, (n, ml.TITLE_WORDS)).astype(np.int32)
    x["title"][:, 3:] = 0                                   # Padding.
    x["genre"] = (rng.random((n, ml.VOCAB["genre"])) < 0.2).astype(np.float32)
    x["genre"][0] = 0                                      # A movie without genres.
    return x


def test_movielens_encoder_is_001_d6_dense_dropout_stack():
    """Embeddings -> Dense(50), Dropout(0.05), Dense(10), Dropout(0.01), ReLU."""
    x = _movielens_features(np.random.default_rng(0), 64)
    encoder = tf_mtl.data.MovieLensEncoder()
    out = encoder(x, training=False).numpy()
    assert [(type(l).__name__, getattr(l, "units", None), getattr(l, "rate", None))
            for l in encoder.mlp] == [("Dense", 50, None), ("Dropout", None, 0.05),
                                      ("Dense", 10, None), ("Dropout", None, 0.01)]
    # The inference forward written out with numpy from the layer's own weights.
    table = {k: encoder.embeddings[k].embeddings.numpy() for k in ml.EMBED}
    parts = []
    for k in ml.EMBED:
        if k == "title":
            mask = (x[k] > 0)[..., None]
            parts.append((table[k][x[k]] * mask).sum(1) / np.maximum(mask.sum(1), 1))
        elif k == "genre":
            parts.append(x[k] @ table[k] / np.maximum(x[k].sum(1, keepdims=True), 1))
        else:
            parts.append(table[k][x[k]])
    h = np.concatenate(parts, axis=1)
    assert h.shape[1] == sum(ml.EMBED.values()) == 175
    for dense in (encoder.mlp[0], encoder.mlp[2]):
        h = np.maximum(h @ dense.kernel.numpy() + dense.bias.numpy(), 0.0)
    np.testing.assert_allclose(out, h, rtol=1e-5, atol=1e-6)
    # Training mode drops units (a 0.05 rate over 64x50 units drops some for sure).
    assert not np.allclose(encoder(x, training=True).numpy(), out)
    config = encoder.get_config()
    assert (config["hidden"], config["dropout"], config["activation"]) == (
        [50, 10], [0.05, 0.01], "relu")
    clone = keras.layers.deserialize(keras.layers.serialize(encoder))
    assert isinstance(clone, tf_mtl.data.MovieLensEncoder)
    assert [l.rate for l in clone.mlp[1::2]] == [0.05, 0.01]


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden=[50, 0]), r"`hidden`.*Received: hidden=\[50, 0\]"),
    (dict(hidden="50"), "`hidden`.*Received: hidden='50'"),
    (dict(dropout=[0.05, 1.0]), r"`dropout`.*Received: dropout=\[0.05, 1.0\]"),
    (dict(hidden=[16]), r"one rate per entry of `hidden` \(1\). Received: dropout="),
    (dict(activation="nope"), "`activation`.*Received: activation='nope'"),
])
def test_movielens_encoder_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tf_mtl.data.MovieLensEncoder(**kwargs)


def _pool_of(split, n):
    """The source pool of ``split`` written out from the module doc: the last
    1/6 of the TFDS train split is the validation pool."""
    cut = n - n // 6
    return set(range(cut)) if split == "train" else set(range(cut, n))


@pytest.mark.parametrize("mixed", [False, True])
def test_multi_mnist_source_indices_keep_train_and_validation_disjoint(mixed):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 600)
    right_labels = rng.integers(0, 10, 650) if mixed else None   # Fashion pool may be longer.
    idx = {s: mm.source_indices(s, labels, right_labels, seed=3) for s in ("train", "validation")}
    for split, (left, right) in idx.items():
        pool = _pool_of(split, 600)
        assert sorted(left) == sorted(pool)                  # Each pool image is a left image once.
        assert set(right) <= pool                            # Partners from the same pool only.
        if not mixed:
            assert np.all(labels[left] != labels[right])
    if mixed:  # Two source datasets: each one's images stay on one side of the split.
        assert not set(idx["train"][0]) & set(idx["validation"][0])
        assert not set(idx["train"][1]) & set(idx["validation"][1])
    else:
        train_sources = set(idx["train"][0]) | set(idx["train"][1])
        assert not train_sources & (set(idx["validation"][0]) | set(idx["validation"][1]))
    again = mm.source_indices("validation", labels, right_labels, seed=3)
    np.testing.assert_array_equal(again[1], idx["validation"][1])


def _source_images(name):
    ds = tfds.load(name, split="train", shuffle_files=False)
    return np.stack([e["image"][..., 0] for e in tfds.as_numpy(ds)])


@pytest.mark.parametrize("source", ["mnist", "mixed"])
def test_multi_mnist_validation_composites_reuse_no_training_digit(source):
    """Identifies each composite's two source images from its pixels alone: canvas
    rows 0-7 show only the left image, rows 28-35 only the right one."""
    with tfds.testing.mock_data(num_examples=60, policy=tfds.testing.MockPolicy.USE_CODE):
        left_src = _source_images("mnist")
        right_src = _source_images("fashion_mnist" if source == "mixed" else "mnist")
        composites = {}
        for split in ("train", "validation"):
            ds = tf_mtl.data.multi_mnist(split, source=source, batch_size=100, shuffle=False)
            x = np.concatenate([b[0].numpy() for b in ds])[..., 0]
            composites[split] = np.round(x * 255).astype(np.uint8)
    left_key = {img[:8, :28].tobytes(): i for i, img in enumerate(left_src)}
    right_key = {img[20:, :].tobytes(): i for i, img in enumerate(right_src)}
    assert len(left_key) == len(right_key) == 60   # Random mock images: keys are unique.
    used = {}
    for split, canvases in composites.items():
        left = [left_key[c[:8, :28].tobytes()] for c in canvases]    # KeyError: not a source.
        right = [right_key[c[28:, 8:].tobytes()] for c in canvases]
        used[split] = (set(left), set(right))
    assert len(composites["train"]) == 50 and len(composites["validation"]) == 10
    if source == "mixed":
        assert not used["train"][0] & used["validation"][0]
        assert not used["train"][1] & used["validation"][1]
    else:
        assert not (used["train"][0] | used["train"][1]) & (used["validation"][0]
                                                            | used["validation"][1])
