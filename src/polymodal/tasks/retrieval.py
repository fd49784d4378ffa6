"""Cross-modal retrieval: media (image / audio / video) <-> text, recall@k both directions.

Rows sharing a media file form one gallery item with several captions; a row's ``text``
may also be a list of captions. media->text: a query is a hit when ANY of its captions
is in the top k; text->media: each caption has one positive. Metrics are prefixed with the
direction, e.g. ``image_to_text/R@1`` and ``text_to_image/median_rank``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.errors import DataError
from polymodal.metrics import DEFAULT_BOOTSTRAP, first_positive_rank, retrieval_statistics, top_k_indices
from polymodal.tasks.cache import EmbeddingCache, Encoder, Progress, normalize
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import TaskResult, metrics_with_intervals
from polymodal.tasks.templates import check_lang

EXAMPLES = 8  # queries per direction kept in details for the report's retrieval grid


def text_column(lang: str) -> str:
    """The caption column a language queries with: ``text`` for English, ``text_<lang>`` otherwise
    (the built-in ``shapes`` set carries ``text_zh``)."""
    check_lang(lang)
    return "text" if lang == "en" else f"text_{lang}"


def build_pairs(data: EvalData, rows: list[dict[str, Any]], modality: str,
                column: str = "text") -> tuple[list[str], list[str], list[str], np.ndarray]:
    """(media items, captions, caption ids, positives (media, captions)) from rows with both columns.

    A caption's id is its row's id (``#k`` for the k-th of a list), so the same rows queried in
    another language give the same ids and ``compare`` can pair them."""
    media: list[str] = []
    media_index: dict[str, int] = {}
    texts: list[str] = []
    text_ids: list[str] = []
    owner: list[int] = []
    for i, row in enumerate(rows):
        if row.get(modality) in (None, "") or row.get(column) in (None, ""):
            continue
        item = data.item(row, modality, i)
        if item not in media_index:
            media_index[item] = len(media)
            media.append(item)
        captions = row[column] if isinstance(row[column], list) else [row[column]]
        for k, caption in enumerate(captions):
            texts.append(str(caption))
            text_ids.append(f"{row.get('id', i)}#{k}")
            owner.append(media_index[item])
    if not media:
        raise DataError(f"{data.name}: no rows with both {modality!r} and {column!r} for retrieval")
    positives = np.zeros((len(media), len(texts)), dtype=bool)
    positives[np.asarray(owner), np.arange(len(texts))] = True
    return media, texts, text_ids, positives


def _examples(scores: np.ndarray, positives: np.ndarray, queries: list[str], gallery: list[str]) -> list[dict[str, Any]]:
    top = top_k_indices(scores[:EXAMPLES], 5)
    return [
        {
            "query": queries[q],
            "retrieved": [gallery[j] for j in top[q]],
            "hits": [bool(positives[q, j]) for j in top[q]],
        }
        for q in range(min(EXAMPLES, len(queries)))
    ]


def run_retrieval(
    model: Any,
    data: EvalData,
    split: str = "test",
    *,
    modality: str | None = None,
    ks: tuple[int, ...] = (1, 5, 10),
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    cache: EmbeddingCache | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
    lang: str = "en",
) -> TaskResult:
    """``lang``: the captions' language; other than ``en`` it reads ``text_<lang>`` (``text_column``)."""
    rows = data.split_rows(split)
    modality = modality or data.media_modality(rows)
    if modality == "text":
        raise DataError(f"{data.name}: retrieval needs an image, audio or video column beside 'text'")
    column = text_column(lang)
    media, texts, text_ids, positives = build_pairs(data, rows, modality, column)
    encoder = Encoder(model, cache, batch_size, progress)
    m_emb = normalize(encoder.embed(modality, media))
    t_emb = normalize(encoder.embed("text", texts))
    scores = m_emb @ t_emb.T

    metrics: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    directions = {
        f"{modality}_to_text": (scores, positives, media, texts),
        f"text_to_{modality}": (scores.T, positives.T, texts, media),
    }
    query_ids = {f"{modality}_to_text": media, f"text_to_{modality}": text_ids}
    for name, (s, pos, _queries, _gallery) in directions.items():
        ranks = first_positive_rank(s, pos)
        m, k = metrics_with_intervals(
            retrieval_statistics(ranks, ks), list(query_ids[name]), n_boot=n_boot, seed=seed, prefix=f"{name}/"
        )
        metrics.update(m)
        kept.update(k)
    details = {
        "modality": modality,
        "n_media": len(media),
        "n_texts": len(texts),
        "lang": lang,
        "text_column": column,
        "examples": {name: _examples(s, pos, q, g) for name, (s, pos, q, g) in directions.items()},
    }
    return TaskResult("retrieval", metrics, details, kept, data=data.name, split=split)


RETRIEVAL_TASK = Task(
    name="retrieval",
    description="media<->text retrieval (image, audio or video); any caption in the top k is a hit",
    metrics=("<m>_to_text/R@1,5,10", "text_to_<m>/R@1,5,10", "mean_rank", "median_rank"),
    run=run_retrieval,
)
