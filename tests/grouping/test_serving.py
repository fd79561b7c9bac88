"""Train and serve a grouping (tf_mtl.grouping.serving)."""

import json

import keras
import numpy as np
import pytest

import tf_mtl
from configs import grouping_planted
from tf_mtl.grouping import serving


def _tiny_config():
    c = grouping_planted.get_config("runlocal")
    c.data.update(num_tasks=3, num_groups=2, num_examples=256)
    c.epochs = 2
    return c


def test_served_metric_equals_each_networks_loss_on_its_served_tasks(tmp_path):
    config = _tiny_config()
    # Overlapping groups: t0 trains in both, and is served from the second.
    groups = [("t0", "t2"), ("t0", "t1")]
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"groups": [list(g) for g in groups],
                                "serving": {"t0": ["t0", "t1"], "t1": ["t0", "t1"],
                                            "t2": ["t0", "t2"]}}))
    groups, serving_map, widths = serving.load_groups(str(path), ["t0", "t1", "t2"])
    assert widths == {}
    out = serving.evaluate_grouping(config, groups, str(tmp_path), serving=serving_map)
    x, labels, _ = tf_mtl.data.synthetic_arrays("test", **{
        k: v for k, v in config.data.to_dict().items() if k not in ("name", "batch_size")})
    by_hand = {}
    for group, tasks in ((("t0", "t1"), ("t0", "t1")), (("t0", "t2"), ("t2",))):
        model = keras.models.load_model(tmp_path / "networks" / "+".join(group) / "model.keras")
        pred = model.predict(x, verbose=0)
        assert sorted(pred) == sorted(group)
        by_hand.update({t: float(np.mean((pred[t] - labels[t]) ** 2)) for t in tasks})
    assert {t: m["loss"] for t, m in out["tasks"].items()} == pytest.approx(by_hand, rel=1e-4)
    assert out["tasks"]["t0"]["group"] == ["t0", "t1"]
    assert out["total_test_loss"] == pytest.approx(sum(by_hand.values()), rel=1e-4)
    assert out["encoders"] == 2 and out["trained"] == 2 and out["average_error"] is None
    assert json.load(open(tmp_path / "served.json"))["total_test_loss"] == out["total_test_loss"]


def test_average_error_and_parameters_from_network_results():
    results = {("a", "b"): {"parameters": 10, "test": {"a": {"loss": 0.5, "accuracy": 0.9},
                                                       "b": {"loss": 0.2, "accuracy": 0.6}}},
               ("b",): {"parameters": 7, "test": {"b": {"loss": 0.1, "error": 0.25}}}}
    out = serving.served_metrics(results, {"a": ("a", "b"), "b": ("b",)})
    assert out["total_test_loss"] == pytest.approx(0.6)
    assert out["average_error"] == pytest.approx(((1 - 0.9) + 0.25) / 2)
    assert (out["encoders"], out["parameters"]) == (2, 17)


@pytest.mark.parametrize("spec, message", [
    ({"groups": [["t0", "t1"]]}, r"missing \['t2'\], unknown \[\]"),
    ({"groups": [["t0", "t1"], ["t2", "t7"]]}, r"unknown \['t7'\]"),
    ({"groups": [["t0", "t1"], ["t2"]], "serving": {"t0": ["t2"], "t1": ["t0", "t1"],
                                                   "t2": ["t2"]}}, r"'t0' served by \['t2'\]"),
])
def test_groups_json_whose_tasks_differ_from_the_config(tmp_path, spec, message):
    path = tmp_path / "groups.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(ValueError, match=message):
        serving.load_groups(str(path), ["t0", "t1", "t2"])


def test_a_half_width_single_is_served_at_half_width(tmp_path):
    config = _tiny_config()
    path = tmp_path / "groups.json"
    path.write_text(json.dumps({"groups": [["t0", "t2"], ["t1"]], "widths": {"t1": 0.5}}))
    groups, serving_map, widths = serving.load_groups(str(path), ["t0", "t1", "t2"])
    assert widths == {("t1",): 0.5}
    out = serving.evaluate_grouping(config, groups, str(tmp_path), serving=serving_map,
                                    widths=widths)
    half = json.load(open(tmp_path / "networks" / "t1@w0.5" / "network.json"))
    full = json.load(open(tmp_path / "networks" / "t0+t2" / "network.json"))
    # MLP([64, 1]) at half width is MLP([32, 1]); the pair keeps 64 units.
    assert half["width"] == 0.5 and half["encoder_parameters"] == (24 * 32 + 32) + (32 + 1)
    assert full["encoder_parameters"] == (24 * 64 + 64) + (64 + 1)
    assert out["parameters"] == half["parameters"] + full["parameters"]
