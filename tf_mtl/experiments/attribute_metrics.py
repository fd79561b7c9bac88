"""Precision, recall and F-score of multi-label attribute groups, as ``003`` and ``004`` report
them on CelebA: per attribute from the counts accumulated over the evaluation, then averaged
over the group's attributes (macro), predictions from logits thresholded at probability 0.5.

Configs name them ``"precision_logits"``, ``"recall_logits"`` and ``"fscore_logits"``
(``tf_mtl.experiments.experiment.METRICS``).

Example:
    >>> model.compile(optimizer="adam", metrics={"hair": [AttributeScore("fscore")]})
"""

import keras
from keras import ops

KINDS = ("precision", "recall", "fscore")


@keras.saving.register_keras_serializable(package="tf_mtl")
class AttributeScore(keras.metrics.FBetaScore):
    """Macro precision, recall or F1 over the attributes (columns) of ``[B, k]`` labels.

    Args:
        kind: ``"precision"``, ``"recall"`` or ``"fscore"``.
        from_logits: predictions are logits (a sigmoid is applied first).
        threshold: probability above which an attribute is predicted present.
    """

    def __init__(self, kind="fscore", from_logits=True, threshold=0.5, name=None, dtype=None):
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
        super().__init__(average="macro", beta=1.0, threshold=float(threshold),
                         name=name or kind, dtype=dtype)
        self.kind, self.from_logits = kind, bool(from_logits)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.convert_to_tensor(y_pred, dtype=self.dtype)
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        super().update_state(y_true, y_pred, sample_weight)

    def result(self):
        if self.kind == "fscore":
            return super().result()
        tp = self.true_positives
        other = self.false_positives if self.kind == "precision" else self.false_negatives
        return ops.mean(ops.divide(tp, tp + other + keras.backend.epsilon()))

    def get_config(self):
        config = super().get_config()
        for key in ("average", "beta"):
            config.pop(key, None)
        return {**config, "kind": self.kind, "from_logits": self.from_logits}
