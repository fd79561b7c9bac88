"""Seed statistics and tables against hand computation; seeds and workdir refusals."""

import json
import math

import pytest

from tf_mtl.experiments import results
from tf_mtl.experiments import runs


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


def test_a_non_finite_seed_is_shown_never_dropped_nor_bold(tmp_path):
    mean, se = results.mean_stderr([0.9, float("nan"), 0.8])
    assert math.isnan(mean) and math.isnan(se)
    per_seed = {0: {"left": {"accuracy": 0.90}}, 1: {"left": {"accuracy": float("nan")}}}
    md, csv_path = results.write_seed_tables(str(tmp_path), per_seed)
    assert "| left | accuracy (%) | nan (1/2 finite) |" in open(md).read()
    assert open(csv_path).read().splitlines()[1] == "left,accuracy,nan,nan,2,1"
    # The diverged method's NaN (and, for the loss, a NaN that min() would have met first)
    # is never best: the finite method is bold in both columns.
    methods = {"diverged": {0: {"t": {"accuracy": float("nan"), "loss": float("nan")}},
                            1: {"t": {"accuracy": 0.99, "loss": 0.1}}},
               "fine": {0: {"t": {"accuracy": 0.50, "loss": 0.7}},
                        1: {"t": {"accuracy": 0.60, "loss": 0.9}}}}
    md, _ = results.write_comparison(str(tmp_path), methods)
    lines = open(md).read().splitlines()
    assert lines[4] == "| diverged | nan (1/2 finite) | nan (1/2 finite) |"
    assert lines[5] == "| fine | **55.00 ± 5.00** | **0.8000 ± 0.1000** |"


def test_std_instead_of_standard_error(tmp_path):
    mean, std = results.mean_stderr([0.80, 0.90, 0.85, 0.95], spread="std")
    assert mean == pytest.approx(0.875) and std == pytest.approx(0.0645497, rel=1e-6)
    with pytest.raises(ValueError, match="Received: spread='var'"):
        results.mean_stderr([1.0], spread="var")
    per_seed = {0: {"t": {"accuracy": 0.90}}, 1: {"t": {"accuracy": 0.80}}}
    md, csv_path = results.write_seed_tables(str(tmp_path), per_seed, spread="std")
    text = open(md).read()
    # std of (0.9, 0.8) = 0.1 / sqrt(2) = 0.070711 -> 7.07 %.
    assert "mean ± standard deviation" in text and "| t | accuracy (%) | 85.00 ± 7.07 |" in text
    assert open(csv_path).read().splitlines()[0] == "task,metric,mean,std,n,n_finite"
    md, _ = results.write_comparison(str(tmp_path), {"a": per_seed}, spread="std")
    assert "mean ± standard deviation" in open(md).read()


def test_every_method_tied_with_the_best_shown_value_is_bold(tmp_path):
    # 0.912340 and 0.912344 both show as 91.23 %: both bold; 0.80 is not.
    methods = {"a": {0: {"t": {"accuracy": 0.912340}}}, "b": {0: {"t": {"accuracy": 0.80}}},
               "c": {0: {"t": {"accuracy": 0.912344}}}}
    md, _ = results.write_comparison(str(tmp_path), methods)
    assert open(md).read().splitlines()[4:7] == ["| a | **91.23** |", "| b | 80.00 |",
                                                 "| c | **91.23** |"]


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
    assert rows[0] == "task,metric,mean,stderr,n,n_finite"
    task, metric, mean, se, n, _ = rows[2].split(",")
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


def test_delta_m_column_against_a_baseline_by_hand(tmp_path):
    """Means: MTL acc 0.90, loss 0.40; UW acc 0.99, loss 0.30 (one task "t").
    LibMTL: ((0.99 - 0.90) / 0.90 + (0.40 - 0.30) / 0.40) / 2 = (0.1 + 0.25) / 2 = +17.50 %.
    Nash-MTL: -100 * the same mean over all metrics = -17.50 (positive = worse)."""
    methods = {"MTL": {0: {"t": {"accuracy": 0.90, "loss": 0.40}}},
               "UW": {0: {"t": {"accuracy": 0.99, "loss": 0.30}}}}
    md, csv_path = results.write_comparison(str(tmp_path), methods, baseline="MTL")
    lines = open(md).read().splitlines()
    assert "Δm (%) against MTL (libmtl: higher is better)" in lines[0]
    assert lines[2].endswith("| Δm (%) |")
    assert lines[4].endswith("| +0.00 |") and lines[5].endswith("| +17.50 |")
    assert open(csv_path).read().splitlines()[0].endswith(",delta_m_percent")
    nash = results.delta_m_column(methods, "MTL", "nash_mtl")
    assert nash["UW"] == pytest.approx(-17.5) and nash["MTL"] == 0.0
    swapped = results.delta_m_column(methods, "UW")  # the other baseline: MTL is worse
    assert swapped["MTL"] < 0
    with pytest.raises(ValueError, match="Received: baseline='STL'"):
        results.write_comparison(str(tmp_path), methods, baseline="STL")


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
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
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
    # Where the data is read from, and whether the heatmap is drawn, change no number.
    saved = dict(saved, data={"seed": 0, "data_dir": "", "download": True},
                 transference={"plot": True, "every": 10})
    (tmp_path / "config.json").write_text(json.dumps(saved))
    results.check_workdir(str(tmp_path), dict(
        saved, data={"seed": 0, "data_dir": "/mnt/d", "download": False, "retries": True,
                     "verify_checksums": False}, transference={"plot": False, "every": 10}))
    with pytest.raises(ValueError, match=r"\(1\): data.seed: 0 in the workdir, 1 now"):
        results.check_workdir(str(tmp_path), dict(saved, data={"seed": 1, "data_dir": "",
                                                               "download": True}))
