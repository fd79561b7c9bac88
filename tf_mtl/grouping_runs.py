"""Training the networks task grouping needs: one network per task subset, and
the pair runs of the Higher-Order and Early-Stopping Approximations (``002`` §3.3).

``run_network`` trains ``config`` on a subset of its tasks into a directory and
returns what grouping needs from it: each task's validation loss (the best
epoch's, which early stopping restores), its test loss and metrics, the wall
clock it took and the model's size. The directory is finished once its
``network.json`` exists (written atomically, last); a finished directory is
read, never retrained, so an interrupted comparison resumes where it stopped.

``pair_runs`` trains every single task and every pair, writes the
``scores[task][partner]`` table the ``"hoa"`` objective reads (``hoa.json``)
and the HOA predictions for every larger group (``hoa_predictions.json``).
With ``esa=True`` the same runs last a fraction of the epochs, without early
stopping: the Early-Stopping Approximation (``002`` §3.3.1).

Config section ``config.grouping_runs`` (``defaults()``; absent means defaults):
    single_width, pair_width: encoder size factor (``config.model.width``) of the
        single-task and pair networks of the pair runs; ``002`` compares pairs
        with half-width single-task networks (0.5) for equal inference cost.
    esa_fraction: fraction of ``config.epochs`` the ESA runs train (at least one).
    metric: the served metric the comparison tabulates: ``"total_test_loss"``
        (``002`` Table 4) or ``"average_error"`` (``001`` Fig. 4 left, needs an
        accuracy metric).
"""

import itertools
import json
import os
import time

import keras
import ml_collections

from tf_mtl import checkpointing, experiment, grouping


def defaults():
    """The ``config.grouping_runs`` section with its defaults."""
    return ml_collections.ConfigDict({
        "single_width": 1.0, "pair_width": 1.0, "esa_fraction": 0.2,
        "metric": "total_test_loss"})


def options(config):
    """``config.grouping_runs`` over the defaults."""
    out = defaults()
    if "grouping_runs" in config:
        out.update(config.grouping_runs.to_dict())
    return out


write_json = checkpointing.atomic_write_json  # Absent or complete, never half written.


def read_json(path):
    with open(path) as f:
        return json.load(f)


def config_tasks(config):
    """The tasks ``config`` trains (its ``task_subset`` or every task of the dataset)."""
    if config.get("task_subset"):
        return sorted(config.task_subset)
    dataset, _ = experiment.build_dataset(config, "validation")
    return sorted(dataset.element_spec[1])


def network_name(tasks):
    """Directory name of the network trained on ``tasks``: ``t0+t3``."""
    return "+".join(sorted(tasks))


def subset_config(config, tasks, *, width=1.0, epochs=None, seed=None, early_stopping=True):
    """A copy of ``config`` that trains a plain network on ``tasks`` only."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.task_subset = tuple(sorted(tasks))
    c.model.width = float(width)
    c.transference.enabled, c.grouping.enabled = False, False
    if epochs is not None:
        c.epochs = int(epochs)
    if seed is not None:
        c.seed = int(seed)
    if not early_stopping:
        c.early_stopping_patience = 0
    return c


def _best_epoch(history, early_stopping):
    """The epoch whose weights the model ends with: the best one under early
    stopping (restored), else the last."""
    losses = history.get("val_loss")
    if not early_stopping or not losses:
        return -1
    return int(min(range(len(losses)), key=losses.__getitem__))


def _train(config, workdir, tasks):
    """Trains and tests one network: ``experiment.train`` (resumable, test metrics
    from ``tf_mtl.evaluation``), summarized for grouping."""
    start = time.monotonic()
    result = experiment.train(config, workdir)
    seconds = time.monotonic() - start
    history = result["history"]
    best = _best_epoch(history, config.early_stopping_patience)
    model = result["model"]
    return {
        "tasks": list(tasks), "width": config.model.width, "epochs": config.epochs,
        "seed": config.seed, "seconds": seconds, "epochs_run": len(history.get("loss", [])),
        "validation": {t: float(history[f"val_{t}_loss"][best]) for t in tasks},
        "test": result["test"],
        "parameters": int(model.count_params()),
        "encoder_parameters": int(model.encoder.count_params()),
    }


def run_network(config, tasks, workdir, **overrides):
    """Trains ``config`` on ``tasks`` into ``workdir`` unless already finished.

    Args:
        config: the experiment's ``ConfigDict``.
        tasks: the task subset this network is trained on.
        workdir: the run's directory; ``network.json`` marks it finished.
        **overrides: ``width``, ``epochs``, ``seed``, ``early_stopping`` (``subset_config``).

    Returns:
        The ``network.json`` dict: ``validation`` ({task: best-epoch val loss}),
        ``test`` ({task: {"loss": ..., metric: ...}}), ``seconds`` (wall clock of
        the training that produced it), ``parameters``, ``encoder_parameters``,
        and ``reused`` (True when read from an earlier run).

    Example:
        >>> r = run_network(config, ["t0", "t3"], "/tmp/g/t0+t3")
        >>> r["test"]["t0"]["loss"], r["seconds"]
    """
    path, tasks = os.path.join(workdir, "network.json"), sorted(tasks)
    run_config = subset_config(config, tasks, **overrides)
    if os.path.exists(path):
        stored = read_json(path)
        wanted = {"tasks": tasks, "width": run_config.model.width, "epochs": run_config.epochs,
                  "seed": run_config.seed}
        found = {k: stored.get(k) for k in wanted}
        if found != wanted:  # E.g. an ESA run where a full one is asked for.
            raise ValueError(f"{workdir} holds a finished run with other settings: {found}; "
                             f"asked for {wanted}. Received workdir={workdir!r}")
        return {**stored, "reused": True}
    keras.backend.clear_session()
    results = _train(run_config, workdir, tasks)
    write_json(path, results)
    return {**results, "reused": False}


def hoa_scores(single, pairs, tasks):
    """``scores[task][partner]`` from validation losses, naming what is missing.

    Args:
        single: ``{task: results}`` of the single-task runs.
        pairs: ``{(a, b): results}`` of the pair runs.
        tasks: the tasks the table must cover.
    """
    missing = [t for t in tasks if t not in single]
    missing += [network_name(p) for p in itertools.combinations(sorted(tasks), 2)
                if p not in pairs]
    if missing:
        raise ValueError(f"The HOA table over {sorted(tasks)} needs pair and single-task "
                         f"results that are missing: {missing}. Received results for "
                         f"{sorted(single)} and pairs "
                         f"{sorted(network_name(p) for p in pairs)}")
    return grouping.hoa_table({p: r["validation"] for p, r in pairs.items()},
                              {t: single[t]["validation"][t] for t in tasks})


def hoa_predictions(scores):
    """HOA predicted validation loss of each task of every group of 3+ tasks."""
    tasks = sorted(scores)
    return {network_name(g): grouping.hoa_predict(scores, g)
            for r in range(3, len(tasks) + 1) for g in itertools.combinations(tasks, r)}


def parse_shard(spec):
    """``"i/n"`` -> ``(i, n)``: worker ``i`` of ``n`` (``None`` for all runs)."""
    if not spec:
        return None
    index, sep, count = str(spec).partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
        raise ValueError(f"`shard` must look like 'i/n' with 0 <= i < n. Received: {spec!r}")
    return int(index), int(count)


def pair_runs(config, workdir, *, esa=False, seed=None, shard=None):
    """Every single task and every pair trained into ``workdir`` (resumable).

    Writes ``hoa.json`` (the ``"hoa"`` objective's input), ``hoa_predictions.json``
    and ``pairs.json`` (seconds spent, counting reused runs at their recorded time).
    ``shard=(i, n)`` trains only runs ``i, i + n, ...`` (one of ``n`` workers
    sharing ``workdir``); the tables are written once every run has finished.

    Returns ``{"scores", "predictions", "seconds", "trained", "reused"}``
    (``scores`` None while other shards' runs are missing).

    Example:
        >>> out = pair_runs(config, "/tmp/pairs")
        >>> tf_mtl.grouping.select_groups(out["scores"], 2, "hoa").groups
    """
    opts, tasks = options(config), config_tasks(config)
    epochs = max(1, int(round(opts.esa_fraction * config.epochs))) if esa else None
    common = dict(epochs=epochs, seed=seed, early_stopping=not esa)
    jobs = [((t,), f"single_{t}", opts.single_width) for t in tasks]
    jobs += [(p, "pair_" + network_name(p), opts.pair_width)
             for p in itertools.combinations(tasks, 2)]
    results = {}
    for j, (group, name, width) in enumerate(jobs):
        run_dir = os.path.join(workdir, name)
        mine = shard is None or j % shard[1] == shard[0]
        if mine or os.path.exists(os.path.join(run_dir, "network.json")):
            results[group] = run_network(config, group, run_dir, width=width, **common)
    out = {"trained": sum(not r["reused"] for r in results.values()),
           "reused": sum(r["reused"] for r in results.values()),
           "seconds": sum(r["seconds"] for r in results.values())}
    if len(results) < len(jobs):
        return {**out, "scores": None, "predictions": None}
    scores = hoa_scores({g[0]: r for g, r in results.items() if len(g) == 1},
                        {g: r for g, r in results.items() if len(g) == 2}, tasks)
    predictions = hoa_predictions(scores)
    write_json(os.path.join(workdir, "hoa.json"), scores)
    write_json(os.path.join(workdir, "hoa_predictions.json"), predictions)
    write_json(os.path.join(workdir, "pairs.json"), {
        "esa": esa, "epochs": epochs or config.epochs, "seconds": out["seconds"],
        "runs": len(jobs)})
    return {**out, "scores": scores, "predictions": predictions}
