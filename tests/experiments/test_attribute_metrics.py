"""Macro precision / recall / F-score from logits against counts by hand."""

import numpy as np
import pytest

from tf_mtl.experiments.attribute_metrics import AttributeScore


def test_scores_equal_per_attribute_counts_averaged():
    rng = np.random.default_rng(0)
    y = (rng.random((40, 3)) < [0.2, 0.5, 0.8]).astype("float32")
    logits = rng.normal(size=(40, 3)).astype("float32") + 0.7 * (2 * y - 1)
    pred = logits > 0
    tp = (pred & (y == 1)).sum(0)
    precision, recall = tp / pred.sum(0), tp / (y == 1).sum(0)
    expected = {"precision": precision.mean(), "recall": recall.mean(),
                "fscore": (2 * precision * recall / (precision + recall)).mean()}
    for kind, value in expected.items():
        metric = AttributeScore(kind)
        metric.update_state(y[:25], logits[:25])   # accumulated over batches
        metric.update_state(y[25:], logits[25:])
        np.testing.assert_allclose(metric.result(), value, rtol=1e-5)
        assert AttributeScore.from_config(metric.get_config()).kind == kind


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind='auc'"):
        AttributeScore("auc")
