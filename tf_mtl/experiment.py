"""Builds and runs an experiment from an ``ml_collections`` config.

Launchers (``launch/train.py``) only parse flags and call ``train``; configs
(``configs/*.py``) only return a ``ConfigDict``. Everything between lives here.

Config fields:
    seed, epochs, steps_per_epoch (None = whole dataset), verbose
    data: name ("synthetic"), batch_size, and the dataset's own arguments
    model: encoder ("mlp" | "resnet_lite" | "lenet"), encoder_kwargs,
           head_units, loss (a Keras loss name), loss_weights, per_task_gradients
    optimizer: name ("sgd" | "adam" | "adamw"), learning_rate, momentum,
               nesterov, weight_decay, halve_every_epochs (0 = constant)
    transference: enabled, order, every, method, scale_by_lr, update_heads, plot
    grouping: enabled, splits, objective — select groups from the measured
              affinities at the end (needs transference) and write groups.json
"""

import json
import os

import keras
import ml_collections

from tf_mtl import data as data_lib
from tf_mtl import encoders, grouping
from tf_mtl.callbacks import AffinityLogger
from tf_mtl.model import MultiTaskModel
from tf_mtl.transference import Transference

ENCODERS = {"mlp": encoders.MLP, "resnet_lite": encoders.ResNetLite, "lenet": encoders.LeNet}
OPTIMIZERS = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam,
              "adamw": keras.optimizers.AdamW}


def build_dataset(config, split):
    """``(dataset, extras)`` for ``split``; extras holds e.g. the planted groups."""
    kwargs = dict(config.data)
    name = kwargs.pop("name")
    if name == "synthetic":
        ds, groups = data_lib.synthetic(split, **kwargs)
        return ds, {"planted_groups": groups}
    raise ValueError(f"Unknown dataset. Received: config.data.name={name!r}; known: ['synthetic']")


def _tasks_of(dataset):
    return sorted(dataset.element_spec[1])


def build_model(config, tasks):
    m = config.model
    if m.encoder not in ENCODERS:
        raise ValueError(f"Unknown encoder. Received: config.model.encoder={m.encoder!r}; "
                         f"known: {sorted(ENCODERS)}")
    probes = []
    if config.transference.enabled:
        t = config.transference
        probes.append(Transference(order=t.order, every=t.every, method=t.method,
                                   scale_by_lr=t.scale_by_lr, update_heads=t.update_heads))
    return MultiTaskModel(
        encoder=ENCODERS[m.encoder](**dict(m.encoder_kwargs)),
        heads={t: keras.layers.Dense(m.head_units, name=f"head_{t}") for t in tasks},
        losses={t: m.loss for t in tasks},
        loss_weights=dict(m.loss_weights) if m.loss_weights else None,
        probes=probes,
        per_task_gradients=m.per_task_gradients,
    )


def build_optimizer(config, steps_per_epoch):
    o = config.optimizer
    if o.name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer. Received: config.optimizer.name={o.name!r}; "
                         f"known: {sorted(OPTIMIZERS)}")
    lr = o.learning_rate
    if o.halve_every_epochs:
        lr = keras.optimizers.schedules.ExponentialDecay(
            lr, decay_steps=o.halve_every_epochs * steps_per_epoch, decay_rate=0.5,
            staircase=True)
    kwargs = {"learning_rate": lr}
    if o.name == "sgd":
        kwargs.update(momentum=o.momentum, nesterov=o.nesterov)
    if o.weight_decay:
        kwargs["weight_decay"] = o.weight_decay
    return OPTIMIZERS[o.name](**kwargs)


def train(config, workdir):
    """Trains as ``config`` says; writes config.json, metrics.csv, model.keras
    (and affinity files when transference is enabled) to ``workdir``.

    Returns ``{"history": {...}, "files": [...], **dataset extras}``.
    """
    os.makedirs(workdir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    train_ds, extras = build_dataset(config, "train")
    val_ds, _ = build_dataset(config, "validation")
    steps = config.steps_per_epoch
    if steps:
        train_ds, val_ds = train_ds.repeat(), val_ds.take(steps)
    steps_per_epoch = steps or int(train_ds.cardinality())
    model = build_model(config, _tasks_of(train_ds))
    model.compile(optimizer=build_optimizer(config, steps_per_epoch))
    files = {name: os.path.join(workdir, name)
             for name in ("config.json", "metrics.csv", "model.keras")}
    with open(files["config.json"], "w") as f:
        f.write(config.to_json_best_effort(indent=1))
    callbacks = [keras.callbacks.CSVLogger(files["metrics.csv"])]
    if config.transference.enabled:
        callbacks.append(AffinityLogger(workdir, plot=config.transference.plot))
        files.update({n: os.path.join(workdir, n) for n in ("affinity.json",
                                                              "affinity_epochs.json")})
        if config.transference.plot:
            files["affinity.png"] = os.path.join(workdir, "affinity.png")
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs,
                        steps_per_epoch=steps, callbacks=callbacks, verbose=config.verbose)
    model.save(files["model.keras"])
    result = {"history": history.history, **extras}
    if config.transference.enabled:
        with open(files["affinity.json"]) as f:
            result["affinity"] = json.load(f)
        if config.grouping.enabled:
            chosen = grouping.select_groups_from_file(
                files["affinity.json"], splits=config.grouping.splits,
                objective=config.grouping.objective)
            result["selection"], files["groups.json"] = chosen["selection"], chosen["path"]
    result["files"] = sorted(files.values())
    return result


def base_config():
    """Defaults every config starts from (override what differs)."""
    c = ml_collections.ConfigDict()
    c.seed, c.epochs, c.steps_per_epoch, c.verbose, c.runlocal = 0, 1, 0, 2, False
    c.data = ml_collections.ConfigDict({"name": "synthetic", "batch_size": 64})
    c.model = ml_collections.ConfigDict({
        "encoder": "mlp", "encoder_kwargs": {"units": [64]}, "head_units": 1,
        "loss": "mse", "loss_weights": {}, "per_task_gradients": "loop"})
    c.optimizer = ml_collections.ConfigDict({
        "name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": False,
        "weight_decay": 0.0, "halve_every_epochs": 0})
    c.transference = ml_collections.ConfigDict({
        "enabled": False, "order": 1, "every": 10, "method": "exact",
        "scale_by_lr": False, "update_heads": False, "plot": True})
    c.grouping = ml_collections.ConfigDict({"enabled": False, "splits": 2, "objective": "tag"})
    return c
