"""000's protocol: ResNet-32 widths, the report's tables from hand-made records, and the
whole :runlocal protocol (shrunk) writing every table and figure, resumed from its models."""

import csv
import math
import os

import numpy as np
import pytest

import tf_mtl
from configs import interference_mdl
from tf_mtl.interference import protocol
from tf_mtl.interference import report
from tf_mtl.interference import stats


@pytest.mark.parametrize("width, thousands", [(0.25, 29), (0.5, 116), (1.0, 463), (2.0, 1848)])
def test_resnet32_widths_have_000s_parameter_counts(width, thousands):
    encoder = tf_mtl.encoders.ResNetCifar(depth=32, width=width)
    encoder.build((None, 32, 32, 3))
    count = sum(int(np.prod(v.shape)) for v in encoder.trainable_variables)
    assert count // 1000 == thousands      # 000 §3.5: "29K, 116K, 463K, and 1848K parameters".
    assert len([l for l in tf_mtl.keras_internals.nested_layers(encoder)
                if type(l).__name__ == "GroupNormalization"]) == 31
    with pytest.raises(ValueError, match="Received: depth=30"):
        tf_mtl.encoders.ResNetCifar(depth=30)


def _record(weighting, pairing, domain, trial, pg, it, tr, width=1.0):
    return {"weighting": weighting, "width": width, "params": 100, "pairing": pairing,
            "domain": domain, "trial": trial, "perf_gain": pg, "interference": it,
            "transfer": tr, "single_accuracy": 50.0, "multi_accuracy": 50.0 + pg}


def test_report_tables_from_hand_made_records():
    records = [
        _record("uniform", "a|b", "a", 0, 1.0, 10.0, 30.0),
        _record("uniform", "a|b", "a", 1, 3.0, 20.0, float("nan")),
        _record("uniform", "a|c", "a", 0, -2.0, 40.0, 5.0),
        _record("uniform", "a|c", "a", 1, -4.0, 30.0, 7.0),
        _record("cov", "a|b", "a", 0, 2.0, 12.0, 31.0),
        _record("cov", "a|b", "a", 1, 5.0, 21.0, 33.0),
        _record("cov", "a|c", "a", 0, -1.0, 35.0, 6.0),
        _record("cov", "a|c", "a", 1, -4.5, 30.0, 9.0),
    ]
    results = report._aggregate(records, ("weighting", "pairing", "domain"),
                                             ("perf_gain", "transfer"))
    row = [r for r in results if (r["weighting"], r["pairing"]) == ("uniform", "a|b")][0]
    assert (row["perf_gain"], row["perf_gain_se"]) == pytest.approx((2.0, 1.0))  # sd sqrt(2)/sqrt(2)
    assert (row["transfer"], row["transfer_n"]) == (30.0, 1) and math.isnan(row["transfer_se"])
    tests = report.ttests(records, ["uniform", "cov"])
    pg = [t for t in tests if t["metric"] == "perf_gain"][0]
    # Pairs in (pairing, domain, trial) order: (a|b,0), (a|b,1), (a|c,0), (a|c,1).
    d = np.array([1 - 2, 3 - 5, -2 + 1, -4 + 4.5])
    assert pg["n"] == 4 and pg["t"] == pytest.approx(d.mean() / (d.std(ddof=1) / 2))
    assert [t["n"] for t in tests if t["metric"] == "transfer"] == [3]   # The NaN pair dropped.
    similarity = [{"width": 1.0, "params": 100, "pairing": p, "trial": t, "cka": v}
                  for p, t, v in [("a|b", 0, 0.2), ("a|b", 1, 0.3), ("a|c", 0, 0.6),
                                  ("a|c", 1, 0.5), ("b|c", 0, 0.1), ("b|c", 1, 0.1)]]
    diffs = report.similarity_differences(records, similarity)
    uniform = [r for r in diffs if r["weighting"] == "uniform"][0]
    assert (uniform["more_similar"], uniform["less_similar"]) == ("a|c", "a|b")
    assert uniform["transfer_difference"] == pytest.approx(6.0 - 30.0)
    assert uniform["interference_difference"] == pytest.approx(35.0 - 15.0)
    assert len(diffs) == 2       # Only domain a is in two pairings.
    table = report.markdown(results[:1], ["pairing", "perf_gain"])
    assert table.splitlines()[2] == "| a\\|b | 2.00 ± 1.00 |"


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_runlocal_protocol_writes_every_table_and_figure_and_resumes(tmp_path):
    config = interference_mdl.get_config("runlocal")
    # Smaller still: one width, two weightings, the two pairings of domain "a" (the least
    # that has every table: standard errors, t-tests, a domain in two pairings), 1 epoch.
    config.widths, config.weightings, config.pairings = [0.5], ["uniform", "cov"], "a|b,a|c"
    config.model.units = [16]
    config.single.epochs, config.multi.epochs, config.batch_size = 1, 1, 64
    for spec in config.domains.values():
        spec.num_train, spec.num_test = 64, 32
    config.trials, config.figures = 1, False
    first = protocol.run(config, str(tmp_path))
    assert len(first["trained"]) == 3 + 4 and not first["loaded"]
    config.trials, config.figures = 2, True
    second = protocol.run(config, str(tmp_path))
    assert len(second["loaded"]) == 7 and sorted(second["loaded"]) == sorted(first["trained"])
    assert len(second["trained"]) == 7 and all(n.endswith("_t1") for n in second["trained"])
    # The reused models answer as when they were trained.
    again = [r for r in second["records"] if r["trial"] == 0]
    assert [r["multi_accuracy"] for r in again] == [r["multi_accuracy"] for r in first["records"]]
    names = {os.path.basename(p) for p in second["files"]}
    assert names == {"records.csv", "results.csv", "summary.csv", "ttests.csv", "similarity.csv",
                     "similarity_differences.csv", "results.md", "fig2_metrics_vs_params.png",
                     "fig3_a.png", "fig3_b.png", "fig3_c.png", "fig4_transfer_vs_interference.png",
                     "fig6_similarity_differences.png"}
    for path in second["files"]:
        assert os.path.getsize(path) > 0
    records = _read(tmp_path / "records.csv")
    assert len(records) == 2 * 2 * 2 * 2          # weightings x pairings x domains x trials
    for r in records:   # Each row's metrics agree with its accuracies (000 Eq. 2).
        assert float(r["perf_gain"]) == pytest.approx(
            float(r["multi_accuracy"]) - float(r["single_accuracy"]))
    assert len(_read(tmp_path / "ttests.csv")) == 3 and len(_read(tmp_path / "similarity.csv")) == 3
    assert len(_read(tmp_path / "similarity_differences.csv")) == 2
    results = _read(tmp_path / "results.csv")
    row = [r for r in results if (r["weighting"], r["pairing"], r["domain"]) == ("cov", "a|b", "b")][0]
    values = [float(r["transfer"]) for r in records
              if (r["weighting"], r["pairing"], r["domain"]) == ("cov", "a|b", "b")]
    mean, se, n = stats.mean_se(values)
    assert int(row["transfer_n"]) == n and (n == 0 or float(row["transfer"]) == pytest.approx(mean))
    assert "## Paired t-tests" in (tmp_path / "results.md").read_text()


def test_protocol_bad_config(tmp_path):
    config = interference_mdl.get_config("runlocal")
    config.weightings = ["uniform", "gradnorm"]
    with pytest.raises(ValueError, match=r"`config.weightings`.*Received: \['uniform', 'gradnorm'\]"):
        protocol.run(config, str(tmp_path))
    config = interference_mdl.get_config("runlocal")
    config.pairings = "a|z"
    with pytest.raises(ValueError, match="Received: config.pairings='a|z'"):
        protocol.run(config, str(tmp_path))
    config = interference_mdl.get_config()
    with pytest.raises(ValueError, match="--config.domains.miniplaces.train_root"):
        protocol.domain_data("miniplaces", config.domains.miniplaces)


def test_full_config_keeps_000s_settings():
    c = interference_mdl.get_config()
    assert list(c.widths) == [0.25, 0.5, 1.0, 2.0] and c.trials == 3
    assert list(c.weightings) == ["uniform", "uw", "cov"] and c.pairings == ""
    assert sorted(c.domains) == ["cifar100", "miniplaces", "tiny_imagenet"]
    assert (c.model.encoder, c.model.depth, c.model.norm, c.model.activation) == (
        "resnet_cifar", 32, "group", "mish")
    assert (c.batch_size, c.optimizer.learning_rate, c.optimizer.momentum,
            c.optimizer.weight_decay) == (128, 0.1, 0.9, 1e-4)
    assert (c.single.epochs, list(c.single.boundaries)) == (250, [140, 210])
    assert (c.multi.epochs, list(c.multi.boundaries)) == (300, [150, 250])
    assert c.domains.miniplaces.train_per_class == 500 and c.probe_per_class == 50
    assert c.domains.tiny_imagenet.num_classes == 100
    pairs = protocol.pairings_of(c, sorted(c.domains))
    assert len(pairs) == 3 and 3 * 4 * 3 * len(pairs) == 108     # 000 §4: 108 MDL models.


def test_full_config_domains_reach_their_loaders(tmp_path):
    """000's domain specs, pointed at mock CIFAR-100 and a tiny folder in Tiny-ImageNet's layout."""
    import tensorflow as tf
    import tensorflow_datasets as tfds
    c = interference_mdl.get_config()
    for split, n in (("train", 2), ("val", 1)):
        for wnid, value in (("n01", 30), ("n02", 220)):
            folder = tmp_path / split / (wnid if split == "train" else "images")
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                tf.io.write_file(str(folder / f"{wnid}_{i}.png"),
                                 tf.io.encode_png(np.full((64, 64, 3), value, np.uint8)))
    (tmp_path / "val" / "ann.txt").write_text("n02_0.png n02 0 0 1 1\nn01_0.png n01 0 0 1 1\n")
    spec = c.domains.tiny_imagenet
    spec.update(train_root=str(tmp_path / "train"), test_root=str(tmp_path / "val" / "images"),
                test_labels=str(tmp_path / "val" / "ann.txt"), num_classes=2)
    train, test = protocol.domain_data("tiny_imagenet", spec)
    assert [int(y) for _, y in train] == [0, 0, 1, 1] and [int(y) for _, y in test] == [0, 1]
    assert next(iter(test))[0].shape == (32, 32, 3)           # 000: resized to 32x32.
    with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
        train, test = protocol.domain_data("cifar100", c.domains.cifar100)
        assert next(iter(train))[0].shape == (32, 32, 3) and len(list(test)) == 4


def _tiny(config):
    config.widths, config.weightings, config.pairings = [0.5], ["uniform", "cov"], "a|b"
    config.model.units, config.trials, config.figures = [8], 1, False
    config.single.epochs, config.multi.epochs, config.batch_size = 1, 1, 32
    for spec in config.domains.values():
        spec.num_train, spec.num_test = 32, 16
    return config


def test_weightings_share_an_initialization_and_resume_refuses_other_settings(tmp_path):
    import keras
    config = _tiny(interference_mdl.get_config("runlocal"))
    config.optimizer.learning_rate, config.optimizer.weight_decay = 0.0, 0.0   # Init stays.
    protocol.run(config, str(tmp_path))
    load = lambda w: keras.models.load_model(str(tmp_path / "models" / f"mdl_a+b_{w}_w0.5_t0.keras"),
                                             compile=False)
    uniform, cov = load("uniform"), load("cov")
    for got, want in zip(cov.shared_variables + cov.head_variables,
                         uniform.shared_variables + uniform.head_variables):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    # A saved model is reused only under the settings it was trained with.
    config.single.epochs = 2
    with pytest.raises(ValueError, match=r"other settings \(schedule.epochs: saved 1, config 2"):
        protocol.run(config, str(tmp_path))
    config.single.epochs, config.model.units = 1, [16]
    with pytest.raises(ValueError, match=r"Received: differing settings \['model.units'\]"):
        protocol.run(config, str(tmp_path))
    config.model.units = [8]
    assert len(protocol.run(config, str(tmp_path))["loaded"]) == 3 + 2
