"""Plain multi-task learning: the shared gradient of the (weighted) loss sum."""

import keras

from tf_mtl.updates.base import Update


@keras.saving.register_keras_serializable(package="tf_mtl")
class EqualWeights(Update):
    """The shared gradient is ``grad(sum_i w_i L_i)`` with the model's loss weights.

    With ``loss_weights=None`` every weight is 1, the MTL baseline of every paper
    here. One backward pass; no per-task gradients are formed.

    Example:
        >>> model = tf_mtl.MultiTaskModel(encoder, heads, losses,
        ...                               update=tf_mtl.updates.EqualWeights())
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("name", "equal_weights")  # Fixed, like every rule's: not equal_weights_3.
        super().__init__(**kwargs)

    def shared_gradients(self, step):
        return step.weighted_gradient(), {}
