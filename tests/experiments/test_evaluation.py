"""Test-set metrics against hand-computed values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tf_mtl
from tf_mtl.experiments import evaluation


class Fixed(keras.layers.Layer):
    """An encoder that passes its input through: the heads below read columns of x."""

    def call(self, x):
        return x


class Columns(keras.layers.Layer):
    def __init__(self, start, stop, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = start, stop

    def call(self, x):
        return x[:, self.start:self.stop]


def _model(heads, losses):
    return tf_mtl.MultiTaskModel(Fixed(), heads, losses)


def test_fscore_precision_recall_against_a_hand_computed_case():
    # Two tasks: "eyes" with 2 attributes, "nose" with 1. Logits > 0 predict positive.
    logits = np.array([[2., -1., 3.], [1., 1., -2.], [-1., 2., 1.], [3., -3., 1.]], "float32")
    labels_eyes = np.array([[1, 0], [0, 1], [1, 1], [1, 0]], "float32")
    labels_nose = np.array([[0], [0], [1], [1]], "float32")
    model = _model({"eyes": Columns(0, 2), "nose": Columns(2, 3)},
                   {t: keras.losses.BinaryCrossentropy(from_logits=True) for t in ("eyes", "nose")})
    ds = tf.data.Dataset.from_tensor_slices(
        (logits, {"eyes": labels_eyes, "nose": labels_nose})).batch(3)  # 3 + 1: uneven batches.
    metrics = evaluation.resolve_metrics("celeba_groups", ["eyes", "nose"])
    out = evaluation.evaluate(model, ds, metrics, {"eyes": "binary", "nose": "binary"})
    # eyes[0]: predicted + on rows 0,1,3; true + on 0,2,3 -> tp 2, fp 1, fn 1: P = R = 2/3.
    # eyes[1]: predicted + on rows 1,2; true + on 1,2 -> P = R = 1.
    # nose: predicted + on rows 0,2,3; true + on 2,3 -> tp 2, fp 1, fn 0: P 2/3, R 1, F 0.8.
    f0 = 2 / 3
    assert out["eyes"]["precision"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["eyes"]["recall"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["eyes"]["fscore"] == pytest.approx((f0 + 1) / 2)
    assert out["nose"]["precision"] == pytest.approx(2 / 3)
    assert out["nose"]["recall"] == pytest.approx(1.0)
    assert out["nose"]["fscore"] == pytest.approx(0.8)
    # 003's numbers: the mean over all three attributes, not over the two groups.
    assert out["all_attributes"]["fscore"] == pytest.approx((f0 + 1 + 0.8) / 3)
    assert out["all_attributes"]["precision"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    # Element accuracy: eyes 6 of 8 right, nose 3 of 4.
    assert out["eyes"]["accuracy"] == pytest.approx(6 / 8)
    assert out["nose"]["accuracy"] == pytest.approx(3 / 4)
    bce = lambda y, z: np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    assert out["nose"]["loss"] == pytest.approx(bce(labels_nose, logits[:, 2:]), rel=1e-5)


def test_an_attribute_never_predicted_positive_has_precision_zero():
    logits = np.array([[-1.], [-2.]], "float32")
    model = _model({"a": Columns(0, 1)}, {"a": keras.losses.BinaryCrossentropy(from_logits=True)})
    ds = tf.data.Dataset.from_tensor_slices((logits, {"a": np.array([[1.], [0.]], "float32")}))
    out = evaluation.evaluate(model, ds.batch(2), {"a": ["precision", "recall", "fscore"]},
                              {"a": "binary"})
    assert out["a"]["precision"] == out["a"]["recall"] == out["a"]["fscore"] == 0.0


def test_categorical_accuracy_error_and_masked_mse():
    # "left": sparse labels (MultiMNIST); "tag": one-hot labels (CelebA TAG); "rating": MSE
    # over the examples whose weight is 1 (MovieLens masks unwatched ratings).
    x = np.array([[0.1, 0.9, 0.0, 2.0, -1.0, 3.0], [0.8, 0.1, 0.1, -1.0, 1.0, 5.0],
                  [0.2, 0.3, 0.5, 0.0, 1.0, 1.0]], "float32")
    y = {"left": np.array([1, 2, 2]), "tag": np.array([[1, 0], [1, 0], [0, 1]], "float32"),
         "rating": np.array([[4.0], [1.0], [2.0]], "float32")}
    sw = {"left": np.ones(3, "float32"), "tag": np.ones(3, "float32"),
          "rating": np.array([1.0, 0.0, 1.0], "float32")}
    model = _model({"left": Columns(0, 3), "tag": Columns(3, 5), "rating": Columns(5, 6)},
                   {"left": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    "tag": keras.losses.CategoricalCrossentropy(from_logits=True),
                    "rating": "mse"})
    ds = tf.data.Dataset.from_tensor_slices((x, y, sw)).batch(2)
    out = evaluation.evaluate(
        model, ds, {"left": ["accuracy"], "tag": ["accuracy", "error"], "rating": ["mse"]},
        {"left": "categorical", "tag": "categorical", "rating": "regression"})
    assert out["left"]["accuracy"] == pytest.approx(2 / 3)     # argmax 1, 0, 2 vs 1, 2, 2
    assert out["tag"]["accuracy"] == pytest.approx(2 / 3)      # argmax 0, 1, 1 vs 0, 0, 1
    assert out["tag"]["error"] == pytest.approx(1 / 3)
    assert out["rating"]["mse"] == pytest.approx(((3 - 4) ** 2 + (1 - 2) ** 2) / 2)
    # The loss is Keras's: weighted squared errors over all examples.
    assert out["rating"]["loss"] == pytest.approx((1 + 0 + 1) / 3)


def test_metrics_are_configured_per_dataset():
    assert evaluation.resolve_metrics("movielens", ["rating", "watch"]) == {
        "rating": ["mse"], "watch": ["accuracy"]}
    assert evaluation.resolve_metrics("multi_mnist", ["left", "right"]) == {
        "left": ["accuracy"], "right": ["accuracy"]}
    for name in ("synthetic", "celeba", "celeba_groups", "multi_mnist_pickle"):
        assert evaluation.resolve_metrics(name, ["t"])["t"]


def test_unknown_metric_names_and_datasets_are_refused():
    with pytest.raises(ValueError, match=r"Unknown metric names \['f1', 'top5'\].*Received"):
        evaluation.resolve_metrics("d", ["a"], table={"d": {"all": ("accuracy", "top5", "f1")}})
    with pytest.raises(ValueError, match="Received: dataset='imagenet'"):
        evaluation.resolve_metrics("imagenet", ["a"])
    model = _model({"a": Columns(0, 1)}, {"a": "mse"})
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((2, 1), "float32"),
                                             {"a": np.zeros((2, 1), "float32")})).batch(2)
    with pytest.raises(ValueError, match=r"\['fscore'\] do not apply to task 'a' of kind "
                                         "'regression'"):
        evaluation.evaluate(model, ds, {"a": ["fscore"]}, {"a": "regression"})
