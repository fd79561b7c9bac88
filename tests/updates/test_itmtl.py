import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.updates import ITMTL, PCGrad, UncertaintyWeights

TASKS = ["a", "b", "c"]


def _model(update, optimizer, tasks=TASKS, seed=0):
    keras.utils.set_random_seed(seed)
    # No bias before BatchNorm: its gradient is rounding noise, which Adam would amplify.
    enc = keras.Sequential([keras.layers.Dense(8, use_bias=False), keras.layers.BatchNormalization(),
                            keras.layers.ReLU(), keras.layers.Dense(4, activation="tanh")])
    model = tf_mtl.MultiTaskModel(enc, {t: keras.layers.Dense(1) for t in tasks},
                                  {t: "mse" for t in tasks}, update=update)
    model.compile(optimizer=optimizer)
    return model


def _batch(seed=1, tasks=TASKS, n=16):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype("float32")
    return x, {t: rng.standard_normal((n, 1)).astype("float32") for t in tasks}


def _losses(model, x, y):
    pred = model(x, training=True)
    return np.array([float(keras.losses.MeanSquaredError()(y[t], pred[t])) for t in model.tasks])


def _task_gradients(model, x, y):
    """Each task's shared gradient on a copy, as numpy arrays per variable."""
    clone, _ = copy_model(model, x)
    with tf.GradientTape(persistent=True) as tape:
        pred = clone(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in clone.tasks]
    return [[g.numpy() for g in tape.gradient(l, clone.shared_variables)] for l in losses]


def _pcgrad(grads, order):
    """Yu et al. Alg. 1 on flattened gradients: projections against the original ones, summed."""
    flat = [np.concatenate([g.ravel() for g in gs]).astype(np.float64) for gs in grads]
    total = 0
    for i, g in enumerate(flat):
        pc = g.copy()
        for j in order:
            if j != i and pc @ flat[j] < 0:
                pc = pc - (pc @ flat[j]) / (flat[j] @ flat[j]) * flat[j]
        total = total + pc
    out, start = [], 0
    for g in grads[0]:
        out.append(total[start:start + g.size].reshape(g.shape).astype(np.float32))
        start += g.size
    return out


def _stepped(model, x, y, grads):
    """Really steps a copy's encoder (and optimizer) along ``grads``: (before, after, weights)."""
    clone, opt = copy_model(model, x)
    before = _losses(clone, x, y)
    opt.apply([tf.constant(g) for g in grads], clone.shared_variables)
    return before, _losses(clone, x, y), [v.numpy() for v in clone.shared_variables]


@pytest.mark.parametrize("optimizer", [
    lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    lambda: keras.optimizers.Adam(0.01),
], ids=["momentum", "adam"])
def test_scores_are_total_transference_of_really_stepped_copies(optimizer):
    rule = ITMTL(["a", "b|c", "all", PCGrad(seed=7)])
    model = _model(rule, optimizer())
    for i in range(2):  # optimizer state (momentum / moments) is not zero
        model.train_on_batch(*_batch(10 + i))
    x, y = _batch()
    # Head b is head a negated, same labels: tasks a and b conflict, so PCGrad projects.
    model.heads["b"].set_weights([-w for w in model.heads["a"].get_weights()])
    y["b"] = y["a"]
    grads = _task_gradients(model, x, y)
    pc = PCGrad(seed=7)
    pc.build_tasks(TASKS)
    for _ in range(int(rule.rules[0].draws.numpy()) + 1):
        order = pc.order().numpy()
    candidates = {
        "a": grads[0],
        "b|c": [g1 + g2 for g1, g2 in zip(grads[1], grads[2])],
        "all": [g0 + g1 + g2 for g0, g1, g2 in zip(*grads)],
        "pcgrad": _pcgrad(grads, order),
    }
    expected, stepped = [], []
    for name, g in candidates.items():
        before, after, weights = _stepped(model, x, y, g)
        expected.append(np.sum(1 - after / before))
        stepped.append(weights)
    model.train_on_batch(x, y)
    scores, choice = rule.last_scores.numpy(), int(rule.last_choice.numpy())
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    assert choice == int(np.argmax(scores))
    assert abs(scores[3] - scores[2]) > 1e-4  # PCGrad's row is not the plain sum's
    for got, want in zip(model.shared_variables, stepped[choice]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_update_heads_scores_with_the_heads_really_stepped_too():
    """001 Alg. 1 line 5: the lookahead also steps each head on its own loss; the copy
    steps encoder and heads in one apply, as the train step does."""
    rule = ITMTL(["a", "all"], update_heads=True)
    model = _model(rule, keras.optimizers.SGD(0.05, momentum=0.9))
    model.train_on_batch(*_batch(10))
    x, y = _batch()
    clone, _ = copy_model(model, x)
    with tf.GradientTape(persistent=True) as tape:
        pred = clone(x, training=True)
        losses = [keras.losses.MeanSquaredError()(y[t], pred[t]) for t in clone.tasks]
        total = tf.add_n(losses)  # inside the tape, or it is not recorded
    heads = [v for t in clone.tasks for v in clone.heads[t].trainable_variables]
    head_grads = [g.numpy() for g in tape.gradient(total, heads)]
    task = [[g.numpy() for g in tape.gradient(l, clone.shared_variables)] for l in losses]
    candidates = [task[0], [a + b + c for a, b, c in zip(*task)]]
    expected, weights = [], []
    for grads in candidates:
        copy, opt = copy_model(model, x)
        before = _losses(copy, x, y)
        variables = copy.shared_variables + [
            v for t in copy.tasks for v in copy.heads[t].trainable_variables]
        opt.apply([tf.constant(g) for g in grads + head_grads], variables)
        expected.append(np.sum(1 - _losses(copy, x, y) / before))
        weights.append([v.numpy() for v in variables])
    model.train_on_batch(x, y)
    np.testing.assert_allclose(rule.last_scores.numpy(), expected, rtol=1e-4, atol=1e-5)
    choice = int(rule.last_choice.numpy())
    got = model.shared_variables + [v for t in model.tasks for v in model.heads[t].trainable_variables]
    for g, w in zip(got, weights[choice]):
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-5, atol=1e-6)


def test_exact_and_first_order_agree_when_one_candidate_clearly_wins():
    x, y = _batch(2)
    picks = {}
    for lookahead in ("exact", "first_order"):
        rule = ITMTL(["a", "b", "c", "all"], lookahead=lookahead)
        model = _model(rule, keras.optimizers.SGD(1e-3))
        model.train_on_batch(x, y)
        picks[lookahead] = rule.last_scores.numpy()
    ex, fo = picks["exact"], picks["first_order"]
    best = int(np.argmax(ex))
    margin = ex[best] - np.max(np.delete(ex, best))
    assert margin > 5 * np.max(np.abs(ex - fo))  # a clear winner at this learning rate
    assert int(np.argmax(fo)) == best


def test_ties_go_to_the_first_candidate():
    for candidates in (["a|b", "all"], ["all", "a|b"]):
        rule = ITMTL(candidates)
        model = _model(rule, keras.optimizers.SGD(0.05), tasks=["a", "b"])
        model.train_on_batch(*_batch(tasks=["a", "b"]))
        scores = rule.last_scores.numpy()
        assert scores[0] == scores[1] and int(rule.last_choice.numpy()) == 0


def test_zero_loss_target_is_skipped_not_nan():
    rule = ITMTL(["a", "all"])
    model = _model(rule, keras.optimizers.SGD(0.05))
    x, y = _batch()
    model.build_for(x)
    model.heads["c"].set_weights([np.zeros((4, 1), "float32"), np.zeros(1, "float32")])
    y["c"] = np.zeros_like(y["c"])  # head c predicts 0 before and after: L_c = 0
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.all(np.isfinite(rule.last_scores.numpy()))
    assert logs["itmtl/skipped"] == 2.0  # target c, for both candidates


def test_a_step_that_overflows_a_loss_scores_minus_inf_and_is_not_chosen():
    """001 Eq. 2: 1 - inf / L_b = -inf. Candidate "b" (listed first) steps so far that L_b
    overflows float32; candidate "a" (task a has zero loss and zero shared gradient) does not
    move. Dropping the overflowing entry would score both 0 and choose "b" by the tie rule."""
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(keras.Sequential([keras.layers.Dense(4)]),
                                  {t: keras.layers.Dense(1) for t in ["a", "b"]},
                                  {t: "mse" for t in ["a", "b"]}, update=ITMTL(["b", "a"]))
    model.compile(optimizer=keras.optimizers.SGD(1e30))
    x, y = _batch(tasks=["a", "b"])
    model.build_for(x)
    model.heads["a"].set_weights([np.zeros((4, 1), "float32"), np.zeros(1, "float32")])
    y["a"] = np.zeros_like(y["a"])  # L_a = 0 before: target a is left out for both candidates
    logs = model.train_on_batch(x, y, return_dict=True)
    scores = model.update.last_scores.numpy()
    assert scores[0] == -np.inf and scores[1] == 0.0
    assert int(model.update.last_choice.numpy()) == 1
    assert logs["itmtl/overflowed"] == 1.0  # candidate b on target b
    assert logs["itmtl/skipped"] == 2.0     # target a, for both candidates


def test_composes_with_a_weighting_and_logs_choice_fractions_per_epoch():
    """IT-UW-PCGrad, first order: heads get the UW objective, its variables train,
    the epoch logs carry the fraction of steps each candidate was chosen."""
    uw = UncertaintyWeights()
    rule = ITMTL(["all", PCGrad()], lookahead="first_order", weighting=uw)
    model = _model(rule, keras.optimizers.SGD(0.05, momentum=0.9))
    x, y = _batch(n=32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = model.fit(ds, validation_data=ds, epochs=1, verbose=0).history
    fractions = [history[f"itmtl/chosen/{n}"][0] for n in ("all", "pcgrad")]
    assert abs(sum(fractions) - 1) < 1e-6
    assert not any(k.startswith("val_itmtl") for k in history)
    assert not np.allclose(uw.log_vars.numpy(), 0.0)


@pytest.mark.parametrize("kwargs, match", [
    ({"candidates": []}, "Received: candidates=\\[\\]"),
    ({"candidates": ["a", "a"]}, "Received duplicates: \\['a'\\]"),
    ({"candidates": ["a", UncertaintyWeights()]}, "Received: candidate .*UncertaintyWeights"),
    ({"candidates": ["a", PCGrad(weighting=UncertaintyWeights())]},
     "Received: candidate pcgrad with weighting=uncertainty"),
    ({"candidates": ["a"], "lookahead": "second_order"}, "Received: lookahead='second_order'"),
    ({"candidates": ["a"], "weighting": UncertaintyWeights(), "update_heads": True},
     "Received: update_heads=True"),
    ({"candidates": ["a"], "update_heads": "yes"}, "Received: update_heads='yes'"),
    ({"candidates": ["a"], "chunk_size": 0}, "Received: chunk_size=0"),
    ({"candidates": ["a"], "chunk_size": "x"}, "Received: chunk_size='x'"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ITMTL(**kwargs)


@pytest.mark.parametrize("candidate", ["d", "a|d", "a|a"])
def test_candidates_must_be_tasks_or_subsets(candidate):
    with pytest.raises(ValueError, match=f"Candidate '{candidate.replace('|', '[|]')}' is no task"):
        _model(ITMTL(["a", candidate]), keras.optimizers.SGD(0.1))


def _dbmtl_first_direction(grads, losses, beta=0.9):
    """DB-MTL's first step by hand: ĝ_i = (1-β) g_i/(L_i+ε); Σ max||ĝ||/||ĝ_i|| ĝ_i."""
    flat = [np.concatenate([g.ravel() for g in gs]).astype(np.float64) for gs in grads]
    avg = [(1 - beta) * f / (loss + 1e-8) for f, loss in zip(flat, losses)]
    size = np.array([np.linalg.norm(a) for a in avg])
    total = sum(size.max() / (s + 1e-8) * a for s, a in zip(size, avg))
    out, start = [], 0
    for g in grads[0]:
        out.append(total[start:start + g.size].reshape(g.shape).astype(np.float32))
        start += g.size
    return out


@pytest.mark.parametrize("lookahead", ["exact", "first_order"])
def test_a_direction_candidate_is_scored_by_really_stepped_copies(lookahead):
    """ITMTL(["a", DBMTL(), "all"]) on its first step (the rule's state is made in that
    step): scores are the total transference of copies stepped along each candidate's
    gradient (exact), or -Σ_j <∇L_j, Δ_c>/L_j with Δ_c the copy's real update
    (first order); the applied update is the chosen copy's."""
    from tf_mtl.updates.dbmtl import DBMTL
    rule = ITMTL(["a", DBMTL(), "all"], lookahead=lookahead)
    model = _model(rule, keras.optimizers.SGD(0.05, momentum=0.9))
    x, y = _batch()
    model.build_for(x)
    grads = _task_gradients(model, x, y)
    before = _losses(model, x, y)
    candidates = [grads[0], _dbmtl_first_direction(grads, before),
                  [g0 + g1 + g2 for g0, g1, g2 in zip(*grads)]]
    flat = [np.concatenate([g.ravel() for g in gs]) for gs in grads]
    start = np.concatenate([v.numpy().ravel() for v in model.shared_variables])
    expected, stepped = [], []
    for g in candidates:
        loss_before, after, weights = _stepped(model, x, y, g)
        delta = np.concatenate([w.ravel() for w in weights]) - start
        expected.append(np.sum(1 - after / loss_before) if lookahead == "exact" else
                        -sum(f @ delta / loss for f, loss in zip(flat, loss_before)))
        stepped.append(weights)
    model.train_on_batch(x, y)
    scores, choice = rule.last_scores.numpy(), int(rule.last_choice.numpy())
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)
    assert choice == int(np.argmax(expected))
    for got, want in zip(model.shared_variables, stepped[choice]):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    assert int(rule.rules[0].steps.numpy()) == 1   # the candidate's state advanced once


def test_direction_candidates_only_and_every_direction_rule_runs():
    from tf_mtl.updates.dbmtl import DBMTL
    from tf_mtl.updates.graddrop import GradDrop
    from tf_mtl.updates.moco import MoCo
    rule = ITMTL([MoCo(), GradDrop(), DBMTL()], weighting=UncertaintyWeights())
    model = _model(rule, keras.optimizers.SGD(0.05))
    for seed in range(2):
        model.train_on_batch(*_batch(seed))
    assert np.all(np.isfinite(rule.last_scores.numpy()))
    assert [int(r.steps.numpy()) for r in rule.rules] == [2, 2, 2]
    config = ITMTL.from_config(rule.get_config()).get_config()
    assert config["candidates"] == rule.get_config()["candidates"]


def test_a_direction_candidates_state_saves_and_loads(tmp_path):
    from tf_mtl.updates.dbmtl import DBMTL
    rule = ITMTL(["all", DBMTL()])
    model = _model(rule, keras.optimizers.SGD(0.05))
    model.train_on_batch(*_batch(1))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras").update.rules[0]
    saved = rule.rules[0].task_state("average")
    assert len(loaded.task_state("average")) == len(saved) == len(model.shared_variables)
    for a, b in zip(saved, loaded.task_state("average")):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(saved[0].numpy(), 0.0)
