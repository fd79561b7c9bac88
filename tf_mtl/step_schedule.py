"""Which probes measure on a step, decided on the host: one compiled step per set of due probes.

A probe with ``every > 1`` measures on the steps where ``optimizer.iterations %
every == 0``. Branching inside the compiled step (a ``tf.switch_case`` around the
step) is refused by ``tf.distribute`` strategies as soon as a branch reduces
across replicas, and a probe always does (its per-task gradients and losses are
global). So the train function Keras calls is a ``StepSchedule``: a host-side
dispatcher over one Keras train function per *set of due probes*, each traced
once, the first time that set is due (no re-trace per step; a step with no due
probe runs a graph without any probe, so unmeasured steps cost what a plain step
costs). The dispatcher keeps a host copy of ``optimizer.iterations`` — read from
the variable whenever Keras asks for the train function (each ``fit``,
``train_on_batch``), then counted on the host, one per call, so no step waits on
a device read — and picks the function from it. Every replica and every worker
runs the same function: the choice depends only on the iteration count, which
they share.

The same dispatcher runs with one device or many (``MirroredStrategy``,
``MultiWorkerMirroredStrategy``, ``TPUStrategy``: each of Keras's train functions
is built by Keras for the model's strategy).

Where one call of the train function runs several steps
(``compile(steps_per_execution=n)``, ``n > 1``) the due set changes inside the
call: the step then chooses in the graph (``tf.switch_case`` on
``optimizer.iterations``), which works on one replica only; under several replicas
that combination is refused with a ``ValueError``. A ``train_step`` called by
hand (outside ``fit``/``train_on_batch``) also chooses in the graph.

Example:
    >>> model = tf_mtl.MultiTaskModel(..., probes=[Transference(every=10)])
    >>> with tf.distribute.MirroredStrategy().scope():   # or no strategy
    ...     model.compile(optimizer="sgd")
    >>> model.fit(ds)   # 1 step in 10 runs the graph with the probe; the others do not
"""

import functools

import keras
import tensorflow as tf

from tf_mtl import distribute


def scheduled_probes(model):
    """The model's probes that measure on a schedule (``every > 1``), in order."""
    return [p for p in model.probes if p.every > 1]


class StepSchedule:
    """The train function of a model with scheduled probes (see the module docstring).

    Calling it runs one step: the Keras train function built for the probes due at
    the host's iteration count (built and traced the first time that set is due).
    """

    def __init__(self, model):
        self.model = model
        self.scheduled = scheduled_probes(model)
        self.functions = {}     # due mask (tuple of bools) -> Keras train function
        self.iteration = None   # host copy of optimizer.iterations; None: read it next call
        self.due = None         # the due mask while a call runs (read while tracing); else None

    def sync(self):
        """Re-reads ``optimizer.iterations`` before the next step (weights or the
        optimizer may have been restored or assigned in between)."""
        self.iteration = None

    def mask(self, iteration):
        """Which scheduled probes are due at ``iteration`` (a tuple of bools)."""
        return tuple(iteration % p.every == 0 for p in self.scheduled)

    def _function(self, mask):
        fn = self.functions.get(mask)
        if fn is None:
            # Keras builds the train function for the model's strategy, jit_compile and
            # run_eagerly; it reads `self.due` when it traces.
            keras.Model.make_train_function(self.model, force=True)
            fn = self.functions[mask] = self.model.train_function
            self.model.train_function = self
        return fn

    def __call__(self, iterator):
        if self.iteration is None:
            self.iteration = int(self.model.optimizer.iterations.numpy())
        mask = self.mask(self.iteration)
        fn = self._function(mask)
        self.due = mask
        try:
            logs = fn(iterator)   # Raises StopIteration at the end of the data: no step.
        finally:
            self.due = None       # A train_step traced later, by hand, branches in the graph.
        self.iteration += 1
        return logs


def make_train_function(model, force=False):
    """``MultiTaskModel.make_train_function``: a ``StepSchedule`` where probes
    measure on a schedule and each call runs one step, else Keras's own."""
    current = model.train_function
    if isinstance(current, StepSchedule) and not force:
        current.sync()
        return current
    if not scheduled_probes(model) or model.steps_per_execution > 1:
        # Keras's cached function unless asked or replacing a schedule: forcing it on
        # every call re-traced the step at every train_on_batch.
        keras.Model.make_train_function(model, force=force or isinstance(current, StepSchedule))
        return model.train_function
    model.train_function = StepSchedule(model)
    return model.train_function


def run_step(model, gradients):
    """``gradients(probes)`` with the probes due on this step (``MultiTaskModel.train_step``).

    Under a ``StepSchedule`` the due probes are known while tracing: no branch.
    Elsewhere (``steps_per_execution > 1``, a hand-called ``train_step``) the step
    branches on ``optimizer.iterations`` in the graph, on one replica only.
    """
    always = [p for p in model.probes if p.every == 1]
    scheduled = scheduled_probes(model)
    if not scheduled:
        return gradients(always)
    schedule = model.train_function
    if isinstance(schedule, StepSchedule) and schedule.due is not None:
        return gradients(always + [p for p, due in zip(scheduled, schedule.due) if due])
    if distribute.num_replicas() > 1:
        raise ValueError(
            "Under a multi-replica tf.distribute strategy, probes that measure every k > 1 "
            "steps need one step per call of the train function (the due probes are chosen "
            "on the host). Received: steps_per_execution="
            f"{model.steps_per_execution} with probes every={[p.every for p in scheduled]}; "
            "compile with steps_per_execution=1.")
    # The whole forward/backward runs inside one branch per set of due probes. A
    # tf.cond around only the probe would capture the forward pass's tensors into
    # the branch, which measured ~40% slower on CPU.
    iteration = model.optimizer.iterations
    index = tf.add_n([p.due(iteration) * (2 ** i) for i, p in enumerate(scheduled)])
    branches = [functools.partial(gradients, always + [p for i, p in enumerate(scheduled)
                                                       if k >> i & 1])
                for k in range(2 ** len(scheduled))]
    return tf.switch_case(index, branches)
