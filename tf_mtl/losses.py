"""Task losses: what a user gives as a task's loss, as one reducing ``keras.losses.Loss``.

``MultiTaskModel(losses={task: ...})`` accepts, per task:

- a ``keras.losses.Loss`` object (used as given);
- a loss name Keras knows (``"mse"``, ``"binary_crossentropy"``);
- a plain function ``fn(y_true, y_pred) -> per-example losses`` (a Keras loss
  function such as ``keras.losses.mean_squared_error``, or your own); a
  ``functools.partial`` or callable object trains too, but only a name or a plain
  function is saved with the model;
- a ``FunctionLoss`` (the wrapper the other two become).

Names and functions become a ``FunctionLoss``, so they reduce (sample weights,
batch mean) and scale under ``tf.distribute`` like every other Keras loss.

Saving: a name is saved as the name. A function is saved the Keras way
(``keras.saving.serialize_keras_object``) plus its module and qualified name.
Loading finds a Keras loss function among Keras's own; one of yours by its name
among the functions registered with ``keras.saving.register_keras_serializable``
or given in ``custom_objects`` to ``load_model``, then in its module if that
module is already imported (``__main__`` included), never among Keras's
built-ins (a function of yours named ``hinge`` stays yours). Loading never
imports a module named by a file. A lambda is saved as Keras saves lambdas (its bytecode) and
loads only with ``safe_mode=False``, as Keras requires.

Example:
    >>> import keras, numpy as np
    >>> def abs_error(y_true, y_pred):
    ...     return keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)
    >>> loss = FunctionLoss(abs_error)
    >>> loss.name, float(loss(np.array([[1.0], [2.0]]), np.array([[0.0], [0.0]])))
    ('abs_error', 1.5)
"""

import inspect
import re
import sys

import keras


def _scope_name(text):
    """``text`` as a valid TensorFlow root name scope (a loss's name becomes one): letters,
    digits, ``_``, ``.`` and ``-`` are kept (Keras refuses ``/`` and spaces there)."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", str(text)).strip("_") or "loss"
    return name if re.match(r"[A-Za-z0-9.]", name) else f"loss_{name}"


def _function_name(fn):
    return getattr(fn, "__name__", None) or type(fn).__name__


def _from_module(module, qualname):
    """``module.qualname`` if ``module`` is already imported, else None."""
    obj = sys.modules.get(module) if module else None
    for part in (qualname or "").split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    return obj if callable(obj) else None


def _is_keras_module(module):
    return module is None or module == "keras" or module.startswith("keras.")


def _resolve(fn, module=None, qualname=None):
    """The callable a saved ``fn`` (name or serialized function) stands for.

    A user's function is looked up by its own name only (registered, ``custom_objects``,
    or its already-imported module), never among Keras's built-ins: Keras saves every
    plain function under the module ``builtins``, so a user's ``hinge`` would otherwise
    come back as Keras's ``hinge``."""
    if isinstance(fn, str):
        return keras.losses.get(fn)
    if fn.get("class_name") == "__lambda__" or _is_keras_module(module):
        return keras.saving.deserialize_keras_object(fn)   # Lambdas: Keras's safe_mode rule.
    name = fn.get("config")
    found = keras.saving.get_registered_object(name) if isinstance(name, str) else None
    if found is None:
        found = _from_module(module, qualname)
    if found is None:
        raise ValueError(
            f"Cannot load the loss function {qualname or name!r} (module {module!r}): "
            "register it with @keras.saving.register_keras_serializable(), pass it in "
            "custom_objects={name: function} to load_model, or import its module "
            f"before loading. Received: fn={fn!r}")
    return found


@keras.saving.register_keras_serializable(package="tf_mtl")
class FunctionLoss(keras.losses.Loss):
    """A loss name or a plain function ``fn(y_true, y_pred)`` as a ``Loss`` object.

    Args:
        fn: a name Keras knows (``"mse"``) or a callable returning per-example losses.
        name: the loss's name (default: the name given, or the function's ``__name__``).
    """

    def __init__(self, fn, name=None, fn_module=None, fn_qualname=None, **kwargs):
        self._loss_name = fn if isinstance(fn, str) else None  # Saved as the name.
        if isinstance(fn, str):
            self._fn = keras.losses.get(fn)
        elif isinstance(fn, dict):  # A saved function (get_config).
            self._fn = _resolve(fn, fn_module, fn_qualname)
        elif callable(fn):
            self._fn = fn
        else:
            raise TypeError("`fn` must be a loss name or a callable. "
                            f"Received: fn={fn!r} of type {type(fn).__name__}")
        self._module = fn_module or getattr(self._fn, "__module__", None)
        self._qualname = fn_qualname or getattr(self._fn, "__qualname__", None)
        self.fn_name = self._loss_name or _function_name(self._fn)
        super().__init__(name=_scope_name(name or self.fn_name), **kwargs)

    def call(self, y_true, y_pred):
        return self._fn(y_true, y_pred)

    def get_config(self):
        if self._loss_name is not None:
            return {**super().get_config(), "fn": self._loss_name}
        if not inspect.isfunction(self._fn):
            raise ValueError(
                f"FunctionLoss '{self.name}' cannot be saved: only a loss name or a plain "
                "function (def or lambda) is saved with the model; for a functools.partial "
                "or a callable object, subclass keras.losses.Loss with a get_config. "
                f"Received: fn={self._fn!r}")
        return {**super().get_config(), "fn": keras.saving.serialize_keras_object(self._fn),
                "fn_module": self._module, "fn_qualname": self._qualname}


def as_loss(task, identifier):
    """``identifier`` (a ``Loss``, a name or a function) as a ``Loss`` for ``task``."""
    if isinstance(identifier, keras.losses.Loss):
        return identifier
    if isinstance(identifier, str) or callable(identifier):
        try:
            return FunctionLoss(identifier)
        except ValueError as e:
            raise ValueError(
                f"Unknown loss for task '{task}'. Received: losses[{task!r}]="
                f"{identifier!r}"
            ) from e
    raise TypeError(
        f"losses[{task!r}] must be a keras.losses.Loss, a loss name or a "
        f"callable. Received: {identifier!r} of type {type(identifier).__name__}"
    )
