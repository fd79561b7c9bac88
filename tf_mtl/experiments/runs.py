"""Runs over seeds and method comparisons, each run resumable (``tf_mtl.experiments.experiment.train``).

* ``run(config, workdir)``: ``config.seeds`` empty -> one run in ``workdir``; else one run per
  seed in ``workdir/seed_<s>/`` (``config.seed`` set to ``s``; the data's own ``seed``, hence
  the dataset, stays fixed) and ``workdir/results.md`` / ``results.csv`` (mean ± standard
  error, ``tf_mtl.experiments.results``). Finished seeds (their ``results.json`` exists) are not re-run.
* ``compare(specs, seeds, workdir)``: ``run`` for each ``"path.py[:arg]"`` config into
  ``workdir/<method>/`` and one table ``workdir/compare.md`` / ``compare.csv`` (``001``
  Table 2's layout).

Example:
    >>> config = importlib.import_module("configs.quickstart").get_config()
    >>> config.seeds = 3
    >>> out = tf_mtl.experiments.runs.run(config, "runs/quick")   # runs/quick/seed_0 .. seed_2
    >>> out["seeds"][1]["test"]["t0"]["mse"]
"""

import copy
import importlib.util
import json
import os

from tf_mtl import distribute
from tf_mtl.dense.metrics import DELTA_M_CONVENTIONS
from tf_mtl.experiments import checkpointing
from tf_mtl.experiments import experiment
from tf_mtl.experiments import config_checks
from tf_mtl.experiments import results as results_lib


def parse_seeds(seeds, base_seed=0):
    """The seed list of ``config.seeds``: None/``""`` -> None (one run); an int ``n`` >= 1
    (or ``"n"``) -> ``base_seed .. base_seed+n-1``; a list/tuple of ints (``--config.seeds=0,3,7``
    parses as a tuple), or ``"0,3,7"`` / ``"[0, 3, 7]"`` -> those seeds. Anything else is a
    ``ValueError``."""
    received = seeds
    if seeds is None or seeds == "":
        return None
    if isinstance(seeds, str):
        text = seeds.strip().strip("[]()")
        try:
            parts = [int(p) for p in text.split(",") if p.strip()]
        except ValueError:
            parts = None
        if parts is None or not parts:
            raise ValueError("`config.seeds` must be a positive int or a list of ints. "
                             f"Received: seeds={received!r}")
        seeds = parts[0] if len(parts) == 1 and "," not in seeds and "[" not in seeds else parts
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list, tuple)):
        raise ValueError("`config.seeds` must be a positive int or a list of ints. "
                         f"Received: seeds={received!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"`config.seeds` as a count must be >= 1. Received: seeds={received!r}")
        return [base_seed + i for i in range(seeds)]
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError("`config.seeds` as a list must hold ints. "
                         f"Received: seeds={received!r}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"`config.seeds` must not repeat a seed. Received: seeds={received!r}")
    return seeds


def run(config, workdir):
    """One run, or one per seed with the tables (see the module doc).

    Returns ``experiment.train``'s result for one run; with seeds,
    ``{"seeds": {seed: result}, "files": [...]}``.
    """
    seeds = parse_seeds(config.get("seeds"), config.seed)
    config_checks.check_config(config)   # Refused before any seed's directory is made.
    if seeds is None:
        return experiment.train(config, workdir)
    os.makedirs(workdir, exist_ok=True)
    config_dict = json.loads(config.to_json_best_effort())
    results_lib.check_workdir(workdir, config_dict)
    chief = distribute.is_chief_process(config.get("strategy", "default"))  # Writes the files.
    if chief:
        checkpointing.atomic_write_json(os.path.join(workdir, "config.json"), config_dict)
    per_seed = {}
    for seed in seeds:
        seed_config = copy.deepcopy(config)
        seed_config.seed, seed_config.seeds = seed, None
        per_seed[seed] = experiment.train(seed_config, os.path.join(workdir, f"seed_{seed}"))
    tables = results_lib.write_seed_tables(workdir, {s: r["test"] for s, r in per_seed.items()},
                                           config.get("table_spread", "se")) if chief else []
    return {"seeds": per_seed, "files": tables}


def load_config(spec):
    """The config of ``"path/to/config.py[:arg]"`` (as ``--config=`` reads it)."""
    path, _, arg = spec.partition(":")
    if not os.path.exists(path):
        raise ValueError(f"No config file at {path!r}. Received: {spec!r}")
    module_spec = importlib.util.spec_from_file_location(
        "_tf_mtl_config_" + os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None) if arg else module.get_config()


def method_name(spec):
    """``configs/a.py:variant,runlocal`` -> ``a:variant,runlocal``."""
    path, _, arg = spec.partition(":")
    name = os.path.basename(path)[:-3] if path.endswith(".py") else os.path.basename(path)
    return f"{name}:{arg}" if arg else name


def _tasks(config):
    tasks = config_checks.config_tasks(config)   # Known from the config: no data loaded.
    if tasks is None:
        dataset, _ = experiment.build_dataset(config, "validation")
        tasks = sorted(dataset.element_spec[1])
    return tasks


def method_dir(workdir, method):
    """``compare``'s directory of ``method`` (``quickstart:uw,runlocal`` ->
    ``workdir/quickstart-uw-runlocal``)."""
    return os.path.join(workdir, method.replace(":", "-").replace(",", "-"))


def check_same_tasks(configs):
    """Refuses ``{method: config}`` whose configs train different tasks (``compare``
    puts them in one table)."""
    tasks = {m: _tasks(c) for m, c in configs.items()}
    if len({tuple(t) for t in tasks.values()}) > 1:
        raise ValueError("launch.compare needs configs with the same tasks. Received: "
                         + "; ".join(f"{m}: {t}" for m, t in tasks.items()))


def compare_configs(specs, seeds, overrides=None):
    """``{method: config}`` of ``compare``, every config checked before any runs
    (``config_checks.check_config``, ``parse_seeds``); a field a config lacks is a
    ``ValueError``."""
    configs = {}
    for spec in specs:
        config = load_config(spec)
        for field, value in (overrides or {}).items():
            _override(config, field, value, spec)
        config.seeds = seeds
        parse_seeds(seeds, config.seed)
        config_checks.check_config(config)
        configs[method_name(spec)] = config
    return configs


def compare(specs, seeds, workdir, overrides=None, baseline=None, delta_m="libmtl"):
    """Runs every config of ``specs`` for ``seeds`` into ``workdir/<method>/`` and writes
    ``workdir/compare.md`` / ``compare.csv``. ``overrides`` ({field: value}, dotted names)
    apply to every config; a field a config lacks is a ``ValueError``. Configs whose tasks
    differ are refused before training. ``baseline`` (a method name, as the table shows it)
    adds a Δm (%) column against it (``delta_m``: ``"libmtl"`` or ``"nash_mtl"``)."""
    configs = compare_configs(specs, seeds, overrides)
    check_same_tasks(configs)
    check_baseline(configs, baseline, delta_m)
    methods = {}
    for m, config in configs.items():
        out = run(config, method_dir(workdir, m))
        methods[m] = {s: r["test"] for s, r in out["seeds"].items()}
    first = next(iter(configs.values()))
    if not distribute.is_chief_process(first.get("strategy", "default")):
        return {"methods": methods, "files": []}
    return {"methods": methods, "files": results_lib.write_comparison(
        workdir, methods, spread=first.get("table_spread", "se"), baseline=baseline,
        delta_m_convention=delta_m)}


def check_baseline(configs, baseline, delta_m):
    """Refuses a Δm baseline that is not one of the methods, or an unknown convention,
    before anything trains."""
    if baseline is not None and baseline not in configs:
        raise ValueError(f"`baseline` must be one of the compared methods {sorted(configs)}. "
                         f"Received: baseline={baseline!r}")
    if delta_m not in DELTA_M_CONVENTIONS:
        raise ValueError(f"`delta_m` must be one of {DELTA_M_CONVENTIONS}. Received: "
                         f"delta_m={delta_m!r}")


def _override(config, field, value, spec):
    """Sets the dotted ``field`` of ``config`` (one that exists) to ``value``."""
    target = config
    *parents, leaf = field.split(".")
    for depth, name in enumerate(parents + [leaf]):
        if not hasattr(target, "keys") or name not in target.keys():
            raise ValueError(f"--set names a field the config {spec!r} lacks: "
                             f"{'.'.join(parents[:depth] + [name])!r}. Received: --set={field}="
                             f"{value!r}")
        if depth < len(parents):
            target = target[name]
    target[leaf] = value
