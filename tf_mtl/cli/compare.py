r"""Run several methods over seeds and write one comparison table (``001`` Table 2's layout).

Usage:
    tf-mtl-compare --configs=FILE.py[:arg],FILE.py[:arg],... --workdir=DIR [--seeds=N|0,3,7] \
        [--set=field=value ...] [--baseline=METHOD [--delta_m=libmtl|nash_mtl]]

Example:
    tf-mtl-compare --configs=configs/multimnist_itmtl.py:mtl,configs/multimnist_itmtl.py:itmtl \
        --seeds=10 --workdir=runs/table2 [--set=epochs=3 --set=optimizer.learning_rate=0.01]
    python -m launch.compare ...    # the same, from a checkout

Each method runs into DIR/<config>[-<arg>]/seed_<s>/; re-running reuses finished seeds
and resumes killed ones. The table is DIR/compare.md (and compare.csv).
"""

import ast

from absl import flags

from tf_mtl import cli
from tf_mtl.experiments import runs

_CONFIGS = flags.DEFINE_list("configs", None, "Config files, each path.py[:arg] "
                             "(':' and ',' inside an arg: give it as path.py:a,b only last).")
_SEEDS = flags.DEFINE_string("seeds", "3", "Seeds per method: a count n or a list '0,3,7'.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the runs and the table.")
_SET = flags.DEFINE_multi_string("set", [], "field=value applied to every config "
                                 "(e.g. epochs=3, optimizer.learning_rate=0.01).")
_BASELINE = flags.DEFINE_string("baseline", None, "A method (as the table names it, e.g. "
                                "multimnist_rules:mtl) to add a Δm (%) column against.")
_DELTA_M = flags.DEFINE_enum("delta_m", "libmtl", ["libmtl", "nash_mtl"],
                             "Δm convention: LibMTL's (positive = better) or Nash-MTL's "
                             "(positive = worse).")
flags.mark_flags_as_required(["configs", "workdir"])


def _value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def specs(items):
    """Rejoins ``--configs`` items split at commas inside a config's argument:
    ``a.py:v,runlocal,b.py`` -> ``["a.py:v,runlocal", "b.py"]``."""
    out = []
    for item in items:
        if out and ".py" not in item:
            out[-1] += "," + item
        else:
            out.append(item)
    return out


def main(argv):
    del argv
    overrides = {}
    with cli.checks():
        for item in _SET.value:
            field, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set takes field=value. Received: --set={item!r}")
            overrides[field] = _value(value)
        configs = runs.compare_configs(specs(_CONFIGS.value), _SEEDS.value, overrides)
        runs.check_same_tasks(configs)
        runs.check_baseline(configs, _BASELINE.value, _DELTA_M.value)
        for method, config in configs.items():   # Each method's runs, continued or new.
            cli.check_workdir(config, runs.method_dir(_WORKDIR.value, method))
        cli.writable_dir(_WORKDIR.value)
    out = runs.compare(specs(_CONFIGS.value), _SEEDS.value, _WORKDIR.value, overrides,
                       baseline=_BASELINE.value, delta_m=_DELTA_M.value)
    with open(out["files"][0]) as f:
        print(f.read())
    print("wrote:", *out["files"], sep="\n  ")


def run():
    """Console-script entry point."""
    cli.run_command(main)
