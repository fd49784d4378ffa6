"""Classification metrics against scikit-learn and against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from polymodal.metrics import (
    accuracy,
    classification_report,
    classification_statistics,
    confusion_matrix,
    macro_f1,
    mean_average_precision,
    mean_per_class_recall,
    multilabel_statistics,
    topk_accuracy,
    true_class_rank,
)


def test_hand_worked_small_case() -> None:
    y = [0, 0, 1, 1, 2, 2]
    p = [0, 1, 1, 1, 0, 2]
    assert accuracy(y, p) == pytest.approx(4 / 6)
    # recalls: class0 1/2, class1 2/2, class2 1/2 -> mean 2/3
    assert mean_per_class_recall(y, p) == pytest.approx(2 / 3)
    # F1: class0 P=1/2 R=1/2 -> 1/2; class1 P=2/3 R=1 -> 0.8; class2 P=1 R=1/2 -> 2/3
    assert macro_f1(y, p) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert confusion_matrix(y, p, 4).tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_topk_with_ties_goes_against_the_true_class() -> None:
    scores = np.array([[0.5, 0.5, 0.1], [0.1, 0.2, 0.9], [0.3, 0.3, 0.3]])
    y = np.array([0, 1, 2])
    assert true_class_rank(y, scores).tolist() == [2, 2, 3]
    assert topk_accuracy(y, scores, 1) == 0.0
    assert topk_accuracy(y, scores, 2) == pytest.approx(2 / 3)
    assert topk_accuracy(y, scores, 5) == 1.0  # k larger than the class count


def test_against_sklearn_on_random_data() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 7, 300)
    scores = rng.normal(size=(300, 7)) + np.eye(7)[y] * 0.8
    p = scores.argmax(1)
    assert topk_accuracy(y, scores, 1) == pytest.approx(skm.accuracy_score(y, p))
    for k in (3, 5):
        assert topk_accuracy(y, scores, k) == pytest.approx(skm.top_k_accuracy_score(y, scores, k=k, labels=range(7)))
    stats = classification_statistics(y, p, 7, scores=scores, ks=(1, 5))
    for idx in (np.arange(300), rng.integers(0, 300, 300)):
        assert stats["accuracy"](idx) == pytest.approx(skm.accuracy_score(y[idx], p[idx]))
        assert stats["acc@5"](idx) == pytest.approx(skm.top_k_accuracy_score(y[idx], scores[idx], k=5, labels=range(7)))
        assert stats["mean_per_class_recall"](idx) == pytest.approx(skm.balanced_accuracy_score(y[idx], p[idx]))
        assert stats["macro_f1"](idx) == pytest.approx(skm.f1_score(y[idx], p[idx], average="macro", zero_division=0))


def test_macro_f1_statistic_with_a_class_only_predicted() -> None:
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 2, 1, 1])  # class 2 never true but predicted once -> F1 0 counted like sklearn
    stats = classification_statistics(y, p, 3)
    assert stats["macro_f1"](np.arange(4)) == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))


def test_classification_report_names_classes() -> None:
    rep = classification_report([0, 1, 1], [0, 1, 0], ["cat", "dog"])
    assert rep["cat"]["recall"] == pytest.approx(1.0)
    assert rep["dog"]["recall"] == pytest.approx(0.5)
    assert rep["dog"]["support"] == 2


def test_multilabel_map_by_hand_and_vs_sklearn() -> None:
    t = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    s = np.array([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6], [0.1, 0.1]])
    # class0 ranking 0.9(+) 0.8(-) 0.3(+) 0.1(-): AP = (1/1 + 2/3)/2 = 5/6; class1 0.7(+) 0.6(+): AP = 1
    assert mean_average_precision(t, s) == pytest.approx((5 / 6 + 1.0) / 2)
    stats = multilabel_statistics(t, s)
    assert stats["mAP"](np.arange(4)) == pytest.approx(skm.average_precision_score(t, s, average="macro"))
    assert stats["macro_f1"](np.arange(4)) == pytest.approx(skm.f1_score(t, s >= 0.5, average="macro"))
