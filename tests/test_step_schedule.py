import keras
import numpy as np
import tensorflow as tf

import tf_mtl
from tf_mtl import step_schedule
from tf_mtl.transference import Transference

from tests.fresh_process import run_check

TASKS = ["t0", "t1", "t2"]


def _model(probes, steps_per_execution=1):
    keras.utils.set_random_seed(0)
    model = tf_mtl.MultiTaskModel(tf_mtl.encoders.MLP([8, 4]),
                                  {t: keras.layers.Dense(1) for t in TASKS},
                                  {t: "mse" for t in TASKS}, probes=probes)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  steps_per_execution=steps_per_execution)
    return model


def _data():
    x, y, _ = tf_mtl.data.synthetic_arrays(num_tasks=3, num_groups=3, num_examples=96)
    return x, y


def _probes():
    return [Transference(every=3, log_pairs=True, name="exact"),
            Transference(every=2, method="cosine", name="cos")]


def _counting(probes):
    """Counts how often each probe's measure is traced (Python runs only when tracing)."""
    traces = {p.name: 0 for p in probes}
    for p in probes:
        def measure(*args, p=p, original=p.measure):
            traces[p.name] += 1
            return original(*args)
        p.measure = measure
    return traces


def test_host_schedule_builds_one_function_per_due_set_and_never_retraces():
    x, y = _data()
    probes = _probes()
    traces = _counting(probes)
    model = _model(probes)
    history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    schedule = model.train_function
    assert isinstance(schedule, step_schedule.StepSchedule)
    # 24 steps: every=3 and every=2 give the due sets (T,T), (F,F), (F,T), (T,F).
    assert set(schedule.functions) == {(True, True), (False, False), (False, True),
                                       (True, False)}
    # Once per function that runs the probe, plus once more for the first function
    # (tf.function traces twice when the first trace creates variables): not per step.
    assert traces == {"exact": 3, "cos": 3}
    assert schedule.iteration == 24 == int(model.optimizer.iterations.numpy())
    assert history["exact/steps"] == [4.0, 4.0] and history["cos/steps"] == [6.0, 6.0]


def test_host_schedule_equals_the_in_graph_schedule():
    """steps_per_execution=2 branches inside the graph (tf.switch_case); each call of the
    host schedule runs one step with the due probes only: same numbers."""
    x, y = _data()
    host = _model(_probes())
    h_host = host.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    graph = _model(_probes(), steps_per_execution=2)
    h_graph = graph.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    assert not isinstance(graph.train_function, step_schedule.StepSchedule)
    assert set(h_host) == set(h_graph)
    for key in h_graph:
        np.testing.assert_allclose(h_host[key], h_graph[key], rtol=1e-5, atol=1e-7,
                                   err_msg=key)
    for a, b in zip(host.get_weights(), graph.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_schedule_follows_the_optimizer_iterations_between_fits():
    x, y = _data()
    probe = Transference(every=5, method="first_order")
    model = _model([probe])
    model.fit(x[:16], {t: v[:16] for t, v in y.items()}, batch_size=8, verbose=0)
    model.optimizer.iterations.assign(4)   # e.g. a restored checkpoint
    history = model.fit(x[:24], {t: v[:24] for t, v in y.items()}, batch_size=8,
                        shuffle=False, verbose=0).history
    assert history["transference/steps"] == [1.0]   # iterations 4, 5, 6: only 5 is due
    logs = model.train_on_batch(x[:8], {t: v[:8] for t, v in y.items()}, return_dict=True)
    assert logs["transference/steps"] == 0.0   # iteration 7; metrics reset per call
    model.optimizer.iterations.assign(10)
    logs = model.train_on_batch(x[:8], {t: v[:8] for t, v in y.items()}, return_dict=True)
    assert logs["transference/steps"] == 1.0


def test_hand_called_train_step_after_fit_follows_the_iterations():
    """The due set of fit's last step must not leak into a train_step traced later."""
    x, y = _data()
    model = _model([Transference(every=2, method="first_order", name="tr")])
    model.fit(x[:24], {t: v[:24] for t, v in y.items()}, batch_size=8, verbose=0)
    assert model.train_function.due is None   # fit's last step (iteration 2) was due
    step = tf.function(model.train_step)
    batch = (tf.constant(x[:8]), {t: tf.constant(v[:8]) for t, v in y.items()})
    model.reset_metrics()
    assert float(step(batch)["tr/steps"]) == 0.0   # iteration 3: not due
    model.reset_metrics()
    assert float(step(batch)["tr/steps"]) == 1.0   # iteration 4: due


def test_models_without_scheduled_probes_keep_keras_train_function():
    model = _model([Transference(every=1)])
    x, y = _data()
    model.fit(x, y, batch_size=32, verbose=0)
    assert not isinstance(model.train_function, step_schedule.StepSchedule)


def test_scheduled_probes_and_rules_under_two_replicas_match_one_device():
    """EqualWeights with probes every 3 / 2 / 1, IT-MTL (choices step by step),
    UncertaintyWeights, PCGrad (and a Maximum Roaming encoder where tf_mtl.routing
    exists) under MirroredStrategy on 2 logical CPUs equal one device;
    steps_per_execution > 1 with a schedule under replicas is refused."""
    proc = run_check("distributed_schedule_check.py")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "distributed schedule check passed" in proc.stdout

