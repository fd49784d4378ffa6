"""Classification with a fine-tuned model's own head (FusionModel / classifier).

Single-label heads: accuracy, macro-F1 and mean per-class recall with intervals, plus
scikit-learn's classification report and a confusion matrix in ``details``. Multi-label
heads (a list-valued label column): mAP and macro/micro F1 at probability 0.5.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.errors import DataError, ModelError
from polymodal.metrics import (
    DEFAULT_BOOTSTRAP,
    classification_report,
    classification_statistics,
    confusion_matrix,
    multilabel_statistics,
)
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import TaskResult, metrics_with_intervals


def classification_result(
    targets: np.ndarray,
    scores: np.ndarray,
    class_names: list[str],
    ids: list[str],
    *,
    multilabel: bool = False,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    data: str = "",
    split: str = "",
) -> TaskResult:
    """Metrics from targets (class indices, or multi-hot for multi-label) and scores (n, classes).

    Multi-label scores are probabilities; single-label scores may be logits.
    """
    if multilabel:
        stats = multilabel_statistics(targets, scores)
        metrics, kept = metrics_with_intervals(stats, ids, n_boot=n_boot, seed=seed)
        details: dict[str, Any] = {"class_names": class_names, "multilabel": True, "n": len(ids)}
    else:
        pred = scores.argmax(axis=1)
        stats = classification_statistics(targets, pred, len(class_names))
        wanted = {k: stats[k] for k in ("accuracy", "macro_f1", "mean_per_class_recall")}
        metrics, kept = metrics_with_intervals(wanted, ids, n_boot=n_boot, seed=seed)
        details = {
            "class_names": class_names,
            "multilabel": False,
            "n": len(ids),
            "confusion_matrix": confusion_matrix(targets, pred, len(class_names)),
            "report": classification_report(targets, pred, class_names),
        }
    return TaskResult("classification", metrics, details, kept, data=data, split=split)


def _label_space(model: Any, data: EvalData, column: str) -> list[str]:
    """The class names the model's head was trained with (``head.labels``), else the data's."""
    heads = getattr(model, "heads", None)
    head = heads[column] if heads is not None and column in heads else None
    labels = getattr(head, "labels", None)
    if labels:
        return [str(c) for c in labels]
    spaces = getattr(model, "label_spaces", None)
    if isinstance(spaces, dict) and column in spaces:
        return [str(c) for c in spaces[column]]
    return data.class_names(column)


def predict_scores(
    model: Any, data: EvalData, rows: list[dict[str, Any]], column: str, label_space: list[str], batch_size: int,
    progress: Any = None,
) -> np.ndarray:
    """Run ``model(batch).logits[column]`` over rows batched through the data layer's collate;
    ``progress(name, done, total)`` after each batch (name: the model's input modalities)."""
    import torch

    from polymodal.config import DataConfig
    from polymodal.data.loader import MultimodalDataset, make_collate

    processors = getattr(model, "processors", None)
    if not isinstance(processors, dict):
        raise ModelError("the classification task needs a model with a head (FusionModel / classifier)")
    modalities = list(getattr(model, "inputs", None) or processors)
    spaces = {column: label_space}
    # read the columns the model was trained on (e.g. text from "question"), not the defaults
    columns = dict(getattr(model, "input_columns", None) or {})
    dataset = MultimodalDataset(rows, data.root, modalities, spaces, DataConfig(columns=columns))
    collate = make_collate({m: processors[m] for m in modalities}, spaces)
    outs: list[np.ndarray] = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch = collate([dataset[i] for i in range(start, min(start + batch_size, len(rows)))])
            logits = getattr(model(batch), "logits", None)
            if not isinstance(logits, dict):  # an embedding model reached here past the registry's check
                raise ModelError(f"{type(model).__name__} has no classification head (its output has no logits)")
            if column not in logits:
                raise ModelError(f"the model has no head for label column {column!r} (heads: {', '.join(logits)})")
            outs.append(logits[column].float().cpu().numpy())
            if progress is not None:
                progress("+".join(modalities), min(start + batch_size, len(rows)), len(rows))
    return np.concatenate(outs, axis=0)


def default_label_column(model: Any) -> str:
    """The column of a model's only head (e.g. ``answer``), else ``label``."""
    heads = getattr(model, "heads", None)
    names = list(heads.keys()) if heads is not None else []
    return names[0] if len(names) == 1 else "label"


def run_classification(
    model: Any,
    data: EvalData,
    split: str = "test",
    *,
    label_column: str | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    batch_size: int = 32,
    cache: Any = None,  # predictions come from the head, not cached embeddings
    progress: Any = None,
) -> TaskResult:
    label_column = label_column or default_label_column(model)
    rows = [r for r in data.split_rows(split) if r.get(label_column) not in (None, "")]
    if not rows:
        raise DataError(f"{data.name}: no rows with a {label_column!r} label in split {split!r}")
    names = _label_space(model, data, label_column)
    index = {c: i for i, c in enumerate(names)}
    multilabel = any(isinstance(r[label_column], list) for r in rows)
    unknown = sorted({str(v) for r in rows for v in (r[label_column] if multilabel else [r[label_column]])} - set(index))
    if unknown:
        raise DataError(f"{data.name}: labels {unknown[:5]} are not in the model's label space")
    scores = predict_scores(model, data, rows, label_column, names, batch_size, progress)
    if multilabel:
        targets = np.zeros((len(rows), len(names)), dtype=np.int64)
        for i, r in enumerate(rows):
            targets[i, [index[str(v)] for v in r[label_column]]] = 1
        scores = 1.0 / (1.0 + np.exp(-scores))
    else:
        targets = np.array([index[str(r[label_column])] for r in rows], dtype=np.int64)
    ids = [str(r.get("id", i)) for i, r in enumerate(rows)]
    return classification_result(
        targets, scores, names, ids, multilabel=multilabel, n_boot=n_boot, seed=seed, data=data.name, split=split
    )


CLASSIFICATION_TASK = Task(
    name="classification",
    description="a fine-tuned model's head predictions; multi-label columns give mAP and F1",
    metrics=("accuracy", "macro_f1", "mean_per_class_recall", "(multi-label: mAP, macro_f1, micro_f1)"),
    run=run_classification,
    needs="logits",
)
