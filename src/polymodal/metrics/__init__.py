"""Metrics: thin wrappers over scikit-learn plus bootstrap intervals and paired tests."""

from __future__ import annotations

from polymodal.metrics.bootstrap import (
    DEFAULT_BOOTSTRAP,
    Metric,
    PairedTest,
    Statistic,
    bootstrap_metric,
    paired_bootstrap,
)
from polymodal.metrics.classification import (
    accuracy,
    classification_report,
    classification_statistics,
    confusion_matrix,
    macro_f1,
    mean_average_precision,
    mean_per_class_recall,
    multilabel_f1,
    multilabel_statistics,
    topk_accuracy,
    true_class_rank,
)
from polymodal.metrics.retrieval import (
    first_positive_rank,
    mean_rank,
    median_rank,
    recall_at_k,
    retrieval_statistics,
    top_k_indices,
)

# metrics where a smaller value is better (the leaderboard marks the minimum as best)
LOWER_IS_BETTER = frozenset({"mean_rank", "median_rank", "wer", "cer", "ser"})

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "LOWER_IS_BETTER",
    "Metric",
    "PairedTest",
    "Statistic",
    "accuracy",
    "bootstrap_metric",
    "classification_report",
    "classification_statistics",
    "confusion_matrix",
    "first_positive_rank",
    "macro_f1",
    "mean_average_precision",
    "mean_per_class_recall",
    "mean_rank",
    "median_rank",
    "multilabel_f1",
    "multilabel_statistics",
    "paired_bootstrap",
    "recall_at_k",
    "retrieval_statistics",
    "top_k_indices",
    "topk_accuracy",
    "true_class_rank",
]
