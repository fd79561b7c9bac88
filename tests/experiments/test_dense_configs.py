"""The dense configs (``001`` Tables 1 and 4, ``003``'s binary tasks): every variant passes the
config checks and builds; one runlocal variant per config trains two steps on a generated
release; ``launch.compare`` gives Table 1's layout with Δm; ``config.report``."""

import importlib
import os

import numpy as np
import pytest

from tf_mtl.experiments import config_checks, dense_setup, experiment, reporting, runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = ["nyuv2", "cityscapes", "nyuv2_binary", "cityscapes_binary"]
TABLE_1 = {"segmentation": ["miou", "pixel_accuracy"], "depth": ["abs_err", "rel_err"],
           "normal": ["mean", "median", "within_11.25", "within_22.5", "within_30"]}


def _module(name):
    return importlib.import_module(f"configs.{name}")


def _variants(name):
    module = _module(name)
    if hasattr(module, "VARIANTS"):
        return sorted(module.VARIANTS)
    from configs.nyuv2_binary import binary_variants
    tasks = config_checks.config_tasks(module.get_config())
    return sorted(binary_variants(tasks, 0.5, 1.5))


@pytest.mark.parametrize("name", CONFIGS)
def test_every_variant_passes_the_checks_and_builds(name):
    for variant in _variants(name):
        full = _module(name).get_config(variant)
        config_checks.check_config(full)
        local = _module(name).get_config(f"{variant},runlocal")
        config_checks.check_config(local)
        tasks = config_checks.config_tasks(local)
        spec = dense_setup.task_spec(local.data.name, experiment.loader_kwargs(local.data)[1])
        model = experiment.build_model(local, tasks, spec, steps_per_epoch=2)
        assert model.tasks == tasks, variant


def test_unknown_variants_and_arguments_are_refused():
    for name in CONFIGS:
        with pytest.raises(ValueError, match="Unknown variant"):
            _module(name).get_config("nope")
        with pytest.raises(ValueError, match="One variant at most"):
            _module(name).get_config("mtl,mr")


def test_the_papers_settings():
    table_1 = _module("nyuv2").get_config("it_pcgrad_fo")
    assert table_1.model.encoder == "segnet_mtan" and table_1.data.batch_size == 2
    assert table_1.optimizer.name == "adam" and table_1.optimizer.learning_rate == 1e-4
    assert table_1.optimizer.halve_every_epochs == 100 and table_1.epochs == 100
    assert table_1.report == "mean_last_10"
    assert table_1.rule.candidates == "all,pcgrad" and table_1.rule.lookahead == "first_order"
    assert config_checks.config_tasks(table_1) == ["depth", "normal", "segmentation"]
    table_4 = _module("cityscapes").get_config("uw_it_pcgrad_fo")
    assert table_4.data.batch_size == 8 and table_4.data.num_classes == 7
    assert table_4.rule.weighting == "uw"
    # MTAN's code: logsigma starts at -0.5; DWA averages each epoch's losses (398 steps).
    assert table_4.rule.initial_log_variance == -0.5
    assert _module("nyuv2").get_config("uw").rule.initial_log_variance == -0.5
    assert _module("nyuv2").get_config("dwa").rule.period == 398
    assert _module("nyuv2").get_config("dwa,runlocal").rule.period == 2
    binary = _module("nyuv2_binary").get_config("mr")
    assert len(config_checks.config_tasks(binary)) == 15 and binary.epochs == 500
    assert binary.model.encoder == "segnet" and binary.data.mask == "depth"
    assert binary.model.encoder_kwargs.routing.sharing_ratio == 0.8
    # Maximum Roaming's dense scripts: --update_interval 1 (epoch); saver.py's best per task,
    # validated every 5 epochs; train_gradnorm.py's default alpha 0.5 (Table 3 gives none).
    assert binary.model.encoder_kwargs.routing.update_every_epochs == 1.0
    assert binary.report == "best_per_task_every_5" and not binary.early_stopping_patience
    assert _module("nyuv2_binary").get_config("gradnorm").rule.alpha == 0.5
    assert _module("cityscapes_binary").get_config("gradnorm").rule.alpha == 1.5
    cs = _module("cityscapes_binary").get_config("tr")
    assert len(config_checks.config_tasks(cs)) == 8
    assert cs.model.encoder_kwargs.routing.sharing_ratio == 0.6
    assert _module("nyuv2_binary").get_config("stl_class_03").task_subset == ("class_03",)


def test_a_missing_release_gets_the_loaders_error(tmp_path):
    config = _module("nyuv2").get_config("mtan")
    config.data.root = str(tmp_path / "absent")
    with pytest.raises(ValueError, match=r"(?s)train,val.*dropbox.*lorenmt/mtan"):
        experiment.build_dataset(config, "train")


def test_bad_dense_settings_are_refused():
    config = _module("nyuv2").get_config("mtan")
    config.metric_conventions.segmentation = "pixels"
    with pytest.raises(ValueError, match="Received: segmentation='pixels'"):
        config_checks.check_config(config)
    config = _module("nyuv2").get_config("mtan")
    config.report = "mean_last_0"
    with pytest.raises(ValueError, match="Received: report='mean_last_0'"):
        config_checks.check_config(config)
    with pytest.raises(ValueError, match="Received: generate="):
        dense_setup.generated_root("nyuv2", {"rows": 3})
    quickstart = _module("quickstart").get_config()
    quickstart.report = "best_per_task"
    with pytest.raises(ValueError, match="dense validation metrics.*Received: report="):
        config_checks.check_config(quickstart)


@pytest.mark.parametrize("rule", [{"name": "mgda", "upper_bound": True},
                                  {"name": "imtl"},   # on="features" by default
                                  {"name": "itmtl", "candidates": "all,mgda"}])
def test_rules_on_the_encoders_output_are_refused_on_segnet_mtan(rule):
    config = _module("nyuv2").get_config("mtan")
    config.rule.update(rule)
    with pytest.raises(ValueError, match="no representation every head reads.*Received: rule="):
        config_checks.check_config(config)
    # The same rules on plain SegNet (003's runs) and MGDA on the parameters pass.
    binary = _module("nyuv2_binary").get_config("mtl")
    binary.rule.update(rule)
    config_checks.check_config(binary)
    config.rule.update({"name": "mgda", "upper_bound": False, "candidates": "all"})
    config_checks.check_config(config)


def test_report_mean_of_the_last_epochs():
    rng = np.random.default_rng(0)
    values = rng.random(13).tolist()
    history = {"val_segmentation_miou": values, "segmentation_miou": [9.0] * 13}
    test = {"segmentation": {"miou": -1.0, "pixel_accuracy": 0.5}}
    out = reporting.reported("mean_last_10", test, history)
    assert out["segmentation"]["miou"] == pytest.approx(sum(values[3:]) / 10)
    assert out["segmentation"]["pixel_accuracy"] == 0.5   # not logged: the final value
    short = reporting.reported("mean_last_20", test, history)
    assert short["segmentation"]["miou"] == pytest.approx(np.mean(values))
    assert reporting.reported("final", test, history) == test
    for bad in ("last_10", "mean_last_", "mean_last_-1", 10, "best_per_task_every_0",
                "best_per_task_5"):
        with pytest.raises(ValueError, match="Received"):
            reporting.check_report(bad)


def test_report_each_task_at_its_own_best_validated_epoch():
    nan = float("nan")
    history = {   # Validated at epochs 2 and 4 (every 2) and the last, 5; NaN elsewhere.
        "val_segmentation_miou": [nan, 0.30, nan, 0.50, 0.40],
        "val_segmentation_pixel_accuracy": [nan, 0.90, nan, 0.80, 0.95],
        "val_depth_abs_err": [nan, 0.70, nan, 0.60, 0.65],
        "val_depth_rel_err": [nan, 0.20, nan, 0.25, 0.22],   # best (lowest) at epoch 2
    }
    test = {"segmentation": {"miou": 0.0, "pixel_accuracy": 0.0},
            "depth": {"abs_err": 9.0, "rel_err": 9.0}, "class_00": {"loss": 1.0}}
    out = reporting.reported("best_per_task_every_2", test, history)
    # Each task's metrics from the epoch of its key metric's best: mIoU at epoch 4 (with
    # that epoch's 0.80 pixel accuracy, not the best 0.95); depth at epoch 2.
    assert out["segmentation"] == {"miou": 0.50, "pixel_accuracy": 0.80}
    assert out["depth"] == {"abs_err": 0.70, "rel_err": 0.20}
    assert out["class_00"] == {"loss": 1.0}   # no key metric: its final values
    assert reporting.validation_every("best_per_task") == 1
    assert reporting.validation_every("mean_last_3") is None


@pytest.mark.parametrize("name,variant", [("cityscapes", "uw_pcgrad"),
                                          ("nyuv2_binary", "mtl"),
                                          ("cityscapes_binary", "stl_depth")])
def test_runlocal_trains_two_steps_on_generated_files(name, variant, tmp_path):
    config = _module(name).get_config(f"{variant},runlocal")
    config.verbose = 0
    result = experiment.train(config, str(tmp_path))
    assert len(result["history"]["loss"]) == 1
    assert os.path.exists(tmp_path / "model.keras")
    test = result["test"]
    if variant.startswith("stl_"):
        assert set(test) == {"depth"}
    else:
        assert set(test["segmentation"]) == {"miou", "pixel_accuracy"}
        assert set(test["depth"]) == {"abs_err", "rel_err"}
    assert all(np.isfinite(v) for metrics in test.values() for v in metrics.values())
    if name == "nyuv2_binary":   # Validated at the last epoch; reported from that epoch.
        history = result["history"]
        assert test["segmentation"]["miou"] == pytest.approx(history["val_segmentation_miou"][0])
        assert test["depth"]["rel_err"] == pytest.approx(history["val_depth_rel_err"][0])


def test_compare_gives_table_1_with_delta_m(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    specs = ["configs/nyuv2.py:mtan,runlocal", "configs/nyuv2.py:pcgrad,runlocal"]
    out = runs.compare(specs, 1, str(tmp_path), baseline="nyuv2:mtan,runlocal")
    table = open(tmp_path / "compare.md").read()
    header = table.splitlines()[2]
    for task, metrics in TABLE_1.items():
        for metric in metrics:
            assert f"{task} {metric}" in header
    assert header.rstrip(" |").endswith("Δm (%)") and "loss" not in header
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[4:]}
    assert rows["nyuv2:mtan,runlocal"].rstrip(" |").endswith("+0.00")
    # The reported values are the validation metrics' mean over the (one) epoch.
    seed_dir = os.path.join(runs.method_dir(str(tmp_path), "nyuv2:pcgrad,runlocal"), "seed_0")
    history = experiment._read_history(os.path.join(seed_dir, "metrics.csv"))
    test = out["methods"]["nyuv2:pcgrad,runlocal"][0]
    assert test["depth"]["abs_err"] == pytest.approx(history["val_depth_abs_err"][-1])
