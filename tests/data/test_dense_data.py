"""NYUv2 / Cityscapes loaders on generated releases (``tf_mtl.data.dense``, ``dense_files``,
``dense_augment``): values equal to the files, validity masks, binary classes, augmentation
against a NumPy transcription of MTAN's PyTorch transform, and every bad input."""

import itertools
import os
import pickle
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tf_mtl.data import dense, dense_augment, dense_files, dense_release

H, W = 8, 12
NYU_URL = "dropbox.com/s/p2nn02wijg7peiy/nyuv2.zip"


@pytest.fixture(scope="module")
def nyu(tmp_path_factory):
    return dense_files.write_nyuv2_like(str(tmp_path_factory.mktemp("nyu")), 5, 3, H, W, seed=1)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return dense_files.write_cityscapes_like(str(tmp_path_factory.mktemp("city")), 3, 2, H, W,
                                             seed=2)


@pytest.fixture
def nyu_copy(nyu, tmp_path):
    return shutil.copytree(nyu, str(tmp_path / "copy"))


def _files(root, split, folder, n):
    return np.stack([np.load(os.path.join(root, split, folder, f"{i}.npy")) for i in range(n)])


def _all(ds):
    """Every element of a batched ``(x, y, w)`` dataset, concatenated over batches."""
    batches = list(ds.as_numpy_iterator())
    x = np.concatenate([b[0] for b in batches])
    y = {t: np.concatenate([b[1][t] for b in batches]) for t in batches[0][1]}
    w = {t: np.concatenate([b[2][t] for b in batches]) for t in batches[0][2]}
    return x, y, w


def test_nyuv2_values_and_own_masks_equal_the_files(nyu):
    ds = dense.nyuv2(nyu, "val", batch_size=2)
    assert [b[0].shape[0] for b in ds.as_numpy_iterator()] == [2, 1]  # Uneven last batch kept.
    x, y, w = _all(ds)
    image, label = _files(nyu, "val", "image", 3), _files(nyu, "val", "label", 3)
    depth, normal = _files(nyu, "val", "depth", 3), _files(nyu, "val", "normal", 3)
    assert x.dtype == np.float32 and x.shape == (3, H, W, 3)
    np.testing.assert_array_equal(x, image)
    assert y["segmentation"].dtype == np.int32 and y["segmentation"].shape == (3, H, W)
    np.testing.assert_array_equal(y["segmentation"], label.astype(int))
    assert (label == -1).any()  # The generator writes ignore pixels, kept as -1.
    np.testing.assert_array_equal(y["depth"], depth)
    np.testing.assert_array_equal(y["normal"], normal)
    assert y["depth"].shape == (3, H, W, 1) and y["normal"].shape == (3, H, W, 3)
    np.testing.assert_array_equal(w["segmentation"], label >= 0)
    np.testing.assert_array_equal(w["depth"], depth[..., 0] != 0)
    np.testing.assert_array_equal(w["normal"], normal.sum(-1) != 0)
    assert all(v.dtype == np.float32 and v.shape == (3, H, W) for v in w.values())


def test_generated_release_is_what_the_release_holds(nyu, city):
    normal = _files(nyu, "train", "normal", 5)
    norms = np.linalg.norm(normal, axis=-1)
    assert np.allclose(norms[norms > 0], 1.0, atol=1e-5) and (norms == 0).any()
    depth = _files(nyu, "train", "depth", 5)
    assert depth.shape == (5, H, W, 1) and (depth == 0).any() and depth.max() <= 10
    assert sorted(os.listdir(os.path.join(city, "train"))) == ["depth", "image", "label_19",
                                                               "label_2", "label_7"]
    disparity = _files(city, "train", "depth", 3)
    assert disparity.max() <= 0.49 and (disparity == 0).any()
    assert _files(city, "train", "label_19", 3).max() > 6
    again = dense_files.write_nyuv2_like(os.path.join(nyu, "..", "again"), 5, 3, H, W, seed=1)
    np.testing.assert_array_equal(_files(again, "val", "normal", 3),
                                  _files(nyu, "val", "normal", 3))


def test_depth_mask_and_task_subsets(nyu):
    _, y, w = _all(dense.nyuv2(nyu, "val", mask="depth"))
    depth, normal = _files(nyu, "val", "depth", 3), _files(nyu, "val", "normal", 3)
    np.testing.assert_array_equal(w["normal"], depth[..., 0] != 0)
    assert not np.array_equal(depth[..., 0] != 0, normal.sum(-1) != 0)  # The two masks differ.
    # Normals alone still read the depth folder for their mask.
    _, y, w = _all(dense.nyuv2(nyu, "val", tasks=["normal"], mask="depth"))
    assert sorted(y) == sorted(w) == ["normal"]
    np.testing.assert_array_equal(w["normal"], depth[..., 0] != 0)
    _, y, _ = _all(dense.nyuv2(nyu, "val", tasks="depth"))
    assert sorted(y) == ["depth"]


def test_binary_classes_by_hand(nyu, city):
    _, y, w = _all(dense.nyuv2(nyu, "val", binary_classes=True))
    names = [f"class_{c:02d}" for c in range(13)]
    assert sorted(y) == names + ["depth", "normal"]  # 003's 15 NYUv2 tasks.
    label = _files(nyu, "val", "label", 3)
    for c, name in enumerate(names):
        assert y[name].shape == (3, H, W, 1) and y[name].dtype == np.float32
        np.testing.assert_array_equal(y[name][..., 0], (label == c).astype(np.float32))
        np.testing.assert_array_equal(w[name], np.ones((3, H, W)))
    ignored = label == -1
    assert all((y[n][..., 0][ignored] == 0).all() for n in names)  # Negative for every class.
    _, y, _ = _all(dense.cityscapes(city, "val", binary_classes=True))
    assert sorted(y) == [f"class_{c}" for c in range(7)] + ["depth"]  # 003's 8 tasks.
    assert dense.class_task_names(19)[:2] == ["class_00", "class_01"]


def test_cityscapes_label_folders_and_libmtl_spelling(city, tmp_path):
    for num_classes in (2, 7, 19):
        x, y, w = _all(dense.cityscapes(city, "val", num_classes))
        np.testing.assert_array_equal(y["segmentation"],
                                      _files(city, "val", f"label_{num_classes}", 2))
    np.testing.assert_array_equal(y["depth"], _files(city, "val", "depth", 2))
    np.testing.assert_array_equal(w["depth"], _files(city, "val", "depth", 2)[..., 0] != 0)
    np.testing.assert_array_equal(x, _files(city, "val", "image", 2))
    libmtl = dense_files.write_cityscapes_like(str(tmp_path / "libmtl"), 2, 2, H, W,
                                               libmtl_labels=True)
    assert "label" in os.listdir(os.path.join(libmtl, "train"))
    _, y, _ = _all(dense.cityscapes(libmtl, "train"))
    np.testing.assert_array_equal(y["segmentation"], _files(libmtl, "train", "label", 2))
    with pytest.raises(ValueError, match=r"No label_19/ folder .*'label'"):
        dense.cityscapes(libmtl, "train", num_classes=19)


def test_splits_shuffle_and_dtypes(nyu, nyu_copy):
    val = _all(dense.nyuv2(nyu, "val"))[0]
    for alias in ("validation", "test"):
        np.testing.assert_array_equal(_all(dense.nyuv2(nyu, alias))[0], val)
    files = _files(nyu, "train", "image", 5)

    def order(ds):  # Which file each example is.
        return [int(np.argmin(((files - x) ** 2).sum((1, 2, 3)))) for x in _all(ds)[0]]
    first = order(dense.nyuv2(nyu, "train", seed=3))
    assert sorted(first) == list(range(5))
    assert order(dense.nyuv2(nyu, "train", seed=3)) == first  # Same seed, same order.
    assert order(dense.nyuv2(nyu, "train", shuffle=False)) == list(range(5))
    # Integer labels and float64 arrays read as well (the release's dtypes are undocumented).
    label = np.load(os.path.join(nyu_copy, "train", "label", "0.npy"))
    np.save(os.path.join(nyu_copy, "train", "label", "0.npy"), label.astype(np.int64))
    depth = np.load(os.path.join(nyu_copy, "train", "depth", "0.npy"))
    np.save(os.path.join(nyu_copy, "train", "depth", "0.npy"), depth.astype(np.float64))
    _, y, _ = _all(dense.nyuv2(nyu_copy, "train", shuffle=False, batch_size=5))
    np.testing.assert_array_equal(y["segmentation"][0], label)
    np.testing.assert_allclose(y["depth"][0], depth)


# --- Augmentation: a NumPy transcription of MTAN's RandomScaleCrop + flip (PyTorch semantics).

def _np_nearest(x, out_h, out_w):
    """PyTorch's CPU/CUDA kernel: ``floorf(dst * scale)`` with ``scale = (float) in / out``,
    all in float32 (at 12 from 10 columns, dst 6 reads column 5: 6 * 0.8333333f rounds to 5)."""
    def index(n_in, n_out):
        scale = np.float32(n_in) / np.float32(n_out)
        src = np.floor(np.arange(n_out, dtype=np.float32) * scale)
        return np.minimum(src, n_in - 1).astype(int)
    return x[index(x.shape[0], out_h)][:, index(x.shape[1], out_w)]


def _np_bilinear(x, out_h, out_w):
    """align_corners=True: the 2-D blend of the four source neighbours of every output pixel."""
    r = np.arange(out_h)[:, None] * (x.shape[0] - 1) / (out_h - 1) * np.ones((1, out_w))
    c = np.arange(out_w)[None, :] * (x.shape[1] - 1) / (out_w - 1) * np.ones((out_h, 1))
    r0, c0 = np.floor(r).astype(int), np.floor(c).astype(int)
    r1, c1 = np.minimum(r0 + 1, x.shape[0] - 1), np.minimum(c0 + 1, x.shape[1] - 1)
    a, b = (r - r0)[..., None], (c - c0)[..., None]
    return ((1 - a) * (1 - b) * x[r0, c0] + (1 - a) * b * x[r0, c1]
            + a * (1 - b) * x[r1, c0] + a * b * x[r1, c1])


def _np_transform(ex, scale, top, left, mirrored):
    h, w = int(H / scale), int(W / scale)
    crop = {k: v[top:top + h, left:left + w] for k, v in ex.items()}
    out = {"image": _np_bilinear(crop["image"], H, W), "normal": _np_bilinear(crop["normal"], H, W),
           "label": _np_nearest(crop["label"], H, W),
           "depth": _np_nearest(crop["depth"], H, W) / scale}
    if mirrored:
        out = {k: v[:, ::-1] for k, v in out.items()}
        out["normal"] = out["normal"] * np.array([-1.0, 1.0, 1.0])
    return out


def _example(root, split, i):
    return {k: np.load(os.path.join(root, split, k, f"{i}.npy")).astype(np.float32)
            for k in ("image", "label", "depth", "normal")}


@pytest.mark.parametrize("scale,top,left", [(1.0, 0, 0), (1.2, 1, 2), (1.5, 3, 4), (1.5, 0, 0)])
def test_scale_crop_matches_mtan(nyu, scale, top, left):
    ex = _example(nyu, "train", 0)
    got = dense_augment.scale_crop({k: tf.constant(v) for k, v in ex.items()}, scale, top, left)
    want = _np_transform(ex, scale, top, left, mirrored=False)
    for k in ex:
        np.testing.assert_allclose(got[k].numpy(), want[k], atol=1e-5, err_msg=k)
    # Depth divided by the scale; nearest never blends: every value is a source value / scale.
    source = set(ex["depth"].ravel().round(4))
    assert set(np.unique(got["depth"].numpy() * scale).round(4)) <= source


def test_flip_mirrors_everything_and_negates_normal_x(nyu):
    ex = _example(nyu, "train", 1)
    got = dense_augment.flip({k: tf.constant(v) for k, v in ex.items()})
    for k in ("image", "label", "depth"):
        np.testing.assert_array_equal(got[k].numpy(), ex[k][:, ::-1])
    np.testing.assert_array_equal(got["normal"].numpy()[..., 0], -ex["normal"][:, ::-1, 0])
    np.testing.assert_array_equal(got["normal"].numpy()[..., 1:], ex["normal"][:, ::-1, 1:])


def test_crop_size_as_python_divides():
    assert [int(v) for v in dense_augment.crop_size(288, 384, 1.2)] == [240, 320]
    assert [int(v) for v in dense_augment.crop_size(128, 256, 1.5)] == [85, 170]


def _candidates(ex):
    for scale in dense_augment.SCALES:
        h, w = int(H / scale), int(W / scale)
        for top, left, mirrored in itertools.product(range(H - h + 1), range(W - w + 1), (0, 1)):
            yield (scale, top, left, mirrored), _np_transform(ex, scale, top, left, mirrored)


def test_augmented_examples_are_mtan_transforms_and_deterministic(nyu):
    ds = dense.nyuv2(nyu, "train", augment=True, shuffle=False, batch_size=5, seed=7)
    x, y, w = _all(ds)
    seen = []
    for i in range(5):
        ex = _example(nyu, "train", i)
        match = [t for t, out in _candidates(ex)
                 if np.allclose(out["image"], x[i], atol=1e-5)
                 and np.array_equal(out["label"], y["segmentation"][i])
                 and np.allclose(out["depth"], y["depth"][i], atol=1e-6)
                 and np.allclose(out["normal"], y["normal"][i], atol=1e-5)]
        assert match, f"example {i} is no scale-crop/flip of its files"
        seen.append(match[0])
        # Masks come from the augmented targets.
        np.testing.assert_array_equal(w["depth"][i], y["depth"][i][..., 0] != 0)
        np.testing.assert_array_equal(w["normal"][i], y["normal"][i].sum(-1) != 0)
    assert any(t != (1.0, 0, 0, 0) for t in seen)  # Not all identity.
    again = _all(dense.nyuv2(nyu, "train", augment=True, shuffle=False, batch_size=5, seed=7))[0]
    np.testing.assert_array_equal(again, x)  # Same seed: same augmentation.
    other = _all(dense.nyuv2(nyu, "train", augment=True, shuffle=False, batch_size=5, seed=8))[0]
    assert not np.array_equal(other, x)
    second_pass = _all(ds)[0]
    assert not np.array_equal(second_pass, x)  # A new draw each pass.


def test_cityscapes_augments_without_normals(city):
    x, y, _ = _all(dense.cityscapes(city, "train", augment=True, seed=1))
    assert x.shape == (3, H, W, 3) and y["depth"].shape == (3, H, W, 1)


# --- Bad input.

def test_bad_arguments(nyu, city):
    cases = [(dict(tasks=["segmentation", "edges"]), "tasks"), (dict(tasks=[]), "tasks"),
             (dict(mask="target"), "mask"), (dict(batch_size=0), "batch_size"),
             (dict(seed=1.5), "seed"), (dict(augment="yes"), "augment"),
             (dict(binary_classes=1), "binary_classes")]
    for kwargs, arg in cases:
        with pytest.raises(ValueError, match=rf"`{arg}`.*Received: {arg}="):
            dense.nyuv2(nyu, "train", **kwargs)
    with pytest.raises(ValueError, match=r"`split`.*Received: split='dev'"):
        dense.nyuv2(nyu, "dev")
    for num_classes in (5, 7.0, True):
        with pytest.raises(ValueError, match=r"`num_classes` must be one of \(2, 7, 19\).*"
                                             rf"Received: num_classes={num_classes!r}"):
            dense.cityscapes(city, "train", num_classes)
    with pytest.raises(ValueError, match=r"`tasks`.*Received: tasks=\['normal'\]"):
        dense.cityscapes(city, "train", tasks=["normal"])
    for kwargs in (dict(n_train=0), dict(height=1), dict(width="8")):
        with pytest.raises(ValueError, match="Received"):
            dense_files.write_nyuv2_like("/nonexistent", **kwargs)


def test_missing_root_split_and_folders(nyu_copy, tmp_path):
    with pytest.raises(ValueError, match=rf"`root`.*{NYU_URL}.*Received: root='/no/such'"):
        dense.nyuv2("/no/such", "train")
    with pytest.raises(ValueError, match=r"lorenmt/mtan.*q2333k4eyrnezbh|q2333k4eyrnezbh"):
        dense.cityscapes("/no/such", "train")
    nested = tmp_path / "outer"
    shutil.copytree(nyu_copy, str(nested / "nyuv2"))
    with pytest.raises(ValueError, match=r"No train/ folder.*one level down.*outer/nyuv2"):
        dense.nyuv2(str(nested), "train")
    shutil.rmtree(os.path.join(nyu_copy, "val"))
    with pytest.raises(ValueError, match=rf"No val/ folder.*{NYU_URL}.*split='validation'"):
        dense.nyuv2(nyu_copy, "validation")
    shutil.rmtree(os.path.join(nyu_copy, "train", "normal"))
    with pytest.raises(ValueError, match=r"No normal/ folder .*train.*\['depth', 'image', "
                                         r"'label'\]"):
        dense.nyuv2(nyu_copy, "train")
    dense.nyuv2(nyu_copy, "train", tasks=["segmentation", "depth"])  # Not needed: fine.


def test_sample_missing_a_file_and_misnamed_files(nyu_copy):
    os.remove(os.path.join(nyu_copy, "train", "depth", "3.npy"))
    with pytest.raises(ValueError, match=r"Sample 3 has no depth file: .*train/depth/3\.npy is "
                                         r"missing \(1 of 5"):
        dense.nyuv2(nyu_copy, "train")
    os.remove(os.path.join(nyu_copy, "train", "image", "2.npy"))
    with pytest.raises(ValueError, match=r"0\.npy\.\.3\.npy.*without 2\.npy"):
        dense.nyuv2(nyu_copy, "train")
    os.rename(os.path.join(nyu_copy, "val", "image", "1.npy"),
              os.path.join(nyu_copy, "val", "image", "01.npy"))
    with pytest.raises(ValueError, match=r"not named <i>\.npy: \['01'\]"):
        dense.nyuv2(nyu_copy, "val")


def _lazy(root, match, **kwargs):
    """Construction reads sample 0 only; the bad later sample fails while iterating."""
    ds = dense.nyuv2(root, "train", shuffle=False, **kwargs)
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        for _ in ds:
            pass


class _Mkdir:
    """A pickle whose loading would create a folder: code run by unpickling."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_pickles_refused_by_name(nyu_copy, tmp_path):
    marker, path = str(tmp_path / "ran"), str(tmp_path / "evil.npy")
    with open(path, "wb") as f:
        pickle.dump(_Mkdir(marker), f)
    with pytest.raises(ValueError, match=r"evil\.npy holds pickled data"):
        dense_release.read_array(path)
    assert not os.path.exists(marker)  # Refused without running it.
    label = os.path.join(nyu_copy, "train", "label", "2.npy")
    np.save(label, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _lazy(nyu_copy, r"train/label/2\.npy holds pickled data.*loading a pickle runs its code")
    with open(os.path.join(nyu_copy, "train", "image", "0.npy"), "wb") as f:
        pickle.dump(np.zeros((H, W, 3)), f)
    with pytest.raises(ValueError, match=r"train/image/0\.npy holds pickled data.*runs its code"):
        dense.nyuv2(nyu_copy, "train")


def test_unreadable_files(nyu_copy):
    with open(os.path.join(nyu_copy, "train", "depth", "0.npy"), "wb") as f:
        f.write(b"not an array")
    with pytest.raises(ValueError, match=r"train/depth/0\.npy is not a NumPy \.npy file"):
        dense.nyuv2(nyu_copy, "train")
    with open(os.path.join(nyu_copy, "train", "depth", "0.npy"), "wb") as f:
        np.savez(f, a=np.zeros(2))
    with pytest.raises(ValueError, match=r"depth/0\.npy is an \.npz archive"):
        dense.nyuv2(nyu_copy, "train")
    np.save(os.path.join(nyu_copy, "train", "depth", "0.npy"), np.full((H, W, 1), "a"))
    with pytest.raises(ValueError, match=r"depth/0\.npy must hold integers or floats.*<U1"):
        dense.nyuv2(nyu_copy, "train")


def test_labels_out_of_range(nyu_copy, city, tmp_path):
    np.save(os.path.join(nyu_copy, "train", "label", "0.npy"), np.full((H, W), 13.0))
    with pytest.raises(ValueError, match=r"label/0\.npy must hold integer labels in \[-1, 13\).*"
                                         r"Received: values \[13\.0\]"):
        dense.nyuv2(nyu_copy, "train")
    np.save(os.path.join(nyu_copy, "train", "label", "0.npy"), np.zeros((H, W)))
    np.save(os.path.join(nyu_copy, "train", "label", "4.npy"), np.full((H, W), 0.5))
    _lazy(nyu_copy, r"label/4\.npy must hold integer labels.*values \[0\.5\]")
    np.save(os.path.join(nyu_copy, "train", "label", "4.npy"), np.full((H, W), -2))
    _lazy(nyu_copy, r"label/4\.npy must hold integer labels.*values \[-2\]")
    # 19-class labels in label_7/: num_classes=7 does not match the data.
    wrong = shutil.copytree(city, str(tmp_path / "wrong"))
    shutil.rmtree(os.path.join(wrong, "train", "label_7"))
    shutil.copytree(os.path.join(wrong, "train", "label_19"),
                    os.path.join(wrong, "train", "label_7"))
    with pytest.raises(ValueError, match=r"label_7/0\.npy .*\[-1, 7\).*num_classes=7"):
        dense.cityscapes(wrong, "train", 7)


def test_wrong_shapes_and_values(nyu_copy):
    depth = os.path.join(nyu_copy, "train", "depth", "0.npy")
    np.save(depth, np.ones((H, W), np.float32))
    with pytest.raises(ValueError, match=rf"depth/0\.npy must be an array of shape \({H}, {W}, 1\)"
                                         rf".*{NYU_URL}.*Received: shape \({H}, {W}\)"):
        dense.nyuv2(nyu_copy, "train")
    np.save(depth, np.ones((H, W, 1), np.float32))
    np.save(os.path.join(nyu_copy, "train", "normal", "3.npy"), np.ones((H, W + 1, 3)))
    _lazy(nyu_copy, rf"normal/3\.npy must be an array of shape \({H}, {W}, 3\).*shape "
                    rf"\({H}, {W + 1}, 3\)")
    np.save(os.path.join(nyu_copy, "train", "normal", "3.npy"), np.ones((H, W, 3)))
    channels_first = np.ones((3, H, W))
    np.save(os.path.join(nyu_copy, "train", "image", "0.npy"), channels_first)
    with pytest.raises(ValueError, match=r"image/0\.npy must be an image of shape \[H, W, 3\] "
                                         r"\(channels last\).*Received: shape \(3, 8, 12\)"):
        dense.nyuv2(nyu_copy, "train")
    np.save(os.path.join(nyu_copy, "train", "image", "0.npy"), np.ones((H, W, 3)))
    bad = np.ones((H, W, 1))
    bad[0, 0, 0] = np.nan
    np.save(os.path.join(nyu_copy, "train", "depth", "2.npy"), bad)
    _lazy(nyu_copy, r"depth/2\.npy holds NaN or infinite values")


def test_batches_train_a_multitask_model_with_the_dense_losses(nyu):
    """The loader's (image, y, w) plugs into MultiTaskModel; w is the losses' valid-pixel mask."""
    import keras

    import tf_mtl
    from tf_mtl.dense.heads import dense_head
    from tf_mtl.dense.losses import DepthL1, NormalCosine, SegmentationCrossEntropy
    heads = {"segmentation": dense_head("segmentation", 13), "depth": dense_head("depth"),
             "normal": dense_head("normal")}
    losses = {"segmentation": SegmentationCrossEntropy(), "depth": DepthL1(),
              "normal": NormalCosine()}
    model = tf_mtl.MultiTaskModel(keras.layers.Conv2D(4, 3, padding="same"), heads, losses)
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    history = model.fit(dense.nyuv2(nyu, "train", mask="depth"), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    x, y, w = next(iter(dense.nyuv2(nyu, "val", batch_size=3, mask="depth")))
    pred = model(x)
    got = model.compute_task_losses(y, pred, w).numpy()
    depth = _files(nyu, "val", "depth", 3)
    valid = depth[..., 0] != 0  # mask="depth": the normals' mask too.
    p_depth, p_normal = pred["depth"].numpy(), pred["normal"].numpy()
    want_depth = np.abs(p_depth - depth)[..., 0][valid].mean()
    want_normal = 1 - (p_normal * _files(nyu, "val", "normal", 3)).sum(-1)[valid].mean()
    tasks = model.tasks
    np.testing.assert_allclose(got[tasks.index("depth")], want_depth, rtol=1e-5)
    np.testing.assert_allclose(got[tasks.index("normal")], want_normal, rtol=1e-5)
