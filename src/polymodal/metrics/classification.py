"""Classification metrics: thin wrappers over scikit-learn, plus fast index-based statistics.

The point values come from scikit-learn where it has the metric. Bootstrap needs the same
metric recomputed ~1000 times, so each metric also has a statistic over sample indices
built on a confusion matrix counted with ``np.bincount`` (tests check both agree).

Ties in scores are broken *against* the true class (a class tied with the true one counts
as ranked above it), so a model that outputs constant scores earns no credit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from polymodal.metrics.bootstrap import Statistic


def _as_labels(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-d array of class indices, got shape {arr.shape}")
    return arr.astype(np.int64)


def accuracy(y_true: Any, y_pred: Any) -> float:
    return float(skm.accuracy_score(_as_labels(y_true), _as_labels(y_pred)))


def true_class_rank(y_true: Any, scores: Any) -> np.ndarray:
    """1-based rank of the true class in each row of ``scores`` (ties count against it)."""
    s = np.asarray(scores, dtype=np.float64)
    y = _as_labels(y_true)
    if s.ndim != 2 or s.shape[0] != y.shape[0]:
        raise ValueError(f"scores must be (n, classes) with n={y.shape[0]}, got {s.shape}")
    true_score = s[np.arange(len(y)), y][:, None]
    others = s >= true_score
    others[np.arange(len(y)), y] = False
    return 1 + others.sum(axis=1)


def topk_accuracy(y_true: Any, scores: Any, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` highest scores (acc@k)."""
    return float(np.mean(true_class_rank(y_true, scores) <= k))


def mean_per_class_recall(y_true: Any, y_pred: Any) -> float:
    """Mean over the classes present in ``y_true`` of their recall (= balanced accuracy)."""
    return float(skm.balanced_accuracy_score(_as_labels(y_true), _as_labels(y_pred)))


def macro_f1(y_true: Any, y_pred: Any) -> float:
    """Unweighted mean F1 over the classes seen in ``y_true`` or ``y_pred``."""
    return float(skm.f1_score(_as_labels(y_true), _as_labels(y_pred), average="macro", zero_division=0))


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class, over all ``num_classes`` classes."""
    return skm.confusion_matrix(_as_labels(y_true), _as_labels(y_pred), labels=list(range(num_classes)))


def classification_report(y_true: Any, y_pred: Any, class_names: list[str]) -> dict[str, Any]:
    """scikit-learn's per-class precision/recall/F1/support report as a dict."""
    report = skm.classification_report(
        _as_labels(y_true),
        _as_labels(y_pred),
        labels=list(range(len(class_names))),
        target_names=class_names,
        output_dict=True,
        zero_division=0,
    )
    return dict(report)  # type: ignore[arg-type]


def mean_average_precision(y_true: Any, scores: Any) -> float:
    """Multi-label mAP: mean over classes with at least one positive of the average precision."""
    t = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if t.shape != s.shape or t.ndim != 2:
        raise ValueError(f"multi-label targets and scores must both be (n, classes); got {t.shape}, {s.shape}")
    present = t.sum(axis=0) > 0
    if not present.any():
        return float("nan")
    return float(skm.average_precision_score(t[:, present], s[:, present], average="macro"))


def multilabel_f1(y_true: Any, y_pred: Any, average: str = "macro") -> float:
    return float(skm.f1_score(np.asarray(y_true), np.asarray(y_pred), average=average, zero_division=0))


# --------------------------------------------------------------------------- statistics for bootstrap
def _confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, c: int) -> np.ndarray:
    return np.bincount(y_true * c + y_pred, minlength=c * c).reshape(c, c)


def _recall_from_cm(cm: np.ndarray) -> float:
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def _macro_f1_from_cm(cm: np.ndarray) -> float:
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    seen = (support + predicted) > 0  # scikit-learn's default label set: union of y_true and y_pred
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(np.mean(f1[seen]))


def classification_statistics(
    y_true: Any, y_pred: Any, num_classes: int, scores: Any | None = None, ks: tuple[int, ...] = ()
) -> dict[str, Statistic]:
    """Index statistics for accuracy, acc@k (needs ``scores``), mean per-class recall, macro-F1."""
    y = _as_labels(y_true)
    p = _as_labels(y_pred)
    c = max(num_classes, int(y.max(initial=0)) + 1, int(p.max(initial=0)) + 1)
    correct = (y == p).astype(np.float64)
    stats: dict[str, Statistic] = {"accuracy": lambda idx: float(correct[idx].mean())}
    if scores is not None:
        ranks = true_class_rank(y, scores)
        for k in ks:
            hits = (ranks <= k).astype(np.float64)
            stats[f"acc@{k}"] = lambda idx, h=hits: float(h[idx].mean())  # type: ignore[misc]
    stats["mean_per_class_recall"] = lambda idx: _recall_from_cm(_confusion_counts(y[idx], p[idx], c))
    stats["macro_f1"] = lambda idx: _macro_f1_from_cm(_confusion_counts(y[idx], p[idx], c))
    return stats


def multilabel_statistics(y_true: Any, scores: Any, threshold: float = 0.5) -> dict[str, Statistic]:
    """Index statistics for multi-label mAP and macro/micro F1 at ``threshold`` on probabilities."""
    t = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    pred = (s >= threshold).astype(np.int64)
    return {
        "mAP": lambda idx: mean_average_precision(t[idx], s[idx]),
        "macro_f1": lambda idx: multilabel_f1(t[idx], pred[idx], "macro"),
        "micro_f1": lambda idx: multilabel_f1(t[idx], pred[idx], "micro"),
    }
