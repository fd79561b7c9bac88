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
    ({"name": "cagrad", "cagrad": {"c": -1.0}}, "Received: c=-1.0"),
    ({"name": "cagrad", "cagrad": {"cc": 0.5}}, "Unknown `rule.cagrad` setting.*cc"),
    ({"name": "fairgrad", "fairgrad": {"alpha": 0.0}}, "Received: alpha=0.0"),
    ({"name": "dbmtl", "weighting": "uw"}, "Received: name='dbmtl', weighting='uncertainty'"),
    ({"name": "uw", "form": "left:classification,right"}, "Received: form='left:class"),
])
def test_bad_settings(settings, match):
    with pytest.raises(ValueError, match=match):
        build_update(settings)


CLASSES = {
    "equal": "EqualWeights", "uw": "UncertaintyWeights", "cov": "CoV", "dwa": "DWA",
    "gradnorm": "GradNorm", "rlw": "RLW", "gls": "GLS", "famo": "FAMO", "stch": "STCH",
    "pcgrad": "PCGrad", "mgda": "MGDA", "cagrad": "CAGrad", "imtl": "IMTL",
    "nash_mtl": "NashMTL", "aligned_mtl": "AlignedMTL", "upgrad": "UPGrad",
    "dualproj": "DualProj", "config": "ConFIG", "gradvac": "GradVac", "fairgrad": "FairGrad",
    "excess_mtl": "ExcessMTL", "dbmtl": "DBMTL", "moco": "MoCo", "graddrop": "GradDrop"}


def test_every_rule_name_builds_its_class_with_the_paper_defaults():
    from tf_mtl.updates import build
    assert set(build.NAMES) == set(CLASSES) | {"itmtl"}
    for name, cls in CLASSES.items():
        rule = build_update({"name": name})
        assert type(rule) is getattr(updates, cls), name
    assert build_update({"name": "cagrad"}).c == 0.4
    assert build_update({"name": "cagrad", "cagrad": {"c": 0.5}}).c == 0.5
    assert build_update({"name": "imtl", "imtl": {"mode": "gradient"}}).mode == "gradient"
    assert build_update({"name": "fairgrad", "fairgrad": {"alpha": 2.0}}).alpha == 2.0


def test_uncertainty_forms_from_a_flat_setting():
    assert build_update({"name": "uw"}).form == "regression"
    rule = build_update({"name": "uw", "form": "left:classification, right:regression"})
    assert rule.form == {"left": "classification", "right": "regression"}


def test_new_rules_compose_and_are_itmtl_candidates_by_name():
    rule = build_update({"name": "cagrad", "weighting": "famo"})
    assert isinstance(rule.weighting, updates.FAMO)
    it = build_update({"name": "itmtl", "candidates": "all,cagrad,upgrad,dbmtl,graddrop",
                       "weighting": "rlw", "cagrad": {"c": 0.2}})
    assert it.candidate_names == ["all", "cagrad", "upgrad", "dbmtl", "graddrop"]
    assert it.candidates[1].c == 0.2 and isinstance(it.weighting, updates.RLW)


def test_rules_config_has_a_variant_per_rule_and_each_checks():
    from tf_mtl.experiments import config_checks
    module = importlib.import_module("configs.multimnist_rules")
    assert set(CLASSES) - {"equal"} <= set(module.VARIANTS) and "mtl" in module.VARIANTS
    for variant in module.VARIANTS:
        c = module.get_config(f"{variant},runlocal")
        config_checks.check_config(c)
        rule = build_update(c.rule)
        expected = "ITMTL" if variant.startswith("it") else CLASSES.get(variant, "EqualWeights")
        assert type(rule).__name__ == expected, variant


def test_nested_rule_settings_are_flags():
    from absl import flags
    from ml_collections import config_flags
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    argv = ["prog", f"--config={root}/configs/quickstart.py:runlocal",
            "--config.rule.name=cagrad", "--config.rule.cagrad.c=0.7"]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config", flag_values=values, sys_argv=argv)
    values(argv)
    assert build_update(values.config.rule).c == 0.7


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
