"""Caption metrics: BLEU-4 (sacrebleu), CIDEr (pycocoevalcap, where Java runs its tokenizer) and,
for ``shapes`` scenes, attribute accuracy read from the caption with the dataset's own vocabulary.

Each returns per-sample values or a statistic over sample indices, so the task layer puts a
bootstrap interval on it like any other metric.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polymodal.data.builtin import _draw as draw
from polymodal.data.builtin.shapes import RELATIONS
from polymodal.errors import PolymodalError
from polymodal.metrics.bootstrap import Statistic

COLORS: tuple[str, ...] = tuple(sorted(draw.COLORS))
SHAPES: tuple[str, ...] = tuple(draw.SHAPES)
_MENTION = re.compile(rf"\b({'|'.join(COLORS)})\s+({'|'.join(SHAPES)})\b")
# longest first: "to the left of" must not be read as something shorter
_RELATION = re.compile(rf"\b({'|'.join(sorted(RELATIONS, key=len, reverse=True))})\b")


# --------------------------------------------------------------------------- BLEU
def _sacrebleu() -> Any:
    try:
        import sacrebleu
    except ModuleNotFoundError:
        raise PolymodalError("caption metrics need sacrebleu: pip install 'polymodal[generate]'") from None
    return sacrebleu


def bleu_statistic(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> Statistic:
    """Corpus BLEU-4 (sacrebleu's default 13a tokenization, 0-100) of any subset of the samples.

    Per-sample n-gram counts are extracted once; a subset sums them, so the bootstrap interval
    costs sums, not re-tokenizations (the same counts ``corpus_score`` would sum).
    """
    bleu = _sacrebleu().metrics.BLEU()
    refs = [list(r) for r in references]
    width = max(len(r) for r in refs)
    # sacrebleu wants one stream per reference position; a sample with fewer repeats its first
    streams = [[r[k] if k < len(r) else r[0] for r in refs] for k in range(width)]
    stats = np.asarray(bleu._extract_corpus_statistics(list(hypotheses), streams), dtype=np.float64)

    def statistic(idx: np.ndarray) -> float:
        return float(bleu._compute_score_from_stats(stats[idx].sum(0).tolist()).score)

    return statistic


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """sacrebleu's own corpus BLEU (what ``bleu_statistic`` reproduces on all samples)."""
    width = max(len(r) for r in references)
    streams = [[r[k] if k < len(r) else r[0] for r in references] for k in range(width)]
    return float(_sacrebleu().corpus_bleu(list(hypotheses), streams).score)


# --------------------------------------------------------------------------- CIDEr
def java_available() -> bool:
    return shutil.which("java") is not None


def cider_scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> np.ndarray | None:
    """Per-sample CIDEr-D (pycocoevalcap, PTB-tokenized by its Java tokenizer), or None without Java.

    The document frequencies come from all the references at once (as the COCO evaluation does);
    the interval then resamples the per-sample scores with those frequencies fixed.
    """
    if not java_available():
        return None
    try:
        import pycocoevalcap  # noqa: F401
    except ModuleNotFoundError:
        raise PolymodalError("CIDEr needs pycocoevalcap: pip install 'polymodal[generate]'") from None
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{"caption": c} for c in refs] for i, refs in enumerate(references)})
    res = tok.tokenize({i: [{"caption": h}] for i, h in enumerate(hypotheses)})
    _, per_sample = Cider().compute_score(gts, res)
    return np.asarray(per_sample, dtype=np.float64)


# --------------------------------------------------------------------------- shapes attributes
@dataclass(frozen=True)
class SceneReading:
    """What a caption says about a ``shapes`` scene: objects in caption order and the relation."""

    objects: tuple[tuple[str, str], ...]
    relation: str | None


def read_caption(text: str) -> SceneReading:
    """The ("colour", "shape") mentions of a caption, in order, and the first relation phrase."""
    lower = text.lower()
    objects = tuple((m.group(1), m.group(2)) for m in _MENTION.finditer(lower))
    rel = _RELATION.search(lower)
    return SceneReading(objects, rel.group(1) if rel else None)


@dataclass(frozen=True)
class AttributeScore:
    """One caption against its scene: correct and total attribute slots, and whether all are right.

    Slots: each object's colour and shape, by caption position (the main object first), and the
    relation of the first two objects when the scene has two or more. A caption naming more
    objects than the scene holds adds its extra ones as wrong slots.
    """

    correct: int
    total: int
    exact: bool
    # held-out (colour, shape) pairs of the scene, and how many the caption named at their place
    heldout_named: int = 0
    heldout_total: int = 0
    # the relation slot alone (None: the scene has one object, so there is no relation to say)
    relation_right: bool | None = None


def score_caption(generated: str, truth_objects: Sequence[tuple[str, str]], truth_relation: str | None,
                  heldout: frozenset[tuple[str, str]] = frozenset()) -> AttributeScore:
    said = read_caption(generated)
    truth = list(truth_objects)
    correct = total = 0
    for k in range(max(len(truth), len(said.objects))):
        total += 2
        if k < len(truth) and k < len(said.objects):
            correct += int(said.objects[k][0] == truth[k][0]) + int(said.objects[k][1] == truth[k][1])
    relation_right = None
    if len(truth) >= 2:
        total += 1
        relation_right = said.relation == truth_relation
        correct += int(relation_right)
    held = [k for k, obj in enumerate(truth) if obj in heldout]
    named = sum(1 for k in held if k < len(said.objects) and said.objects[k] == truth[k])
    return AttributeScore(correct, total, correct == total, named, len(held), relation_right)


def parse_objects(values: Sequence[str]) -> list[tuple[str, str]]:
    """A ``shapes`` row's ``objects`` column ("red circle", ...) as (colour, shape) pairs."""
    out = []
    for v in values:
        color, _, shape = str(v).partition(" ")
        out.append((color, shape))
    return out
