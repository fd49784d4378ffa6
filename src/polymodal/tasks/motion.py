"""``motion``: does a video-text model tell the direction of motion, not only what moves?

For each clip, its own caption is rewritten with every direction in place of the true one ("a
blue circle moving left" -> "... moving right", "... up", "... down"); the model picks the
caption nearest the clip. The object and its colour are the same in every candidate, so only
the direction can decide. ``direction_acc`` is that k-way accuracy (chance 1/k),
``opposite_acc`` the two-way one against the opposite direction only (left vs right, up vs
down; chance 0.5). A frame-averaging video tower is blind to the order of frames, so it cannot
beat chance on left vs right of the same object: this is the check that time is seen.
``details["by_group"]`` splits the accuracy by ``meta.combo_seen`` (moving-shapes' held-out
colour-shape combinations).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polymodal.data.text import swap_word
from polymodal.errors import DataError
from polymodal.metrics import DEFAULT_BOOTSTRAP
from polymodal.tasks.cache import EmbeddingCache, Encoder, Progress, normalize
from polymodal.tasks.data import EvalData
from polymodal.tasks.registry import Task
from polymodal.tasks.result import TaskResult, metrics_with_intervals

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
CLIPS = 8  # clips kept in the result for the report's frame strips


def run_motion(model: Any, data: EvalData, split: str = "test", *, column: str = "direction", modality: str = "video",
               group_by: str = "combo_seen", n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0,
               cache: EmbeddingCache | None = None, batch_size: int = 64, progress: Progress | None = None) -> TaskResult:
    rows = [r for r in data.split_rows(split) if r.get(column) not in (None, "")]
    if not rows:
        raise DataError(f"{data.name}: no rows with a {column!r} value in split {split!r}")
    directions = data.class_names(column)
    index = {d: i for i, d in enumerate(directions)}
    captions = [swap_word(str(r["text"]), str(r[column]), d, f"{data.name} row {r.get('id', i)!r}")
                for i, r in enumerate(rows) for d in directions]
    encoder = Encoder(model, cache, batch_size, progress)
    clips = normalize(encoder.embed(modality, [data.item(r, modality, i) for i, r in enumerate(rows)]))
    texts = normalize(encoder.embed("text", captions)).reshape(len(rows), len(directions), -1)
    scores = np.einsum("nd,nkd->nk", clips, texts)
    truth = np.array([index[str(r[column])] for r in rows])
    hit = scores.argmax(1) == truth
    opposite = np.array([index.get(OPPOSITE.get(str(r[column]), ""), -1) for r in rows])
    has_opposite = opposite >= 0
    beats = np.where(has_opposite, scores[np.arange(len(rows)), truth] > scores[np.arange(len(rows)), opposite], False)
    stats = {"direction_acc": lambda idx: float(hit[idx].mean()),
             "opposite_acc": lambda idx: float(beats[idx][has_opposite[idx]].mean()) if has_opposite[idx].any()
             else float("nan")}
    ids = [str(r.get("id", i)) for i, r in enumerate(rows)]
    metrics, kept = metrics_with_intervals(stats, ids, n_boot=n_boot, seed=seed)
    details: dict[str, Any] = {"directions": directions, "n": len(rows), "chance": 1.0 / len(directions),
                               "clips": [{"id": ids[i], "path": str(data.item(r, modality, i)), "truth": str(r[column]),
                                          "predicted": directions[int(scores[i].argmax())]}
                                         for i, r in enumerate(rows[:CLIPS])]}
    groups = [(r.get("meta") or {}).get(group_by) for r in rows]
    if all(g is not None for g in groups):
        details["by_group"] = {f"{group_by}={g}": {"n": int(sum(x == g for x in groups)),
                                                   "direction_acc": float(hit[[x == g for x in groups]].mean())}
                               for g in sorted(set(groups), key=str)}
    return TaskResult("motion", metrics, details, kept, data=data.name, split=split)


MOTION_TASK = Task(
    name="motion",
    description="direction of motion: each clip's caption with every direction swapped in; nearest wins",
    metrics=("direction_acc", "opposite_acc"),
    run=run_motion,
)
