"""Linear probe: logistic regression on frozen, cached embeddings.

The inverse regularisation strength C is chosen on the validation split (or on a seeded,
stratified 20% of train when the data has no validation split); the chosen C is refit on
train + validation and scored on the evaluation split.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from polymodal.errors import DataError
from polymodal.metrics import DEFAULT_BOOTSTRAP, classification_statistics, confusion_matrix
from polymodal.tasks.cache import EmbeddingCache, Encoder, Progress, normalize
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import TaskResult, metrics_with_intervals

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def fit_probe(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> LogisticRegression:
    """A logistic-regression probe at one C (the linear-probe and few-shot tasks' classifier)."""
    clf = LogisticRegression(C=c, max_iter=1000, random_state=seed)
    with warnings.catch_warnings():
        # a C at the edge of the grid may stop at max_iter; its val score still ranks it fairly
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    return clf


def run_linear_probe(
    model: Any,
    data: EvalData,
    split: str = "test",
    *,
    modality: str | None = None,
    label_column: str = "label",
    train_split: str = "train",
    val_split: str = "val",
    c_grid: tuple[float, ...] = C_GRID,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> TaskResult:
    class_names = data.class_names(label_column)
    index = {c: i for i, c in enumerate(class_names)}
    encoder = Encoder(model, cache, batch_size, progress)

    def split_xy(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        rows = [r for r in data.split_rows(name) if r.get(label_column) not in (None, "")]
        if not rows:
            raise DataError(f"{data.name}: no labelled rows in split {name!r}")
        if any(isinstance(r[label_column], list) for r in rows):
            raise DataError(f"{data.name}: the linear probe needs one label per row in {label_column!r}")
        mod = modality or data.media_modality(rows)
        x = normalize(encoder.embed(mod, [data.item(r, mod, i) for i, r in enumerate(rows)]))
        y = np.array([index[str(r[label_column])] for r in rows], dtype=np.int64)
        return x, y, [str(r.get("id", i)) for i, r in enumerate(rows)]

    x_tr, y_tr, _ = split_xy(train_split)
    if data.has_split(val_split):
        x_va, y_va, _ = split_xy(val_split)
        val_source = val_split
    else:
        stratify = y_tr if np.bincount(y_tr).min(initial=2) >= 2 else None
        x_tr, x_va, y_tr, y_va = train_test_split(x_tr, y_tr, test_size=0.2, random_state=seed, stratify=stratify)
        val_source = f"20% of {train_split}"
    if len(np.unique(y_tr)) < 2:
        raise DataError(f"{data.name}: the linear probe needs at least two classes in {train_split!r}")
    val_scores = {c: float((fit_probe(x_tr, y_tr, c, seed).predict(x_va) == y_va).mean()) for c in c_grid}
    best_c = max(c_grid, key=lambda c: (val_scores[c], -abs(np.log10(c))))  # ties: the middle of the grid
    clf = fit_probe(np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va]), best_c, seed)

    x_te, y_te, ids = split_xy(split)
    # predict_proba columns follow clf.classes_; spread them into the full label space
    proba = np.zeros((len(x_te), len(class_names)))
    proba[:, clf.classes_] = clf.predict_proba(x_te)
    pred = clf.classes_[clf.predict_proba(x_te).argmax(axis=1)]
    stats = classification_statistics(y_te, pred, len(class_names), scores=proba, ks=())
    metrics, kept = metrics_with_intervals(
        {k: stats[k] for k in ("accuracy", "mean_per_class_recall", "macro_f1")}, ids, n_boot=n_boot, seed=seed
    )
    details = {
        "class_names": class_names,
        "C": best_c,
        "val_accuracy_by_C": {str(c): v for c, v in val_scores.items()},
        "validation": val_source,
        "n_train": len(y_tr) + len(y_va),
        "n": len(y_te),
        "confusion_matrix": confusion_matrix(y_te, pred, len(class_names)),
    }
    return TaskResult("linear-probe", metrics, details, kept, data=data.name, split=split)


LINEAR_PROBE_TASK = Task(
    name="linear-probe",
    description="logistic regression on frozen cached embeddings, C chosen on the validation split",
    metrics=("accuracy", "mean_per_class_recall", "macro_f1"),
    run=run_linear_probe,
)
