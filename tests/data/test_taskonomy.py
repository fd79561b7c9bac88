"""tf_mtl.data.taskonomy on generated PNGs with known raw values (decoded here from the notes)."""

import os

import numpy as np
import pytest

from tf_mtl.data import taskonomy_files
from tf_mtl.data.taskonomy import building_list, mirror, taskonomy

SIZE = 4


def _raw():
    """One example's raw PNG values, asymmetric so a swapped task or a flip shows."""
    depth = np.array([[1500, 2500, 8191, 8192], [65535, 1000, 3000, 500],
                      [1500, 1501, 1502, 1503], [7000, 6000, 5000, 4000]], np.uint16)
    seg = np.arange(16, dtype=np.uint8).reshape(4, 4) % 18            # Class 0 at [0, 0].
    normal = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5
    keypoints = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 37 + 50)
    edges = (np.arange(16, dtype=np.uint16).reshape(4, 4) * 101 + 718)
    rgb = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    mask = np.array([[255, 0, 255, 255]] * 4, np.uint8)
    return {"rgb": rgb, "segment_semantic": seg, "depth_zbuffer": depth, "normal": normal,
            "keypoints2d": keypoints, "edge_texture": edges, "mask": mask}


def _write(root, raw, building="b0", point=0, skip=()):
    """The release's names: ``point_<i>_view_0_domain_<folder>.png`` in every folder."""
    for folder, array in raw.items():
        if folder not in skip:
            name = f"point_{point}_view_0_domain_{folder}.png"
            taskonomy_files.write_png(os.path.join(root, folder, building, name), array)
    return str(root)


def _first(ds):
    x, y, w = next(iter(ds))
    return x.numpy()[0], {t: v.numpy()[0] for t, v in y.items()}, {t: v.numpy()[0]
                                                                    for t, v in w.items()}


def test_each_task_decoded_from_known_raw_values(tmp_path):
    raw = _raw()
    root = _write(tmp_path, {k: v for k, v in raw.items() if k != "mask"})
    x, y, w = _first(taskonomy(root, "val", buildings=["b0"], image_size=SIZE, batch_size=1))
    np.testing.assert_allclose(x, raw["rgb"] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y["s"], raw["segment_semantic"].astype(np.int32))
    np.testing.assert_array_equal(w["s"], (raw["segment_semantic"] != 0).astype(np.float32))
    depth = raw["depth_zbuffer"].astype(np.float64)
    np.testing.assert_allclose(y["d"][..., 0], (depth - 1500) / 1000, rtol=1e-6)
    valid = (depth < 8192).astype(np.float32)        # 8191 valid, 8192 and 65535 not.
    assert valid[0].tolist() == [1, 1, 1, 0] and valid[1, 0] == 0
    np.testing.assert_array_equal(w["d"], valid)
    np.testing.assert_array_equal(w["n"], valid)     # Depth among the tasks: its mask.
    np.testing.assert_allclose(y["n"], (raw["normal"] / 255.0 - 0.5) * 2, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(y["k"][..., 0], (raw["keypoints2d"] - 50.0) / 100, rtol=1e-6)
    np.testing.assert_allclose(y["e"][..., 0], (raw["edge_texture"] - 718.0) / 1070, rtol=1e-6)
    np.testing.assert_array_equal(w["k"], np.ones((SIZE, SIZE)))
    np.testing.assert_array_equal(w["e"], np.ones((SIZE, SIZE)))


def test_an_8_bit_png_reads_its_raw_values(tmp_path):
    raw = _raw()
    raw["keypoints2d"] = (np.arange(16).reshape(4, 4) * 13 + 50).astype(np.uint8)   # 8-bit file.
    root = _write(tmp_path, raw)
    _, y, _ = _first(taskonomy(root, "val", tasks="k", buildings=["b0"], image_size=SIZE,
                               batch_size=1))
    np.testing.assert_allclose(y["k"][..., 0], (raw["keypoints2d"] - 50.0) / 100, rtol=1e-6)


def test_normals_mask_from_the_mask_folder_without_depth(tmp_path):
    raw = _raw()
    _, _, w = _first(taskonomy(_write(tmp_path / "a", raw), "val", tasks="n", buildings=["b0"],
                               image_size=SIZE, batch_size=1))
    np.testing.assert_array_equal(w["n"], (raw["mask"] > 0).astype(np.float32))
    # Without a mask folder the depth file gives it.
    _, _, w = _first(taskonomy(_write(tmp_path / "b", raw, skip=("mask",)), "val", tasks="n",
                               buildings=["b0"], image_size=SIZE, batch_size=1))
    np.testing.assert_array_equal(w["n"], (raw["depth_zbuffer"] < 8192).astype(np.float32))


def test_flip_mirrors_and_negates_normal_x(tmp_path):
    raw = _raw()
    root = _write(tmp_path, raw)
    plain = _first(taskonomy(root, "val", buildings=["b0"], image_size=SIZE, batch_size=1))
    image, y, w = mirror(*[v if i == 0 else dict(v) for i, v in enumerate(plain)])
    np.testing.assert_array_equal(image.numpy(), plain[0][:, ::-1])
    expected_n = plain[1]["n"][:, ::-1] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(y["n"].numpy(), expected_n)
    np.testing.assert_array_equal(y["d"].numpy(), plain[1]["d"][:, ::-1])
    np.testing.assert_array_equal(w["d"].numpy(), plain[2]["d"][:, ::-1])
    # Augmented reading: every draw is either the example or its mirror, and both occur.
    seen = set()
    for seed in range(8):
        x, yy, _ = _first(taskonomy(root, "train", buildings=["b0"], image_size=SIZE,
                                    batch_size=1, seed=seed))
        if np.array_equal(x, plain[0]):
            np.testing.assert_allclose(yy["n"], plain[1]["n"])
            seen.add("plain")
        else:
            np.testing.assert_array_equal(x, plain[0][:, ::-1])
            np.testing.assert_allclose(yy["n"], expected_n)
            seen.add("mirrored")
    assert seen == {"plain", "mirrored"}


def test_resized_examples_keep_classes(tmp_path):
    root = taskonomy_files.write_taskonomy_like(str(tmp_path), ["b0", "b1"], 3, size=16)
    x, y, w = next(iter(taskonomy(root, "train", buildings=["b0", "b1"], image_size=8,
                                  batch_size=6)))
    assert x.shape == (6, 8, 8, 3) and y["n"].shape == (6, 8, 8, 3) and y["s"].shape == (6, 8, 8)
    assert set(np.unique(y["s"].numpy())) <= set(range(18))


def test_missing_label_file_is_named(tmp_path):
    raw = _raw()
    root = _write(tmp_path, raw)
    _write(tmp_path, raw, point=1, skip=("edge_texture",))
    missing = os.path.join(root, "edge_texture", "b0", "point_1_view_0_domain_edge_texture.png")
    with pytest.raises(ValueError, match=f"Missing label file {missing}"):
        taskonomy(root, "val", buildings=["b0"], image_size=SIZE)
    taskonomy(root, "val", tasks="sdnk", buildings=["b0"], image_size=SIZE)   # Not asked: fine.


@pytest.mark.parametrize("kwargs, message", [
    ({"tasks": "sdx"}, "Received: tasks='sdx'"),
    ({"tasks": "ss"}, "Received: tasks='ss'"),
    ({"split": "dev"}, "Received: split='dev'"),
    ({"buildings": ["nowhere"]}, "Building 'nowhere'"),
    ({"image_size": 0}, "Received: image_size=0"),
    ({"split_source": "x", "buildings": None}, "Received: split_source='x'"),
])
def test_bad_arguments_refused(tmp_path, kwargs, message):
    root = _write(tmp_path, _raw())
    args = {"split": "val", "buildings": ["b0"], "image_size": SIZE, **kwargs}
    with pytest.raises(ValueError, match=message):
        taskonomy(root, **args)


def test_building_lists():
    tag = {s: building_list("tag", s) for s in ("train", "val", "test")}
    assert [len(tag[s]) for s in ("train", "val", "test")] == [107, 18, 17]
    assert not (set(tag["train"]) & set(tag["val"])) and not (set(tag["test"]) & set(tag["val"]))
    assert not set(tag["train"]) & set(tag["test"])
    assert len(building_list("standley", "train")) == 482
    assert building_list("standley", "test") == building_list("standley", "val")
    assert len(building_list("standley", "val")) == 52


def test_each_building_reads_its_sorted_images_within_the_range(tmp_path, monkeypatch):
    # Three points per building, told apart by their rgb; val / test read a range of each
    # building's sorted files (Standley's first and second 1000, TAG's first 1000).
    import sys
    taskonomy_module = sys.modules["tf_mtl.data.taskonomy"]   # The package exports the loader.
    for building in ("b0", "b1"):
        for point in range(3):
            raw = _raw()
            raw["rgb"] = np.full((SIZE, SIZE, 3), 40 * point + (10 if building == "b1" else 0),
                                 np.uint8)
            _write(tmp_path, raw, building=building, point=point)

    def images(**kwargs):
        ds = taskonomy(str(tmp_path), tasks="d", buildings=["b0", "b1"], image_size=SIZE,
                       batch_size=1, shuffle=False, augment=False, **kwargs)
        return [float(x.numpy().mean()) for x, _, _ in ds]

    every = images(split="train")
    assert len(every) == 6
    assert images(split="train", image_range=(1, 3)) == every[1:3] + every[4:6]
    monkeypatch.setitem(taskonomy_module.EVAL_IMAGES, "standley", {"val": (0, 1), "test": (1, 3)})
    assert images(split="test", split_source="standley") == every[1:3] + every[4:6]
    assert images(split="val", split_source="standley") == [every[0], every[3]]
    # The sorted order is the points' order: the rgb values rise within each building.
    assert every[0] < every[1] < every[2] and every[3] < every[4] < every[5]
