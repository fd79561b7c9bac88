"""Seeds into DIR/seed_<s>/ with tables, finished seeds skipped, launch.compare's table."""

import json
import os
import pytest

from tf_mtl.experiments import experiment
from tf_mtl.experiments import runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL = {"transference.enabled": False, "grouping.enabled": False, "tensorboard": False,
         "verbose": 0, "data.num_examples": 256, "data.num_tasks": 3}


def _trained(monkeypatch):
    calls = []
    original = experiment._train_and_test
    monkeypatch.setattr(experiment, "_train_and_test",
                        lambda config, workdir, files: (calls.append(config.seed),
                                                        original(config, workdir, files))[1])
    return calls


def _quickstart(arg="runlocal"):
    config = runs.load_config(f"{ROOT}/configs/quickstart.py:{arg}")
    for field, value in SMALL.items():
        *parents, leaf = field.split(".")
        target = config
        for p in parents:
            target = target[p]
        target[leaf] = value
    return config


def test_seeds_write_tables_and_finished_seeds_are_skipped(tmp_path, monkeypatch):
    calls = _trained(monkeypatch)
    config = _quickstart()
    config.seeds = 2
    out = runs.run(config, str(tmp_path))
    assert calls == [0, 1] and sorted(out["seeds"]) == [0, 1]
    for s in (0, 1):
        saved = json.loads((tmp_path / f"seed_{s}" / "results.json").read_text())
        assert saved["seed"] == s and set(saved["test"]) == {"t0", "t1", "t2"}
        assert json.loads((tmp_path / f"seed_{s}" / "config.json").read_text())["seed"] == s
    a, b = (out["seeds"][s]["test"]["t0"]["mse"] for s in (0, 1))
    assert a != b  # Other seeds, other initial weights.
    text = (tmp_path / "results.md").read_text()
    mean, se = (a + b) / 2, abs(a - b) / 2
    assert f"| t0 | mse | {mean:.4f} ± {se:.4f} |" in text
    # Three seeds on the same workdir: only the new one trains.
    config.seeds = "0,1,2"
    out = runs.run(config, str(tmp_path))
    assert calls == [0, 1, 2] and out["seeds"][0]["test"]["t0"]["mse"] == a
    assert "3 seed(s) (0, 1, 2)" in (tmp_path / "results.md").read_text()
    config.optimizer.learning_rate = 0.5
    with pytest.raises(ValueError, match="optimizer.learning_rate: 0.02 in the workdir, 0.5 now"):
        runs.run(config, str(tmp_path))


def test_compare_writes_one_table_and_reuses_finished_seeds(tmp_path, monkeypatch, capsys):
    from absl import flags
    from tf_mtl.cli import compare as cli
    argv = ["compare",
            f"--configs={ROOT}/configs/quickstart.py:mtl,runlocal,"
            f"{ROOT}/configs/quickstart.py:uw,runlocal",
            "--seeds=2", f"--workdir={tmp_path}"] + [f"--set={k}={v}" for k, v in SMALL.items()]
    flags.FLAGS(argv)  # launch.compare's flags, parsed here (a subprocess costs a TF start).
    try:
        cli.main([])
    finally:
        flags.FLAGS.unparse_flags()
    assert "| method |" in capsys.readouterr().out
    lines = (tmp_path / "compare.md").read_text().splitlines()
    assert lines[2].startswith("| method | t0 loss | t0 mse | t1 loss |")
    assert lines[4].startswith("| quickstart:mtl,runlocal | ")
    assert lines[5].startswith("| quickstart:uw,runlocal | ")
    assert sum(row.count("**") for row in lines[4:6]) == 2 * 6  # One best per column.
    for method in ("quickstart-mtl-runlocal", "quickstart-uw-runlocal"):
        for s in (0, 1):
            assert (tmp_path / method / f"seed_{s}" / "results.json").exists()
    stamp = os.path.getmtime(tmp_path / "quickstart-uw-runlocal" / "seed_1" / "results.json")
    specs = [f"{ROOT}/configs/quickstart.py:{arg},runlocal" for arg in ("mtl", "uw")]
    calls = _trained(monkeypatch)
    out = runs.compare(specs, 2, str(tmp_path), SMALL)  # The same runs: nothing trains again.
    assert calls == []
    # Which method is bold: the lower seed-mean of each column (all are losses or MSE here),
    # from the seeds' own results.json files.
    header = [c.strip() for c in lines[2].strip("|").split("|")][1:]
    rows = {m: [c.strip() for c in line.strip("|").split("|")][1:]
            for m, line in zip(out["methods"], lines[4:6])}
    for i, label in enumerate(header):
        task, metric = label.split()
        means = {m: sum(json.loads((tmp_path / m.replace(":", "-").replace(",", "-") /
                                    f"seed_{s}" / "results.json").read_text())
                        ["test"][task][metric] for s in (0, 1)) / 2 for m in out["methods"]}
        best = min(means, key=means.get)
        assert [m for m in rows if rows[m][i].startswith("**")] == [best], (label, means)
    assert os.path.getmtime(tmp_path / "quickstart-uw-runlocal" / "seed_1" /
                            "results.json") == stamp
    assert (tmp_path / "compare.md").read_text().splitlines() == lines
    # Δm against MTL from the same finished runs: the mean over tasks of the mean relative
    # decrease of each (lower-is-better) metric, in percent, recomputed from the seeds.
    with pytest.raises(ValueError, match="Received: baseline='stl'"):
        runs.compare(specs, 2, str(tmp_path), SMALL, baseline="stl")
    out = runs.compare(specs, 2, str(tmp_path), SMALL, baseline="quickstart:mtl,runlocal")
    assert calls == []
    delta_lines = (tmp_path / "compare.md").read_text().splitlines()
    assert delta_lines[2].endswith("| Δm (%) |")
    means = {m: {(t, k): sum(json.loads((tmp_path / m.replace(":", "-").replace(",", "-") /
                                         f"seed_{s}" / "results.json").read_text())
                             ["test"][t][k] for s in (0, 1)) / 2
                 for t, k in (label.split() for label in header)} for m in out["methods"]}
    base, uw = means["quickstart:mtl,runlocal"], means["quickstart:uw,runlocal"]
    by_task = {}
    for (t, k), value in uw.items():
        by_task.setdefault(t, []).append(-(value - base[(t, k)]) / base[(t, k)])
    expected = 100 * sum(sum(v) / len(v) for v in by_task.values()) / len(by_task)
    assert delta_lines[4].endswith("| +0.00 |")
    assert delta_lines[5].endswith(f"| {expected:+.2f} |")


def test_compare_refuses_configs_with_other_tasks(tmp_path):
    other = tmp_path / "fewer_tasks.py"
    other.write_text("from configs.quickstart import get_config as base\n"
                     "def get_config(arg=None):\n"
                     "    c = base(arg)\n    c.data.num_tasks = 4\n    return c\n")
    with pytest.raises(ValueError, match=r"same tasks. Received: quickstart:runlocal: "
                                         r"\['t0', .*'t5'\]; fewer_tasks:runlocal: \['t0', 't1', "
                                         r"'t2', 't3'\]"):
        runs.compare([f"{ROOT}/configs/quickstart.py:runlocal", f"{other}:runlocal"], 2,
                     str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_seeds_draw_other_routing_masks_and_rule_seeds_unless_pinned():
    import numpy as np
    import tensorflow as tf
    config = _quickstart()
    config.model.encoder_kwargs = {"units": [16], "routing": {
        "kind": "task_routing", "num_tasks": 3, "sharing_ratio": 0.5, "seed": 10}}
    config.rule.name = "pcgrad"

    def masks(seed, derive=True):
        config.seed, config.derive_seeds = seed, derive
        model = experiment.build_model(config, ["t0", "t1", "t2"])
        model.build_for(tf.TensorSpec([None, 8]))
        found = [v.numpy() for v in model.encoder.variables if v.path.endswith("masks")]
        assert len(found) == 1
        return found[0], model.update.seed

    (m0, r0), (m1, r1), (m1_pinned, r1_pinned) = masks(0), masks(1), masks(1, derive=False)
    assert not np.array_equal(m0, m1) and (r0, r1) == (0, 1)  # 003: other partitionings.
    np.testing.assert_array_equal(m0, m1_pinned)
    assert r1_pinned == 0
    kwargs, rule = experiment.seeded(config)  # (derive_seeds False from the last call)
    assert kwargs["routing"]["seed"] == 10 and rule["seed"] == 0
    config.derive_seeds, config.seed = True, 3
    kwargs, rule = experiment.seeded(config)
    assert kwargs["routing"]["seed"] == 13 and rule["seed"] == 3
    assert config.model.encoder_kwargs.routing.seed == 10  # The config is not changed.
    config.model.encoder, config.model.encoder_kwargs = "etrnlp", {"seed": 5}
    assert experiment.seeded(config)[0]["seed"] == 8  # ETR-NLP's fixed primitives too.


def test_finished_run_loads_its_model_lazily_and_needs_its_checkpoint(tmp_path, monkeypatch):
    config = _quickstart()
    experiment.train(config, str(tmp_path))
    loads = []
    original = experiment._finished_model
    monkeypatch.setattr(experiment, "_finished_model",
                        lambda *a: (loads.append(1), original(*a))[1])
    again = experiment.train(config, str(tmp_path))
    assert loads == [] and set(again["test"]) == {"t0", "t1", "t2"}
    assert again["model"].tasks == ["t0", "t1", "t2"] and loads == [1]
    os.remove(tmp_path / "checkpoint.bin")
    with pytest.raises(ValueError, match="has results.json but no checkpoint.bin"):
        experiment.train(config, str(tmp_path))


def test_compare_refuses_unknown_set_fields(tmp_path):
    with pytest.raises(ValueError, match=r"lacks: 'optimizer.learning_rat'. Received: "
                                         r"--set=optimizer.learning_rat=0.1"):
        runs.compare([f"{ROOT}/configs/quickstart.py:runlocal"], 2, str(tmp_path / "out"),
                     {"optimizer.learning_rat": 0.1})
    with pytest.raises(ValueError, match=r"lacks: 'epoch'"):
        runs.compare([f"{ROOT}/configs/quickstart.py:runlocal"], 2, str(tmp_path / "out"),
                     {"epoch": 3})
    assert not (tmp_path / "out").exists()


def test_groups_of_a_finished_run_are_read_back_not_selected_again(tmp_path, monkeypatch):
    from tf_mtl import grouping
    from tf_mtl.experiments import checkpointing
    scores = {"a": {"a": 1.0, "b": 0.5, "c": -0.2}, "b": {"a": 0.4, "b": 1.0, "c": -0.1},
              "c": {"a": -0.3, "b": -0.2, "c": 1.0}}
    (tmp_path / "affinity.json").write_text(json.dumps(scores))
    (tmp_path / "results.json").write_text(json.dumps({"test": {}}))
    (tmp_path / "metrics.csv").write_text("epoch,loss\n0,1.0\n")
    written = []
    original = checkpointing.atomic_write
    monkeypatch.setattr(checkpointing, "atomic_write",
                        lambda path, *a, **k: (written.append(os.path.basename(path)),
                                               original(path, *a, **k))[1])
    chosen = grouping.select_groups_from_file(str(tmp_path / "affinity.json"), splits=2)
    assert written == ["groups.json"]  # A temporary name, renamed.
    config = _quickstart()
    config.transference.enabled, config.grouping.enabled = True, True
    config.transference.plot, config.grouping.splits = False, 2
    monkeypatch.setattr(grouping, "select_groups_from_file",
                        lambda *a, **k: pytest.fail("selected again"))
    files = {n: str(tmp_path / n) for n in ("results.json", "metrics.csv")}
    out = experiment._outputs(config, str(tmp_path), files, finished=True)
    assert out["selection"] == chosen["selection"]
    config.grouping.splits = 3  # Another selection than the saved one: selected (again).
    with pytest.raises(pytest.fail.Exception, match="selected again"):
        experiment._outputs(config, str(tmp_path), files, finished=True)
