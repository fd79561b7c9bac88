"""SegNet-MTAN and SegNet inside MultiTaskModel on generated NYUv2 files: the attention
modules are task-specific (trained with their task's head, never shared), and a train step
of MTL, IT-MTL and Maximum Roaming, and transference's lookahead, equal the same update
computed by hand on an independent copy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tests.model_copies import copy_model
from tf_mtl.data.dense_files import write_nyuv2_like
from tf_mtl.dense import (DepthL1, NormalCosine, SegNet, SegNetMTAN, SegmentationCrossEntropy,
                          dense_head)
from tf_mtl.updates import ITMTL, EqualWeights

TASKS = ["depth", "normal", "segmentation"]   # the model's (sorted) order
FILTERS = [4, 4, 4]   # 3 levels (32x32 inputs): MTAN's layout, a third of the ops of 5


@pytest.fixture(autouse=True)
def eager(request):
    """Functions run eagerly: tracing SegNet-MTAN's train step takes minutes on a shared
    2-core CPU, and the partition under test does not depend on the mode (the compiled
    step: ``test_graph_step_equals_the_summed_loss_gradient_on_a_copy``)."""
    if "graph" in request.node.name:
        yield
        return
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = write_nyuv2_like(str(tmp_path_factory.mktemp("nyuv2")), n_train=2, n_val=1,
                            height=32, width=32)
    x, y, w = next(iter(tf_mtl.data.nyuv2(root, "train", batch_size=2, shuffle=False)))
    return x.numpy(), {t: v.numpy() for t, v in y.items()}, {t: v.numpy() for t, v in w.items()}


def _model(encoder, update=None, optimizer=None):
    keras.utils.set_random_seed(0)
    heads = {"segmentation": dense_head("segmentation", 13), "depth": dense_head("depth"),
             "normal": dense_head("normal")}
    losses = {"segmentation": SegmentationCrossEntropy(), "depth": DepthL1(),
              "normal": NormalCosine()}
    model = tf_mtl.MultiTaskModel(encoder, heads, losses, update=update)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.05, momentum=0.9))
    return model


def _mtan_model(update=None, optimizer=None):
    return _model(SegNetMTAN(TASKS, filters=FILTERS), update, optimizer)


def _attention(model, task):
    """Task ``task``'s attention modules, read from the layers (not ``task_variables``)."""
    layer = model.encoder.attention[model.encoder.tasks.index(task)]
    assert layer.name == f"attention_{task}"
    return [v for m in layer.encoder_modules + layer.decoder_modules
            for v in m.trainable_variables]


def _parts(model):
    """(shared, {task: own}) by layer paths: the encoder less every attention module; a
    task's own = its head and its attention modules."""
    attention = {id(v) for t in TASKS for v in _attention(model, t)}
    shared = [v for v in model.encoder.trainable_variables if id(v) not in attention]
    return shared, {t: model.heads[t].trainable_variables + _attention(model, t) for t in TASKS}


def _losses(model, x, y, w):
    pred = model(x, training=True)
    return [model.task_losses[t](y[t], pred[t], sample_weight=w[t]) for t in model.tasks]


def _grads(model, x, y, w, variables):
    """Each task's gradient of its loss w.r.t. ``variables``: ``[task][variable]``."""
    with tf.GradientTape(persistent=True) as tape:
        losses = _losses(model, x, y, w)
    sources = [v.value for v in variables]   # tf.Variables: zeros need a TF dtype
    return [tape.gradient(loss, sources, unconnected_gradients="zero") for loss in losses]


def _values(variables):
    return [v.numpy().copy() for v in variables]


def _assert_same(a, b, rtol=2e-4, atol=1e-6):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def test_shared_variables_exclude_every_attention_module(batch):
    x, _, _ = batch
    model = _mtan_model()
    model.build_for(x)
    shared = {id(v) for v in model.shared_variables}
    own = {t: {id(v) for v in model.task_variables(t)} for t in TASKS}
    for t in TASKS:
        attention = {id(v) for v in _attention(model, t)}
        # 2 modules per level, each two convs (kernel, bias) and two BNs (gamma, beta).
        assert len(attention) == 2 * len(FILTERS) * 8
        assert not attention & shared
        assert own[t] == attention | {id(v) for v in model.heads[t].trainable_variables}
        assert len(model.task_variables(t)) == len(own[t])
    assert not (own["depth"] & own["normal"] or own["depth"] & own["segmentation"]
                or own["normal"] & own["segmentation"])
    everything = shared | own["depth"] | own["normal"] | own["segmentation"]
    assert everything == {id(v) for v in model.trainable_variables}
    assert [id(v) for v in model.shared_variables] == [id(v) for v in _parts(model)[0]]
    # One feature per task: no single representation for the per-task shared gradients
    # (or MGDA-UB's feature Gram) to start from.
    features, pred = model.recorded_forward(x, training=True)
    assert features is None and pred["normal"].shape == (2, 32, 32, 3)
    plain = _model(SegNet(FILTERS))   # no task_variables: the whole encoder is shared
    plain.build_for(x)
    assert len(plain.shared_variables) == len(plain.encoder.trainable_variables)
    assert plain.task_variables("depth") == plain.heads["depth"].trainable_variables


def _check_mtl_step(model, x, y, w):
    model.train_on_batch(x, y, sample_weight=w)   # momentum is not zero
    clone, opt = copy_model(model, x)
    with tf.GradientTape() as tape:
        total = tf.add_n(_losses(clone, x, y, w))
    opt.apply(tape.gradient(total, clone.trainable_variables), clone.trainable_variables)
    before = _values(_attention(model, "depth"))
    model.train_on_batch(x, y, sample_weight=w)
    _assert_same(clone.get_weights(), model.get_weights())
    # The attention modules were trained (they are not frozen out of the step).
    moved = [np.abs(a - v.numpy()).max() for a, v in zip(before, _attention(model, "depth"))]
    assert max(moved) > 1e-4, moved


def test_mtl_step_equals_the_summed_loss_gradient_on_a_copy(batch):
    _check_mtl_step(_mtan_model(EqualWeights()), *batch)


def test_graph_step_equals_the_summed_loss_gradient_on_a_copy(batch):
    """The compiled train step (one level, so that it traces in seconds)."""
    _check_mtl_step(_model(SegNetMTAN(TASKS, filters=[4]), EqualWeights()), *batch)


class _Copy:
    """An independent copy of ``model`` and its optimizer, stepped by hand and restored."""

    def __init__(self, model, x, y, w):
        self.model, self.opt = copy_model(model, x)
        self.x, self.y, self.w = x, y, w
        self.shared, self.own = _parts(self.model)
        self.state = self.model.variables + self.opt.variables
        self.start = _values(self.state)
        self.losses = self.losses_now()

    def losses_now(self):
        return np.array([float(v) for v in _losses(self.model, self.x, self.y, self.w)])

    def gradients(self, variables):
        return _grads(self.model, self.x, self.y, self.w, variables)

    def own_gradients(self):
        """``{task: d L_t / d own_t}``: each task's head and attention modules."""
        return {t: self.gradients(self.own[t])[i] for i, t in enumerate(TASKS)}

    def step(self, shared_grad, own_grads=None):
        """One optimizer step: the shared variables along ``shared_grad`` and, with
        ``own_grads``, each task's own along ``own_grads[t]`` (else they are held).
        Returns ``(losses after, trainable values after)`` and restores the copy."""
        variables, grads = list(self.shared), list(shared_grad)
        if own_grads is not None:
            variables += [v for t in TASKS for v in self.own[t]]
            grads += [g for t in TASKS for g in own_grads[t]]
        self.opt.apply([tf.convert_to_tensor(g) for g in grads], variables)
        out = self.losses_now(), _values(self.model.trainable_variables)
        for v, value in zip(self.state, self.start):
            v.assign(value)
        return out


def test_itmtl_step_applies_the_candidate_with_the_highest_total_transference(batch):
    x, y, w = batch
    model = _mtan_model(ITMTL(["segmentation", "all"]))
    model.train_on_batch(x, y, sample_weight=w)
    copy = _Copy(model, x, y, w)
    per_task = copy.gradients(copy.shared)
    candidates = {"segmentation": per_task[TASKS.index("segmentation")],
                  "all": [tf.add_n(list(g)) for g in zip(*per_task)]}
    # Exact lookahead: heads and attention modules held.
    scores = {n: np.sum(1 - copy.step(g)[0] / copy.losses) for n, g in candidates.items()}
    best, other = sorted(scores, key=scores.get, reverse=True)
    assert scores[best] - scores[other] > 1e-4, scores
    own = copy.own_gradients()
    expected, unchosen = (copy.step(candidates[n], own)[1] for n in (best, other))
    logs = model.train_on_batch(x, y, sample_weight=w, return_dict=True)
    _assert_same(expected, _values(model.trainable_variables))
    assert not np.allclose(unchosen[0], model.trainable_variables[0].numpy())
    assert logs[f"itmtl/chosen/{best}"] > 0


def test_maximum_roaming_step_equals_the_per_path_loss_gradient_on_a_copy(batch):
    x, y, w = batch
    routing = {"kind": "maximum_roaming", "num_tasks": 3, "sharing_ratio": 0.5,
               "update_every": 100, "seed": 3}
    model = _model(SegNet(FILTERS, routing=routing), EqualWeights())
    model.train_on_batch(x, y, sample_weight=w)
    clone, opt = copy_model(model, x)
    with tf.GradientTape() as tape:   # task k's loss through task k's path alone
        total = 0.0
        for k, t in enumerate(clone.tasks):
            with tf_mtl.routing.task_paths.path_of(k, 3):
                pred = clone.heads[t](clone.encoder(x, training=True), training=True)
            total += clone.task_losses[t](y[t], pred, sample_weight=w[t])
    grads = tape.gradient(total, clone.trainable_variables)
    opt.apply(grads, clone.trainable_variables)
    model.train_on_batch(x, y, sample_weight=w)
    _assert_same(_values(clone.trainable_variables), _values(model.trainable_variables))
    assert len(tf_mtl.routing.routing_layers(model.encoder)) == 14   # one per conv


def _transference_by_hand(copy, update_heads):
    """``Z[source][target]`` of the copy really stepped: its shared variables along the
    source's gradient; each task's head and attention modules along its own loss's gradient
    with ``update_heads``, else held."""
    per_task = copy.gradients(copy.shared)
    own = copy.own_gradients() if update_heads else None
    sources = {t: [t] for t in TASKS}
    sources["|".join(TASKS)] = TASKS
    z = {}
    for name, members in sources.items():
        grad = [tf.add_n([per_task[TASKS.index(t)][i] for t in members])
                for i in range(len(per_task[0]))]
        z[name] = dict(zip(TASKS, 1 - copy.step(grad, own)[0] / copy.losses))
    return z


def test_transference_steps_attention_modules_only_with_their_heads(batch):
    x, y, w = batch
    model = _mtan_model(EqualWeights(), keras.optimizers.Adam(1e-3))
    model.train_on_batch(x, y, sample_weight=w)    # Adam's moments are not zero
    weights = _values(model.variables)
    copy = _Copy(model, x, y, w)
    results = {}
    for update_heads in (False, True):
        z = tf_mtl.transference.measure(model, x, y, sample_weight=w, order=1, method="exact",
                                        update_heads=update_heads)
        expected = results[update_heads] = _transference_by_hand(copy, update_heads)
        assert set(z) == set(expected)
        for source in expected:
            np.testing.assert_allclose([z[source][t] for t in TASKS],
                                       [expected[source][t] for t in TASKS],
                                       rtol=2e-3, atol=1e-6)
    # Held and stepped attention modules and heads differ: the check tells them apart.
    assert max(abs(results[True][s][t] - results[False][s][t])
               for s in results[True] for t in TASKS) > 1e-4
    _assert_same(weights, _values(model.variables), rtol=0, atol=0)   # nothing changed
