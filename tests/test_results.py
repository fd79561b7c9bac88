"""Seed statistics and tables against hand computation; seeds and workdir refusals."""

import json
import math

import pytest

from tf_mtl import results, runs


def test_mean_and_standard_error_by_hand():
    # values 0.80, 0.90, 0.85, 0.95: mean 0.875; deviations -0.075, 0.025, -0.025, 0.075;
    # sample variance (0.005625 + 0.000625 + 0.000625 + 0.005625) / 3 = 0.0041667;
    # s.e. = sqrt(0.0041667) / sqrt(4) = 0.0322749.
    mean, se = results.mean_stderr([0.80, 0.90, 0.85, 0.95])
    assert mean == pytest.approx(0.875)
    assert se == pytest.approx(0.03227486, rel=1e-6)
    mean, se = results.mean_stderr([2.0])
    assert mean == 2.0 and math.isnan(se)
    with pytest.raises(ValueError, match="Received: \\[\\]"):
        results.mean_stderr([])


def test_seed_tables(tmp_path):
    per_seed = {0: {"left": {"loss": 0.5, "accuracy": 0.90}, "right": {"loss": 0.7, "accuracy": 0.80}},
                3: {"left": {"loss": 0.3, "accuracy": 0.92}, "right": {"loss": 0.9, "accuracy": 0.84}}}
    md, csv_path = results.write_seed_tables(str(tmp_path), per_seed)
    text = open(md).read()
    # left accuracy: mean 0.91, s.e. = |0.92 - 0.90| / 2 = 0.01 (two values: std = d / sqrt 2).
    assert "| left | accuracy (%) | 91.00 ± 1.00 |" in text
    assert "| right | loss | 0.8000 ± 0.1000 |" in text
    assert "2 seed(s) (0, 3)" in text
    rows = open(csv_path).read().splitlines()
    assert rows[0] == "task,metric,mean,stderr,n"
    task, metric, mean, se, n = rows[2].split(",")
    assert (task, metric, n) == ("left", "accuracy", "2")
    assert float(mean) == pytest.approx(0.91) and float(se) == pytest.approx(0.01)


def test_comparison_table_layout_and_bold_best(tmp_path):
    methods = {
        "MTL": {0: {"left": {"accuracy": 0.89, "loss": 0.30}, "right": {"accuracy": 0.86, "loss": 0.5}},
                1: {"left": {"accuracy": 0.91, "loss": 0.32}, "right": {"accuracy": 0.88, "loss": 0.4}}},
        "UW": {0: {"left": {"accuracy": 0.92, "loss": 0.35}, "right": {"accuracy": 0.85, "loss": 0.3}},
               1: {"left": {"accuracy": 0.94, "loss": 0.37}, "right": {"accuracy": 0.85, "loss": 0.3}}},
    }
    md, _ = results.write_comparison(str(tmp_path), methods)
    lines = open(md).read().splitlines()
    assert lines[2] == ("| method | left accuracy (%) | left loss | right accuracy (%) | "
                        "right loss |")
    # Best: accuracy highest (UW left 93, MTL right 87), loss lowest (MTL left, UW right).
    assert lines[4] == ("| MTL | 90.00 ± 1.00 | **0.3100 ± 0.0100** | **87.00 ± 1.00** | "
                        "0.4500 ± 0.0500 |")
    assert lines[5] == ("| UW | **93.00 ± 1.00** | 0.3600 ± 0.0100 | 85.00 ± 0.00 | "
                        "**0.3000 ± 0.0000** |")


@pytest.mark.parametrize("seeds, expected", [
    ("", None), (None, None), (3, [5, 6, 7]), ("3", [5, 6, 7]), ("0,3,7", [0, 3, 7]),
    ("[2, 4]", [2, 4]), ([1, 9], [1, 9]), ("4,", [4]),
])
def test_parse_seeds(seeds, expected):
    assert runs.parse_seeds(seeds, base_seed=5) == expected


def test_seeds_from_flags():
    import os
    from absl import flags
    from ml_collections import config_flags
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for flag, expected in (("10", list(range(10))), ("0,3,7", [0, 3, 7]), ("[4]", [4])):
        argv = ["prog", f"--config={root}/configs/quickstart.py", f"--config.seeds={flag}"]
        values = flags.FlagValues()
        config_flags.DEFINE_config_file("config", None, "c", flag_values=values, sys_argv=argv)
        values(argv)
        assert runs.parse_seeds(values.config.seeds, values.config.seed) == expected


@pytest.mark.parametrize("seeds, message", [
    (0, "count must be >= 1. Received: seeds=0"), (-2, "Received: seeds=-2"),
    ("abc", "positive int or a list of ints. Received: seeds='abc'"),
    (2.5, "Received: seeds=2.5"), (True, "Received: seeds=True"),
    ([1, "a"], "list must hold ints. Received: seeds=\\[1, 'a'\\]"),
    ("1,1", "must not repeat a seed. Received: seeds='1,1'"), ([], "Received: seeds=\\[\\]"),
])
def test_bad_seeds_are_refused(seeds, message):
    with pytest.raises(ValueError, match=message):
        runs.parse_seeds(seeds)


def test_a_workdir_of_another_config_is_refused(tmp_path):
    saved = {"seed": 0, "epochs": 8, "verbose": 2, "seeds": "", "optimizer": {"learning_rate": 0.02}}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    same = dict(saved, verbose=0, seeds=4)  # Output and seed count do not change a run.
    results.check_workdir(str(tmp_path), same)
    other = dict(saved, epochs=9, optimizer={"learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"different config.*\(2\): epochs: 8 in the workdir, "
                                         r"9 now; optimizer.learning_rate: 0.02 in the "
                                         r"workdir, 0.1 now"):
        results.check_workdir(str(tmp_path), other)
    results.check_workdir(str(tmp_path / "new"), other)  # A new workdir passes.
