"""A multi-task SAC run on Meta-World from a config: iterations, evaluation, checkpoints, resume.

Each iteration (``001`` D.3): ``env_steps_per_task`` environment steps per task (600), then
``gradient_steps`` gradient steps (600) with ``batch_size`` samples per task (128); the
first ``random_iterations`` act uniformly at random (softlearning's initial exploration).
The critic steps with ``critic_rule`` (``tf_mtl.updates.build``; ``"equal"``: plain SAC,
``"itmtl"``: IT-MTL on the critic).
The critic's transference is measured every ``transference.every`` gradient steps;
evaluation (deterministic policy) every ``evaluation.every`` iterations and at the end.

Files in ``workdir``: ``progress.json`` (one entry per iteration: returns and success of
the collected episodes, losses, temperatures, transference summary, evaluation),
``checkpoint.bin`` (after every iteration: networks, optimizers, temperatures, step
counter, replay buffers; nothing else is needed, see ``tf_mtl.rl.rollouts``), the
``AffinityLogger`` files and heatmap (``tf_mtl.rl.critic_transference``), ``groups.json``,
``results.json`` and ``tensorboard/``. The same command after a kill continues from the
last completed iteration and ends where an uninterrupted run ends.
"""

import json
import os
import time

import numpy as np
import tensorflow as tf

from tf_mtl.experiments.checkpointing import atomic_write_json, read_checkpoint, write_checkpoint
from tf_mtl.rl import environments as envs
from tf_mtl.rl.critic import check_tau
from tf_mtl.rl.critic_transference import METHODS, CriticAffinity, transference_probes
from tf_mtl.rl.policy import check_hidden_units
from tf_mtl.rl.replay import FIELDS, ReplayBuffer
from tf_mtl.rl.rollouts import collect, evaluate
from tf_mtl.rl.sac import TEMPERATURES, MultiTaskSAC
from tf_mtl.updates.build import build_update

_POSITIVE = ("iterations", "env_steps_per_task", "gradient_steps", "batch_size",
             "replay_capacity", "max_episode_steps", "transference.every",
             "evaluation.every", "evaluation.episodes")


def _field(config, name):
    value = config
    for part in name.split("."):
        value = value[part]
    return value


def check_config(config):
    """``ValueError`` naming the field for values no run can mean (before anything runs)."""
    for name in _POSITIVE:
        value = _field(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`config.{name}` must be a positive int. "
                             f"Received: config.{name}={value!r}")
    if config.max_episode_steps > 500:
        raise ValueError("`config.max_episode_steps` must be at most 500 (Meta-World's limit). "
                         f"Received: config.max_episode_steps={config.max_episode_steps}")
    if config.batch_size > min(config.env_steps_per_task, config.replay_capacity):
        raise ValueError(
            "A batch larger than a task's replay buffer: the first gradient steps would "
            f"find {min(config.env_steps_per_task, config.replay_capacity)} transitions per "
            f"task. Received: config.batch_size={config.batch_size}")
    if not isinstance(config.random_iterations, int) or config.random_iterations < 0:
        raise ValueError("`config.random_iterations` must be an int >= 0. "
                         f"Received: config.random_iterations={config.random_iterations!r}")
    methods = config.transference.methods
    if not isinstance(methods, (list, tuple)) or any(m not in METHODS for m in methods) or len(
            set(methods)) != len(methods):
        raise ValueError(f"`config.transference.methods` must be distinct names from {METHODS} "
                         f"(empty: no transference). Received: "
                         f"config.transference.methods={methods!r}")
    if config.temperature not in TEMPERATURES:
        raise ValueError(f"`config.temperature` must be one of {TEMPERATURES}. "
                         f"Received: config.temperature={config.temperature!r}")
    check_tau(config.tau)
    check_hidden_units(config.hidden_units)
    for name in ("learning_rate", "reward_scale"):
        value = config[name]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"`config.{name}` must be a positive number. "
                             f"Received: config.{name}={value!r}")
    build_update(config.critic_rule)
    names = envs.check_environments(config.environments)
    splits = config.grouping.splits
    if splits is not None and (not isinstance(splits, int) or not 1 <= splits <= len(names)):
        raise ValueError(f"`config.grouping.splits` must be None or an int in [1, "
                         f"{len(names)}] (the number of tasks). Received: "
                         f"config.grouping.splits={splits!r}")


def build(config):
    """``(environments, sac, buffers)`` for ``config`` (fresh weights, empty buffers)."""
    environments = envs.make_environments(config.environments, config.seed,
                                          config.max_episode_steps)
    first = next(iter(environments.values()))
    sac = MultiTaskSAC(
        list(environments), first.observation_dim, first.action_dim,
        hidden_units=list(config.hidden_units), learning_rate=config.learning_rate,
        discount=config.discount, tau=config.tau, reward_scale=config.reward_scale,
        target_entropy=config.target_entropy, temperature=config.temperature,
        probes=transference_probes(config.transference.methods, config.transference.every),
        update=build_update(config.critic_rule), seed=config.seed)
    buffers = {t: ReplayBuffer(config.replay_capacity, first.observation_dim,
                               first.action_dim) for t in environments}
    return environments, sac, buffers


def save(path, iteration, sac, buffers):
    """``checkpoint.bin``: every state variable, then each buffer's filled arrays."""
    variables = sac.state_variables()
    metas, arrays = [], [np.asarray(v.numpy()) for v in variables]
    for buffer in buffers.values():
        meta, values = buffer.state()
        metas.append(meta)
        arrays += values
    write_checkpoint(path, {"iteration": iteration, "buffers": metas,
                            "variables": [v.path for v in variables]}, arrays)


def restore(path, sac, buffers):
    """Loads ``path`` (if it exists) into ``sac`` and ``buffers``; returns the number of
    completed iterations (0 without a checkpoint)."""
    if not os.path.exists(path):
        return 0
    meta, arrays = read_checkpoint(path)
    variables = sac.state_variables()
    if len(meta["variables"]) != len(variables) or any(
            tuple(v.shape) != a.shape for v, a in zip(variables, arrays)):
        raise ValueError(f"The checkpoint {path} was written by another configuration "
                         f"(networks or tasks differ). Received: {len(meta['variables'])} "
                         f"saved variables for {len(variables)}")
    for variable, value in zip(variables, arrays):
        variable.assign(value)
    rest = arrays[len(variables):]
    for i, (buffer, buffer_meta) in enumerate(zip(buffers.values(), meta["buffers"])):
        buffer.load_state(buffer_meta, rest[i * len(FIELDS):(i + 1) * len(FIELDS)])
    return int(meta["iteration"])


def sample_batch(buffers, batch_size, rng):
    """``{field: [m, B, ...]}``: ``batch_size`` transitions from each task's buffer."""
    batches = [buffers[t].sample(batch_size, rng) for t in buffers]
    return {k: np.stack([b[k] for b in batches]) for k in FIELDS}


def train_iteration(sac, buffers, config, iteration):
    """The iteration's gradient steps: the mean over them of the policy's and the
    temperatures' losses and of the critic's ``J_Q`` (in total and per task), and the
    temperatures at the end."""
    rng = np.random.default_rng([config.seed, iteration, 1])
    for metric in sac.critic.metrics:   # The J_Q means and the probes' (one per iteration).
        metric.reset_state()
    totals = {"policy_loss": 0.0, "temperature_loss": 0.0}
    for _ in range(config.gradient_steps):
        logs = sac.train_step(sample_batch(buffers, config.batch_size, rng))
        for key in totals:
            totals[key] += float(logs[key])
    out = {k: float(v) for k, v in logs.items()}   # critic_loss: the critic's running mean
    out.update({k: v / config.gradient_steps for k, v in totals.items()})
    out.update({m.name: float(m.result()) for m in sac.critic.task_loss_trackers})
    return out


def _number(value):
    return "n/a" if value is None else f"{value:.3g}"


def _line(entry):
    def tasks(stats, key):
        return " ".join(f"{t.removesuffix('-v3')}={_number(s[key])}" for t, s in stats.items())
    text = (f"iteration {entry['iteration'] + 1}: return [{tasks(entry['train'], 'return')}] "
            f"success [{tasks(entry['train'], 'success')}] "
            f"J_Q {entry['losses']['critic_loss']:.3g} "
            f"policy {entry['losses']['policy_loss']:.3g}")
    for name, s in entry["transference"].items():
        text += (f" | {name} self {_number(s['self'])} cross {_number(s['cross'])} "
                 f"({s['steps']:.0f} steps)")
    if "evaluation" in entry:
        text += f" | eval success [{tasks(entry['evaluation'], 'success')}]"
    return text + f" ({entry['seconds']:.1f} s)"


def _summaries(writer, entry):
    step = entry["iteration"]
    with writer.as_default():
        for part in ("train", "evaluation"):
            for task, stats in entry.get(part, {}).items():
                for key in ("return", "success"):
                    if stats[key] is not None:
                        tf.summary.scalar(f"{part}/{key}/{task}", stats[key], step=step)
        for key, value in entry["losses"].items():
            tf.summary.scalar(f"losses/{key}", value, step=step)
        for name, stats in entry["transference"].items():
            for key in ("self", "cross"):
                if stats[key] is not None:
                    tf.summary.scalar(f"{name}/{key}", stats[key], step=step)
    writer.flush()


def run(config, workdir, log=print):
    """Runs (or continues) the config's iterations in ``workdir``; returns the results."""
    check_config(config)
    os.makedirs(workdir, exist_ok=True)
    environments, sac, buffers = build(config)
    checkpoint = os.path.join(workdir, "checkpoint.bin")
    start = restore(checkpoint, sac, buffers)
    progress_path = os.path.join(workdir, "progress.json")
    progress = []
    if start and os.path.exists(progress_path):
        with open(progress_path) as f:
            progress = [e for e in json.load(f) if e["iteration"] < start]
    tensorboard = os.path.join(workdir, "tensorboard") if config.tensorboard else None
    writer = tf.summary.create_file_writer(tensorboard) if tensorboard else None
    affinity = CriticAffinity(sac.critic, workdir, start, tensorboard)
    for iteration in range(start, config.iterations):
        began = time.perf_counter()
        train = collect(sac, environments, buffers, config.env_steps_per_task, iteration,
                        config.seed, random_actions=iteration < config.random_iterations)
        affinity.begin_iteration()
        losses = train_iteration(sac, buffers, config, iteration)
        entry = {"iteration": iteration, "train": train, "losses": losses,
                 "transference": affinity.summary()}
        last = iteration == config.iterations - 1
        if last or (iteration + 1) % config.evaluation.every == 0:
            entry["evaluation"] = evaluate(sac, environments, config.evaluation.episodes,
                                           config.seed)
        affinity.end_iteration(iteration)
        entry["seconds"] = time.perf_counter() - began
        progress.append(entry)
        atomic_write_json(progress_path, progress)
        if writer is not None:
            _summaries(writer, entry)
        save(checkpoint, iteration + 1, sac, buffers)
        log(_line(entry))
    selection = affinity.finish(config.grouping.splits)
    results = {"iterations": config.iterations, "tasks": list(environments),
               "evaluation": next((e["evaluation"] for e in reversed(progress)
                                   if "evaluation" in e), None),
               "groups": [list(g) for g in selection.groups] if selection else None}
    atomic_write_json(os.path.join(workdir, "results.json"), results)
    for env in environments.values():
        env.close()
    return results
