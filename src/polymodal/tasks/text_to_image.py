"""``text-to-image``: what a text-to-image model draws for ``shapes`` captions, judged.

Each row's caption is the prompt. The generated image is read by a separately trained
``shapes`` attribute classifier (``tasks/shapes_judge.py``, option ``judge``: its folder):

- single-object prompts (``count`` 1): the main object's colour and shape (2 slots), overall and
  on seen / held-out colour-shape combinations (``heldout`` rows: pairs no training scene held);
- prompts with a relation (two or more objects): both named objects' colours and shapes and the
  relation between them (5 slots), and the relation alone.

``score_model`` (an aligned dual encoder: the quickstart's ``model/``) adds the mean cosine
between each generated image and its prompt; without it the score is skipped with a note.
Every metric carries a bootstrap interval over prompts.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from polymodal.errors import DataError
from polymodal.metrics import DEFAULT_BOOTSTRAP, Metric, bootstrap_metric
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import SampleStatistic, TaskResult
from polymodal.tasks.shapes_judge import ShapesJudge, judge_slots, scene_targets

EXAMPLES = 16  # prompts with their images kept in the details (the HTML report draws them)


def _ratio(num: np.ndarray, den: np.ndarray) -> Any:
    def statistic(idx: np.ndarray) -> float:
        d = den[idx].sum()
        return float(num[idx].sum() / d) if d else float("nan")

    return statistic


def load_judge(path: str | Path | None) -> ShapesJudge:
    from polymodal.models.loading import load_model

    if not path:
        raise DataError("the text-to-image task needs judge=FOLDER: a shapes attribute classifier "
                        "(train one with `python -m polymodal.tasks.shapes_judge MANIFEST OUT`)")
    judge = load_model(str(path))
    if not isinstance(judge, ShapesJudge):
        raise DataError(f"judge={path} holds a {type(judge).__name__}, not a ShapesJudge")
    return judge


def _pick_rows(rows: list[dict[str, Any]], limit: int | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    singles = [r for r in rows if len(r["objects"]) == 1]
    relations = [r for r in rows if len(r["objects"]) >= 2]
    return (singles[:limit], relations[:limit]) if limit else (singles, relations)


def run_text_to_image(model: Any, data: EvalData, split: str = "test", *, judge: str | Path | None = None,
                      score_model: str | Path | None = None, n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                      batch_size: int = 32, limit: int | None = None, steps: int | None = None,
                      guidance_scale: float | None = None, images_dir: str | Path | None = None, cache: Any = None,
                      progress: Any = None, **_opts: Any) -> TaskResult:
    reader = load_judge(judge)
    rows = [r for r in data.split_rows(split) if isinstance(r.get("objects"), list) and r.get("text")]
    if not rows:
        raise DataError(f"{data.name}: no shapes rows (with `objects` and a caption) in split {split!r}")
    singles, relations = _pick_rows(rows, limit)
    samples = singles + relations
    prompts = [str(r["text"]) for r in samples]
    truths = [scene_targets(r, f"{data.name} row {r.get('id')}") for r in samples]
    images = model.generate(prompts, steps=steps, guidance_scale=guidance_scale, seed=seed, batch_size=batch_size)
    out = Path(images_dir) if images_dir else Path(tempfile.mkdtemp(prefix="polymodal-t2i-"))
    out.mkdir(parents=True, exist_ok=True)
    ids = [str(r.get("id", i)) for i, r in enumerate(samples)]
    paths = []
    for row_id, image in zip(ids, images, strict=True):
        path = out / f"{row_id}.png"
        image.save(path)
        paths.append(str(path))
    readings = reader.predict(images)
    slots = [judge_slots(reading, truth) for reading, truth in zip(readings, truths, strict=True)]
    correct = np.array([c for c, _ in slots], dtype=np.float64)
    total = np.array([t for _, t in slots], dtype=np.float64)
    exact = (correct == total).astype(np.float64)
    single = np.array([len(t.objects) == 1 for t in truths])
    held = np.array([bool(r.get("heldout")) for r in samples])
    rel_right = np.array([float(t.relation is not None and reading["relation"] == t.relation)
                          for reading, t in zip(readings, truths, strict=True)])
    has_rel = np.array([float(t.relation is not None) for t in truths])
    metrics: dict[str, Metric] = {}
    stats: dict[str, SampleStatistic] = {}

    def add(name: str, statistic: Any, n: int) -> None:
        if n == 0:
            return
        metric = bootstrap_metric(statistic, len(ids), n_boot=n_boot, seed=seed)
        metrics[name] = replace(metric, n=n)  # a group's metric resamples every prompt, counts its own
        stats[name] = SampleStatistic(ids, statistic)

    for name, mask in (("single/", single), ("single/seen/", single & ~held), ("single/heldout/", single & held),
                       ("relation/", ~single)):
        add(f"{name}attribute_accuracy", _ratio(correct * mask, total * mask), int(mask.sum()))
        add(f"{name}exact_scene", _ratio(exact * mask, mask.astype(np.float64)), int(mask.sum()))
    add("relation/relation_accuracy", _ratio(rel_right * ~single, has_rel * ~single), int((~single).sum()))
    notes: list[str] = []
    if score_model:
        scores = text_image_scores(score_model, prompts, paths)
        add("text_image_score", _ratio(scores, np.ones_like(scores)), len(scores))
    else:
        notes.append("text_image_score skipped: no score_model given (an aligned dual encoder, e.g. the "
                     "quickstart's model/)")
    verdict = ["✓" if c == t else f"{int(c)}/{int(t)}" for c, t in slots]
    examples = [{"id": ids[i], "path": paths[i], "prompt": prompts[i],
                 "generated": f"judge: {_said(readings[i], len(truths[i].objects))} {verdict[i]}"}
                for i in _example_order(single, EXAMPLES)]
    details = {"rows": len(samples), "single_rows": int(single.sum()), "relation_rows": int((~single).sum()),
               "heldout_single_rows": int((single & held).sum()), "images_dir": str(out), "notes": notes,
               "judge": str(judge), "generation": {"steps": steps or model.spec.sample_steps,
                                                   "guidance_scale": guidance_scale if guidance_scale is not None
                                                   else model.spec.guidance_scale, "seed": seed},
               "generated_examples": examples}
    return TaskResult("text-to-image", metrics, details, stats, data=data.name, split=split)


def _said(reading: dict[str, str], n: int) -> str:
    main = f"{reading['main_color']} {reading['main_shape']}"
    if n < 2:
        return main
    return f"{main} {reading['relation']} {reading['second_color']} {reading['second_shape']}"


def _example_order(single: np.ndarray, k: int) -> list[int]:
    """Half single-object prompts, half with a relation, for the report's grid."""
    ones = [i for i in range(len(single)) if single[i]][: k // 2]
    more = [i for i in range(len(single)) if not single[i]][: k - len(ones)]
    return ones + more


def text_image_scores(score_model: str | Path, prompts: list[str], paths: list[str]) -> np.ndarray:
    """Cosine between each generated image and its prompt under an aligned dual encoder."""
    from polymodal.models.loading import load_model

    scorer = load_model(str(score_model))
    if not callable(getattr(scorer, "encode", None)):
        raise DataError(f"score_model={score_model} cannot encode images and text (not a dual encoder)")
    img = np.asarray(scorer.encode("image", paths), dtype=np.float64)
    txt = np.asarray(scorer.encode("text", prompts), dtype=np.float64)
    img /= np.linalg.norm(img, axis=1, keepdims=True).clip(1e-12)
    txt /= np.linalg.norm(txt, axis=1, keepdims=True).clip(1e-12)
    return np.asarray((img * txt).sum(1))


TEXT_TO_IMAGE_TASK = Task(
    name="text-to-image",
    description="images drawn from shapes captions, read by a shapes attribute classifier: single-object "
                "attribute accuracy seen/held-out, relations; text-image score under an aligned model",
    metrics=("single/attribute_accuracy", "single/seen/attribute_accuracy", "single/heldout/attribute_accuracy",
             "relation/attribute_accuracy", "relation/relation_accuracy", "text_image_score"),
    run=run_text_to_image,
    needs="draw",
)
