"""Every experiment config builds its model and trains two steps on mock data."""

import importlib
import os

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from absl import flags
from ml_collections import config_flags

import tf_mtl
from tf_mtl.experiments import experiment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# celeba_mr trains two steps with its routing on ResNet-lite here: the routed 8-task
# ResNet-18's first step compiles for about 40 s on a 2-core CPU, so that run is marked
# slow (`python -m pytest -m slow tests`). Every routed config's own network is built
# and runs a forward (test_routed_configs_build_and_run_a_forward).
CONFIGS = ["celeba_tag", "celeba_groups_mtl", "multimnist_mtl", "movielens_mtl", "celeba_mr"]


def _two_steps(config, tmp_path):
    config.verbose = 0
    with tfds.testing.mock_data(num_examples=48, policy=tfds.testing.MockPolicy.USE_CODE):
        return experiment.train(config, str(tmp_path))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_runs_two_steps_on_mock_data(name, tmp_path):
    config = importlib.import_module(f"configs.{name}").get_config("runlocal")
    if name == "celeba_mr":  # Same routing, data and metrics on the smaller encoder.
        routing = config.model.encoder_kwargs.routing
        config.model.encoder, config.model.encoder_kwargs = "resnet_lite", {
            "filters": 8, "routing": routing}
    assert config.runlocal and config.steps_per_epoch == 2
    result = _two_steps(config, str(tmp_path))
    assert len(result["history"]["loss"]) == 1
    assert os.path.exists(tmp_path / "model.keras")
    if config.transference.enabled:
        assert set(result["affinity"]) >= set(result["selection"].serving)


def test_full_configs_keep_the_papers_settings():
    tag = importlib.import_module("configs.celeba_tag").get_config()
    assert tag.optimizer.learning_rate == 5e-4 and tag.optimizer.momentum == 0.9
    assert tag.optimizer.halve_every_epochs == 15 and tag.early_stopping_patience == 10
    assert tag.data.batch_size == 256 and tag.transference.every == 10
    mnist = importlib.import_module("configs.multimnist_mtl").get_config()
    assert mnist.model.loss_weights.to_dict() == {"left": 0.5, "right": 0.5}
    assert mnist.optimizer.halve_every_epochs == 30
    groups = importlib.import_module("configs.celeba_groups_mtl").get_config()
    assert groups.optimizer.name == "adam" and groups.optimizer.learning_rate == 1e-4
    # The TAG code divides each step's transference by the learning rate, and the
    # probe the config builds does so.
    assert tag.transference.scale_by_lr is True
    model = experiment.build_model(tag, ["Bald", "Male"], {"Bald": (2, "mse"), "Male": (2, "mse")})
    (probe,) = model.probes
    assert (probe.scale_by_lr, probe.every, probe.method, probe.order) == (True, 10, "exact", 1)
    movielens = importlib.import_module("configs.movielens_mtl").get_config()
    assert movielens.model.encoder_kwargs.to_dict() == {
        "hidden": [50, 10], "dropout": [0.05, 0.01], "activation": "relu"}   # 001 App. D.6
    assert movielens.optimizer.name == "adam" and movielens.optimizer.epsilon == 1e-8
    assert movielens.optimizer.halve_every_epochs == 25 and movielens.epochs == 100


def test_movielens_config_builds_the_d6_encoder_and_adam_epsilon():
    config = importlib.import_module("configs.movielens_mtl").get_config()
    model = experiment.build_model(config, ["rating", "watch"],
                                   {"watch": (1, "binary_crossentropy_logits"),
                                    "rating": (1, "mse")})
    assert [(type(l).__name__, getattr(l, "units", None), getattr(l, "rate", None))
            for l in model.encoder.mlp] == [("Dense", 50, None), ("Dropout", None, 0.05),
                                            ("Dense", 10, None), ("Dropout", None, 0.01)]
    optimizer = experiment.build_optimizer(config, steps_per_epoch=10)
    assert isinstance(optimizer, keras.optimizers.Adam) and optimizer.epsilon == 1e-8


def test_optimizer_epsilon_field():
    config = experiment.base_config()
    config.optimizer.name = "adamw"
    assert config.optimizer.epsilon is None
    default = experiment.build_optimizer(config, 10).epsilon
    assert default == keras.optimizers.AdamW().epsilon == 1e-7   # None: Keras's default.
    config.optimizer.epsilon = 1e-6
    assert experiment.build_optimizer(config, 10).epsilon == 1e-6
    config.optimizer.name = "sgd"
    with pytest.raises(ValueError, match=r"epsilon.*adam.*Received: epsilon=1e-06 with name='sgd'"):
        experiment.build_optimizer(config, 10)
    config.optimizer.update(name="adam", epsilon=0.0)
    with pytest.raises(ValueError, match="Received: epsilon=0.0"):
        experiment.build_optimizer(config, 10)


def test_optimizer_epsilon_is_settable_from_a_flag():
    argv = ["prog", f"--config={ROOT}/configs/movielens_mtl.py", "--config.optimizer.epsilon=1e-6"]
    values = flags.FlagValues()
    # sys_argv: which overrides to define is read from this argv, not the test runner's.
    config_flags.DEFINE_config_file("config", None, "config", flag_values=values, sys_argv=argv)
    values(argv)
    assert values.config.optimizer.epsilon == 1e-6


def test_probe_options_from_config_fields():
    config = importlib.import_module("configs.quickstart").get_config()
    assert config.transference.chunk_size is None and config.transference.log_pairs is False
    config.transference.update(chunk_size=3, log_pairs=True)
    (probe,) = experiment.build_model(config, ["t0", "t1"]).probes
    assert probe.chunk_size == 3 and probe.log_pairs is True


def test_lookahead_execution_and_jit_compile_from_flags(tmp_path, monkeypatch):
    argv = ["prog", f"--config={ROOT}/configs/quickstart.py:runlocal",
            "--config.model.lookahead_execution=sequential", "--config.jit_compile=True"]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", None, "config", flag_values=values, sys_argv=argv)
    values(argv)
    compiled = []
    compile_ = tf_mtl.MultiTaskModel.compile
    monkeypatch.setattr(tf_mtl.MultiTaskModel, "compile", lambda self, **kw: (
        compiled.append((self, kw.get("jit_compile"))), compile_(self, **kw))[1])
    result = experiment.train(values.config, str(tmp_path))
    (model, jit_compile), = compiled
    assert jit_compile is True and model.jit_compile is True
    assert model.lookahead_execution == "sequential"
    assert result["history"]["loss"]
    assert experiment.base_config().jit_compile is None  # Keras's "auto" unless set.


def test_routed_celeba_configs_keep_003s_settings():
    mr = importlib.import_module("configs.celeba_mr").get_config()
    assert mr.optimizer.name == "adam" and mr.optimizer.learning_rate == 1e-4
    assert mr.data.batch_size == 256 and mr.data.image_size == 64 and mr.data.tasks == "mr_groups"
    routing = mr.model.encoder_kwargs.routing.to_dict()
    assert routing["sharing_ratio"] == 0.8 and routing["update_every_epochs"] == 0.1
    assert routing["completion"] == 1.0
    # Δ = 0.1 epoch of 636 steps (CelebA train at batch 256) is 64 steps.
    kwargs = experiment.routed_encoder_kwargs(mr.model.encoder_kwargs, "resnet18", 8,
                                               steps_per_epoch=636)
    assert kwargs["routing"]["update_every"] == 64 and kwargs["routing"]["num_tasks"] == 8
    assert "update_every_epochs" not in kwargs["routing"]
    for name in ("precision_logits", "recall_logits", "fscore_logits"):
        assert name in mr.metrics.all and name in experiment.METRICS
    with pytest.raises(ValueError, match="steps_per_epoch=None"):
        experiment.routed_encoder_kwargs(mr.model.encoder_kwargs, "resnet18", 8)
    for bad in (0, -0.5):
        kwargs = {"routing": {**routing, "update_every_epochs": bad}}
        with pytest.raises(ValueError, match=f"update_every_epochs.*Received: update_every_epochs={bad}"):
            experiment.routed_encoder_kwargs(kwargs, "resnet18", 8, steps_per_epoch=636)
    tr = importlib.import_module("configs.celeba_task_routing").get_config("runlocal")
    model = experiment.build_model(tr, ["a", "b"], {"a": (2, "mse"), "b": (2, "mse")})
    model.build_for(np.zeros((1, 32, 32, 3), "float32"))  # shortcut projections' masks
    layers = tf_mtl.routing.task_paths.routing_layers(model.encoder)
    assert len(layers) == 20 and all(type(l) is tf_mtl.routing.TaskRouting for l in layers)
    assert {l.num_tasks for l in layers} == {2} and {l.sharing_ratio for l in layers} == {0.9}  # 003 Table 1: TR (p = 0.9)


@pytest.mark.slow
def test_celeba_mr_trains_two_steps_on_its_routed_resnet18(tmp_path):
    config = importlib.import_module("configs.celeba_mr").get_config("runlocal")
    result = _two_steps(config, str(tmp_path))
    assert len(result["history"]["loss"]) == 1
    assert os.path.exists(tmp_path / "model.keras")


@pytest.mark.parametrize("name", ["celeba_mr", "celeba_task_routing", "celeba_etrnlp"])
def test_routed_configs_build_and_run_a_forward(name):
    config = importlib.import_module(f"configs.{name}").get_config("runlocal")
    tasks = [f"g{i}" for i in range(8)]
    model = experiment.build_model(config, tasks, {t: (2, "mse") for t in tasks},
                                   steps_per_epoch=config.steps_per_epoch)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    model.build_for(x)
    out = model(x, training=False)
    assert set(out) == set(tasks) and all(out[t].shape == (2, 2) for t in tasks)
    assert all(np.all(np.isfinite(out[t])) for t in tasks)


ALL_CONFIGS = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "configs"))
                     if f.endswith(".py") and f not in ("__init__.py", "variants.py"))


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_every_config_refuses_a_misspelt_variant(name):
    """':runloacl' must never start the full run."""
    module = importlib.import_module(f"configs.{name}")
    assert module.get_config("runlocal").runlocal
    with pytest.raises(ValueError, match="Received: 'runloacl'"):
        module.get_config("runloacl")


def test_celeba_40_measures_40_attributes_and_certifies_its_groups(tmp_path):
    """configs/celeba_40.py end to end on mock CelebA: the first-order probe's 41 rows (the
    40 attributes and all of them together), groups of the 40 by column generation with
    the certificate in groups.json, the value recomputed from affinity.json by hand."""
    import json
    import numpy as np
    config = importlib.import_module("configs.celeba_40").get_config("runlocal")
    config.grouping.time_limit = 3.0
    _two_steps(config, tmp_path)
    with open(tmp_path / "affinity.json") as f:
        affinity = json.load(f)
    singles = sorted(k for k in affinity if "|" not in k)
    assert len(affinity) == 41 and len(singles) == 40
    with open(tmp_path / "groups.json") as f:
        chosen = json.load(f)
    assert {"exact", "bound", "gap"} <= set(chosen)
    groups = [g for g in chosen["groups"]]
    assert 1 <= len(groups) <= 4 and set().union(*map(set, groups)) == set(singles)
    # TAG's value by hand: each task served by its best chosen group's mean affinity onto
    # it, averaged over the tasks (select_groups' "tag" value).
    value = np.mean([max(np.mean([affinity[s][t] for s in g if s != t])
                         for g in groups if t in g and len(g) > 1) for t in singles])
    assert chosen["value"] == pytest.approx(value, rel=1e-9, abs=1e-12)
    assert chosen["bound"] >= chosen["value"] - 1e-12
