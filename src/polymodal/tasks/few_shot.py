"""Few-shot classification: K labelled items per class, several seeded draws, three classifiers.

For each K in ``shots`` and each of ``draws`` seeded draws, K rows per class are taken from
the support split (``train_split``) and a classifier is fitted on their frozen embeddings:

- ``prototype``: nearest class mean (each support embedding normalised, averaged, renormalised;
  the query goes to the class of highest cosine), as in Prototypical Networks.
- ``linear-probe``: scikit-learn's logistic regression at a fixed ``C`` (no validation split is
  left to tune it with one item per class).
- ``zeroshot-prior`` (dual encoders with a text tower): the class prompts act as a prior. Per
  query the zero-shot cosines (class names through the dataset's templates, as the zero-shot
  task builds them) and the prototype cosines are each standardised across classes and mixed
  as ``w * z(zero-shot) + (1 - w) * z(prototype)`` with ``w = prior_weight / (prior_weight + K)``:
  the prompts count as ``prior_weight`` shots, so one shot leans on them and ten on the images.

Each metric ``<method>/<K>-shot/accuracy`` is the mean over draws with a 95% Student-t
interval over draws (the spread a user sees by drawing another K). Its per-sample statistic is
the accuracy on the resampled test items averaged over the same draws, so ``compare`` pairs two
models on the same test items and the same support draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from polymodal.errors import DataError
from polymodal.metrics import Metric, Statistic
from polymodal.tasks.cache import EmbeddingCache, Encoder, Progress, normalize
from polymodal.tasks.data import EvalData
from polymodal.tasks.linear_probe import fit_probe
from polymodal.tasks.registry import Task
from polymodal.tasks.result import SampleStatistic, TaskResult
from polymodal.tasks.templates import templates_for
from polymodal.tasks.zeroshot import class_embeddings

DEFAULT_SHOTS = (1, 5, 10)
METHODS = ("prototype", "linear-probe", "zeroshot-prior")


def draw_support(labels: np.ndarray, names: list[str], k: int, seed: int, where: str) -> np.ndarray:
    """Indices of ``k`` rows per class (sorted by class, then draw order), drawn without replacement."""
    rng = np.random.default_rng(seed)
    picked = []
    for c, name in enumerate(names):
        pool = np.flatnonzero(labels == c)
        if len(pool) < k:
            raise DataError(f"{where}: class {name!r} has {len(pool)} labelled rows, fewer than {k} shots "
                            "(every class of the label column needs K support rows; pick another column or fewer shots)")
        picked.append(rng.choice(pool, size=k, replace=False))
    return np.concatenate(picked)


def t_interval(values: list[float], alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean and its two-sided Student-t interval; one value gives a collapsed interval."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = float(scipy_stats.t.ppf(1 - alpha / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


def _standardise(scores: np.ndarray) -> np.ndarray:
    sd = scores.std(axis=1, keepdims=True)
    return (scores - scores.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)


def _prototypes(x: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    return normalize(np.stack([x[y == c].mean(axis=0) for c in range(num_classes)]))


def _linear_probe(x: np.ndarray, y: np.ndarray, q: np.ndarray, c: float, seed: int) -> np.ndarray:
    clf = fit_probe(x, y, c, seed)
    return np.asarray(clf.classes_[clf.predict_proba(q).argmax(axis=1)])


def _mean_over(table: np.ndarray) -> Statistic:
    return lambda idx: float(table[idx].mean())


def _with_prior(model: Any, modality: str, prior: bool | None) -> bool:
    if prior is not None:
        return prior
    return modality != "text" and "text" in (getattr(model, "modalities", None) or ())


def run_few_shot(
    model: Any,
    data: EvalData,
    split: str = "test",
    *,
    shots: int | list[int] | tuple[int, ...] = DEFAULT_SHOTS,
    draws: int = 5,
    methods: list[str] | tuple[str, ...] | None = None,
    prior: bool | None = None,
    prior_weight: float = 1.0,
    templates: list[str] | None = None,
    lang: str = "en",
    c: float = 1.0,
    modality: str | None = None,
    label_column: str = "label",
    train_split: str = "train",
    n_boot: int = 0,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> TaskResult:
    del n_boot  # the interval is over draws; the per-sample statistic serves compare's paired test
    ks = sorted({int(k) for k in ([shots] if isinstance(shots, int) else shots)})
    if not ks or ks[0] < 1:
        raise DataError(f"few-shot needs shots >= 1 per class, got {shots}")
    if draws < 1:
        raise DataError(f"few-shot needs at least one draw, got {draws}")
    class_names = data.class_names(label_column)
    index = {name: i for i, name in enumerate(class_names)}

    def labelled(name: str) -> list[dict[str, Any]]:
        rows = [r for r in data.split_rows(name) if r.get(label_column) not in (None, "")]
        if not rows:
            raise DataError(f"{data.name}: no rows with a {label_column!r} label in split {name!r}")
        if any(isinstance(r[label_column], list) for r in rows):
            raise DataError(f"{data.name}: few-shot needs one label per row, {label_column!r} has lists")
        return rows

    pool_rows, test_rows = labelled(train_split), labelled(split)
    modality = modality or data.media_modality(test_rows)
    use_prior = _with_prior(model, modality, prior)
    chosen = list(methods) if methods else [m for m in METHODS if m != "zeroshot-prior" or use_prior]
    unknown = sorted(set(chosen) - set(METHODS))
    if unknown:
        raise DataError(f"unknown few-shot method(s) {unknown}; known: {', '.join(METHODS)}")
    y_pool = np.array([index[str(r[label_column])] for r in pool_rows], dtype=np.int64)
    y_test = np.array([index[str(r[label_column])] for r in test_rows], dtype=np.int64)
    n_cls = len(class_names)

    # every draw first, so only the rows some draw uses are embedded (once, in pool order)
    where = f"{data.name} split {train_split!r}"
    support = {(k, d): draw_support(y_pool, class_names, k, seed + d, where) for k in ks for d in range(draws)}
    used = np.unique(np.concatenate(list(support.values())))
    encoder = Encoder(model, cache, batch_size, progress)
    x_used = normalize(encoder.embed(modality, [data.item(pool_rows[i], modality, int(i)) for i in used]))
    position = {int(i): j for j, i in enumerate(used)}
    queries = normalize(encoder.embed(modality, [data.item(r, modality, i) for i, r in enumerate(test_rows)]))
    zs_scores = None
    chosen_templates = tuple(templates) if templates else templates_for(data.name, lang)
    if "zeroshot-prior" in chosen:
        zs_scores = _standardise(queries @ class_embeddings(encoder, class_names, chosen_templates, lang, data.name).T)

    correct: dict[str, list[np.ndarray]] = {}
    for (k, d), rows in support.items():
        x = x_used[[position[int(i)] for i in rows]]
        y = y_pool[rows]
        proto = queries @ _prototypes(x, y, n_cls).T
        for method in chosen:
            if method == "prototype":
                pred = proto.argmax(axis=1)
            elif method == "linear-probe":
                pred = _linear_probe(x, y, queries, c, seed + d)
            else:
                assert zs_scores is not None
                w = prior_weight / (prior_weight + k)
                pred = (w * zs_scores + (1 - w) * _standardise(proto)).argmax(axis=1)
            correct.setdefault(f"{method}/{k}-shot/accuracy", []).append((pred == y_test).astype(np.float64))

    ids = [str(r.get("id", i)) for i, r in enumerate(test_rows)]
    metrics: dict[str, Metric] = {}
    statistics: dict[str, SampleStatistic] = {}
    per_draw: dict[str, list[float]] = {}
    for name, hits in correct.items():
        per_draw[name] = [float(h.mean()) for h in hits]
        mean, low, high = t_interval(per_draw[name])
        metrics[name] = Metric(mean, low, high, True, len(ids))
        table = np.stack(hits).mean(axis=0)  # per test item: its accuracy over the draws
        statistics[name] = SampleStatistic(ids=ids, statistic=_mean_over(table))
    details = {
        "class_names": class_names,
        "shots": ks,
        "draws": draws,
        "methods": chosen,
        "interval": "95% Student-t over draws",
        "accuracy_per_draw": per_draw,
        "support_split": train_split,
        "support_rows_embedded": len(used),
        "C": c,
        "modality": modality,
        "n": len(ids),
    }
    if "zeroshot-prior" in chosen:
        details.update(prior_weight=prior_weight, templates=list(chosen_templates), lang=lang)
    return TaskResult("few-shot", metrics, details, statistics, data=data.name, split=split)


FEW_SHOT_TASK = Task(
    name="few-shot",
    description="K labelled items per class (seeded draws): prototype, linear probe, and zero-shot prompts as a "
                "prior (dual encoders); mean and t-interval over draws",
    metrics=("<method>/<K>-shot/accuracy",),
    run=run_few_shot,
)
