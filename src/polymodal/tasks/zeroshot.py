"""Zero-shot classification: class names through prompt templates, nearest class embedding.

acc@1, acc@5 (only with >= 5 classes) and mean per-class recall, each with a bootstrap
95% interval. Queries are the rows' media (image by default; audio or video when that
is what the rows hold).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.errors import DataError
from polymodal.metrics import DEFAULT_BOOTSTRAP, classification_statistics, confusion_matrix
from polymodal.tasks.cache import EmbeddingCache, Encoder, Progress, normalize
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import TaskResult, metrics_with_intervals
from polymodal.tasks.templates import class_prompt_name, templates_for


def class_embeddings(encoder: Encoder, class_names: list[str], templates: tuple[str, ...] | list[str],
                     lang: str = "en", dataset: str | None = None) -> np.ndarray:
    """(classes, d): per class, normalise each template embedding, average, renormalise.
    ``lang``/``dataset`` pick how a class is named in the prompt (``class_prompt_name``)."""
    if not templates:
        raise DataError("zero-shot needs at least one prompt template")
    for t in templates:
        if "{}" not in t:
            raise DataError(f"prompt template {t!r} has no '{{}}' for the class name")
    prompts = [t.format(class_prompt_name(c, lang, dataset)) for c in class_names for t in templates]
    emb = normalize(encoder.embed("text", prompts)).reshape(len(class_names), len(templates), -1)
    return normalize(emb.mean(axis=1))


def run_zeroshot(
    model: Any,
    data: EvalData,
    split: str = "test",
    *,
    templates: list[str] | None = None,
    lang: str = "en",
    modality: str | None = None,
    label_column: str = "label",
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> TaskResult:
    rows = [r for r in data.split_rows(split) if r.get(label_column) not in (None, "")]
    if not rows:
        raise DataError(f"{data.name}: no rows with a {label_column!r} label in split {split!r}")
    modality = modality or data.media_modality(rows)
    class_names = data.class_names(label_column)
    if any(isinstance(r[label_column], list) for r in rows):
        raise DataError(f"{data.name}: zero-shot classification needs one label per row, {label_column!r} has lists")
    index = {c: i for i, c in enumerate(class_names)}
    y = np.array([index[str(r[label_column])] for r in rows], dtype=np.int64)
    chosen = tuple(templates) if templates else templates_for(data.name, lang)

    encoder = Encoder(model, cache, batch_size, progress)
    classes = class_embeddings(encoder, class_names, chosen, lang, data.name)
    queries = normalize(encoder.embed(modality, [data.item(r, modality, i) for i, r in enumerate(rows)]))
    scores = queries @ classes.T
    pred = scores.argmax(axis=1)

    ks = (1, 5) if len(class_names) >= 5 else (1,)
    stats = classification_statistics(y, pred, len(class_names), scores=scores, ks=ks)
    wanted = {f"acc@{k}": stats[f"acc@{k}"] for k in ks}
    wanted["mean_per_class_recall"] = stats["mean_per_class_recall"]
    ids = [str(r.get("id", i)) for i, r in enumerate(rows)]
    metrics, kept = metrics_with_intervals(wanted, ids, n_boot=n_boot, seed=seed)
    details = {
        "class_names": class_names,
        "templates": list(chosen),
        "lang": lang,
        "modality": modality,
        "n": len(rows),
        "confusion_matrix": confusion_matrix(y, pred, len(class_names)),
    }
    return TaskResult("zeroshot-classification", metrics, details, kept, data=data.name, split=split)


ZEROSHOT_TASK = Task(
    name="zeroshot-classification",
    description="class names through prompt templates (averaged as CLIP does); nearest class wins",
    metrics=("acc@1", "acc@5 (>= 5 classes)", "mean_per_class_recall"),
    run=run_zeroshot,
)
