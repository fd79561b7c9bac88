"""The update-rule configs (``001`` Tables 2 and 3) and ``build_update``."""

import importlib
import os

import pytest
import tensorflow_datasets as tfds

from tf_mtl import updates
from tf_mtl.experiments import experiment
from tf_mtl.updates import build_update


@pytest.mark.parametrize("config, variant", [
    ("multimnist_itmtl", "itmtl"),
    ("multimnist_itmtl", "mgda_ub"),
    ("multimnist_itmtl", "it_uw_pcgrad_fo"),  # movielens_itmtl runs too (17 s: its data)
])
def test_variant_runs_two_steps_on_mock_data(config, variant, tmp_path):
    c = importlib.import_module(f"configs.{config}").get_config(f"{variant},runlocal")
    assert c.runlocal and c.steps_per_epoch == 2
    c.verbose = 0
    with tfds.testing.mock_data(num_examples=48, policy=tfds.testing.MockPolicy.USE_CODE):
        result = experiment.train(c, str(tmp_path))
    assert len(result["history"]["loss"]) == 1
    assert os.path.exists(tmp_path / "model.keras")


def test_table_variants_build_the_rules_the_paper_names():
    module = importlib.import_module("configs.multimnist_itmtl")
    built = {v: build_update(module.get_config(v).rule) for v in module.VARIANTS}
    assert type(built["mtl"]) is updates.EqualWeights
    assert built["itmtl"].candidate_names == ["left", "right", "all"]
    assert built["itmtl"].lookahead == "exact" and built["itmtl"].weighting is None
    assert built["mgda_ub"].upper_bound is True
    assert isinstance(built["uw_pcgrad"].weighting, updates.UncertaintyWeights)
    it = built["it_uw_pcgrad_fo"]
    assert it.candidate_names == ["all", "pcgrad"] and it.lookahead == "first_order"
    assert isinstance(it.weighting, updates.UncertaintyWeights)
    movielens = importlib.import_module("configs.movielens_itmtl")
    assert set(movielens.VARIANTS) == {"uw_mtl", "uw_pcgrad", "it_uw_pcgrad", "it_uw_pcgrad_fo"}
    assert movielens.get_config().optimizer.epsilon == 1e-8   # D.6 kept


@pytest.mark.parametrize("name", ["equal", "uw", "cov", "dwa", "gradnorm", "pcgrad", "mgda"])
def test_quickstart_takes_every_rule_by_name(name):
    c = importlib.import_module("configs.quickstart").get_config("runlocal")
    c.rule.name = name
    model = experiment.build_model(c, ["a", "b"])
    assert type(model.update).__name__ == {
        "equal": "EqualWeights", "uw": "UncertaintyWeights", "cov": "CoV", "dwa": "DWA",
        "gradnorm": "GradNorm", "pcgrad": "PCGrad", "mgda": "MGDA"}[name]


@pytest.mark.parametrize("settings, match", [
    ({"name": "sgd"}, "Received: name='sgd'"),
    ({"name": "pcgrad", "weighting": "pcgrad"}, "Received: weighting='pcgrad'"),
    ({"name": "uw", "weighting": "cov"}, "Received: name='uw', weighting='cov'"),
    ({"name": "itmtl"}, "Received: candidates=''"),
    ({"name": "equal", "temprature": 2}, "Unknown update setting.*temprature"),
    ({"name": "dwa", "temperature": 0.0}, "Received: temperature=0.0"),
])
def test_bad_settings(settings, match):
    with pytest.raises(ValueError, match=match):
        build_update(settings)


def test_rule_is_selectable_from_the_command_line():
    from absl import flags
    from ml_collections import config_flags
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    argv = ["prog", f"--config={root}/configs/quickstart.py:runlocal",
            "--config.rule.name=itmtl", "--config.rule.candidates=all,pcgrad",
            "--config.rule.lookahead=first_order"]
    values = flags.FlagValues()
    # sys_argv: which overrides to define is read from this argv, not the test runner's.
    config_flags.DEFINE_config_file("config", None, "config", flag_values=values, sys_argv=argv)
    values(argv)
    rule = build_update(values.config.rule)
    assert rule.candidate_names == ["all", "pcgrad"] and rule.lookahead == "first_order"
