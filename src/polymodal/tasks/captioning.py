"""``captioning``: a model's generated captions against the data's reference captions.

BLEU-4 (sacrebleu) and CIDEr-D (pycocoevalcap; skipped with a note where Java is absent) with
bootstrap intervals. Rows that share an image pool their captions as its references. On
``shapes`` data (rows with ``objects``) the captions are also read for the scene's colours,
shapes and relation: attribute accuracy and exact scenes, on seen colour-shape combinations and
on the held-out ones (``heldout`` rows; ``dataset.json``'s ``heldout_combos``), which no
training scene contained.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np

from polymodal.errors import DataError
from polymodal.metrics import DEFAULT_BOOTSTRAP, Metric, bootstrap_metric
from polymodal.metrics.captions import (
    bleu_statistic,
    cider_scores,
    java_available,
    parse_objects,
    read_caption,
    score_caption,
)
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import SampleStatistic, TaskResult

EXAMPLES = 12  # generated captions kept in the details (the HTML report shows them beside their images)


def heldout_combos(data: EvalData) -> frozenset[tuple[str, str]]:
    """The held-out (colour, shape) pairs a ``shapes`` folder lists in its ``dataset.json``."""
    info = data.root / "dataset.json"
    if not info.is_file():
        return frozenset()
    made = json.loads(info.read_text(encoding="utf-8"))
    combos = (made.get("builtin") or made).get("heldout_combos") or []  # what the maker recorded
    return frozenset((c.split(" ", 1)[0], c.split(" ", 1)[1]) for c in combos if " " in c)


def generation_options(opts: dict[str, Any]) -> dict[str, Any]:
    keys = ("strategy", "num_beams", "max_new_tokens", "temperature", "top_k", "top_p")
    return {k: opts[k] for k in keys if opts.get(k) is not None}


def _mean(values: np.ndarray) -> Any:
    def statistic(idx: np.ndarray) -> float:
        return float(values[idx].mean()) if len(idx) else float("nan")

    return statistic


def _ratio(num: np.ndarray, den: np.ndarray) -> Any:
    def statistic(idx: np.ndarray) -> float:
        d = den[idx].sum()
        return float(num[idx].sum() / d) if d else float("nan")

    return statistic


def run_captioning(model: Any, data: EvalData, split: str = "test", *, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                   batch_size: int = 32, limit: int | None = None, cache: Any = None, progress: Any = None,
                   **opts: Any) -> TaskResult:
    rows = [r for r in data.split_rows(split) if r.get("image") not in (None, "")]
    if not rows:
        raise DataError(f"{data.name}: no rows with an image in split {split!r}")
    refs_by_image: dict[str, list[str]] = {}
    for r in rows:
        if r.get("text") not in (None, ""):
            refs_by_image.setdefault(str(r["image"]), []).append(str(r["text"]))
    # one sample per image (the first row holding it); its references are every caption of it
    firsts: dict[str, dict[str, Any]] = {}
    for r in rows:
        if str(r["image"]) in refs_by_image:
            firsts.setdefault(str(r["image"]), r)
    samples = list(firsts.values())[:limit] if limit else list(firsts.values())
    if not samples:
        raise DataError(f"{data.name}: no rows with an image and a reference caption ('text') in split {split!r}")
    images = [data.item(r, "image", i) for i, r in enumerate(samples)]
    hyps = model.generate(images, batch_size=batch_size, seed=seed, **generation_options(opts))
    refs = [refs_by_image[str(r["image"])] for r in samples]
    ids = [str(r.get("id", i)) for i, r in enumerate(samples)]
    metrics: dict[str, Metric] = {}
    stats: dict[str, SampleStatistic] = {}

    def add(name: str, statistic: Any, n: int | None = None) -> None:
        metric = bootstrap_metric(statistic, len(ids), n_boot=n_boot, seed=seed)
        # a group's metric resamples every row but counts only its own: n says how many those are
        metrics[name] = metric if n is None else replace(metric, n=n)
        stats[name] = SampleStatistic(ids, statistic)

    add("bleu4", bleu_statistic(hyps, refs))
    notes: list[str] = []
    cider = cider_scores(hyps, refs)
    if cider is None:
        notes.append("CIDEr skipped: pycocoevalcap's tokenizer needs Java, and no `java` is on PATH")
    else:
        add("cider", _mean(cider))
    details: dict[str, Any] = {"generation": generation_options(opts) or {"strategy": "greedy"},
                               "java": java_available(), "notes": notes}
    if all(isinstance(r.get("objects"), list) for r in samples):
        details["attributes"] = _attribute_metrics(samples, hyps, heldout_combos(data), add)
    details["generated_examples"] = [{"id": ids[i], "image": str(samples[i]["image"]), "path": images[i],
                                      "generated": hyps[i], "reference": refs[i][0]}
                                     for i in range(min(EXAMPLES, len(ids)))]
    details["captions"] = dict(zip(ids, hyps, strict=True))
    return TaskResult("captioning", metrics, details, stats, data=data.name, split=split)


def _attribute_metrics(samples: list[dict[str, Any]], hyps: list[str], heldout: frozenset[tuple[str, str]],
                       add: Any) -> dict[str, Any]:
    """Attribute accuracy of ``shapes`` captions, overall and on seen / held-out scenes."""
    scores = [score_caption(h, parse_objects(r["objects"]), read_caption(str(r.get("text", ""))).relation, heldout)
              for h, r in zip(hyps, samples, strict=True)]
    correct = np.array([s.correct for s in scores], dtype=np.float64)
    total = np.array([s.total for s in scores], dtype=np.float64)
    exact = np.array([s.exact for s in scores], dtype=np.float64)
    is_held = np.array([bool(r.get("heldout")) for r in samples])
    for name, mask in (("", np.ones(len(samples), dtype=bool)), ("seen/", ~is_held), ("heldout/", is_held)):
        if not mask.any():
            continue
        # a statistic over the whole index space that only counts rows of this group
        add(f"{name}attribute_accuracy", _ratio(correct * mask, total * mask), int(mask.sum()))
        add(f"{name}exact_scene", _ratio(exact * mask, mask.astype(np.float64)), int(mask.sum()))
    has_relation = np.array([s.relation_right is not None for s in scores], dtype=np.float64)
    if has_relation.any():
        # the relation alone: it hides in attribute accuracy as one slot of five or seven
        relation = np.array([bool(s.relation_right) for s in scores], dtype=np.float64)
        add("relation_accuracy", _ratio(relation, has_relation), int(has_relation.sum()))
    named = np.array([s.heldout_named for s in scores], dtype=np.float64)
    held_total = np.array([s.heldout_total for s in scores], dtype=np.float64)
    if held_total.sum():
        add("heldout/combo_named", _ratio(named, held_total), int((held_total > 0).sum()))
    return {"rows": len(samples), "seen_rows": int((~is_held).sum()), "heldout_rows": int(is_held.sum()),
            "heldout_combos": sorted(f"{c} {s}" for c, s in heldout)}


CAPTIONING_TASK = Task(
    name="captioning",
    description="generated captions vs references: BLEU-4, CIDEr (Java), shapes attribute accuracy seen/held-out",
    metrics=("bleu4", "cider", "attribute_accuracy", "seen/attribute_accuracy", "heldout/attribute_accuracy",
             "exact_scene", "heldout/combo_named", "relation_accuracy"),
    run=run_captioning,
    needs="generate",
)
