"""Predictions from a model's heads: class names and probabilities for raw items, files or a dataset.

``predict(model, items)`` (also ``model.predict(items)``) decodes raw items through the
runtime's one decode path (``runtime.decode``: the checks training and ``encode`` apply),
batches them through each input tower's ``preprocess`` and reads the model's
``ClassifierOutput``: softmax probabilities for a classification head, a sigmoid per class for
a multi-label head (the classes at or above ``threshold`` are predicted), the values of a
regression head. It runs in float32 so probabilities match ``polymodal eval``'s.

``read_inputs`` turns a manifest, a class-folder tree, a folder of files, files or a text file
(one text per line) into items; ``predict_to_csv`` is ``polymodal predict``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from polymodal.errors import DataError, ModelError
from polymodal.models.outputs import ClassifierOutput
from polymodal.predict_io import (
    PredictInputs,
    class_names,
    head_kind,
    model_inputs,
    read_inputs,
    write_predictions,
)

__all__ = ["HeadPrediction", "Prediction", "PredictInputs", "PredictSummary", "head_scores", "model_inputs",
           "predict", "predict_to_csv", "read_inputs", "require_heads", "write_predictions"]

HeadValue = str | list[str] | float | list[float]


@dataclass(frozen=True)
class HeadPrediction:
    """One head's answer for one item.

    ``kind``: how the head's outputs are read (``classification``, ``multilabel``, ``regression``);
    ``label``: the class name / the list of classes at or above the threshold / the value(s);
    ``score``: the probability of ``label`` (classification only); ``probabilities``: every class's
    probability (empty for regression).
    """

    kind: str
    label: HeadValue
    score: float | None
    probabilities: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    """A model's answer for one item: one :class:`HeadPrediction` per head (label column).

    ``label`` / ``score`` / ``probabilities`` read the only head; a model with several heads is
    read by column: ``prediction["answer"]`` or ``prediction.heads["answer"]``.
    """

    id: str
    heads: dict[str, HeadPrediction]

    def __getitem__(self, column: str) -> HeadPrediction:
        if column not in self.heads:
            raise ModelError(f"no head {column!r} (heads: {', '.join(self.heads)})")
        return self.heads[column]

    def _only(self) -> HeadPrediction:
        if len(self.heads) != 1:
            first = next(iter(self.heads))
            raise ModelError(f"this model has heads {', '.join(self.heads)}: read one by its column, "
                             f"e.g. prediction[{first!r}].label")
        return next(iter(self.heads.values()))

    @property
    def label(self) -> HeadValue:
        return self._only().label

    @property
    def score(self) -> float | None:
        return self._only().score

    @property
    def probabilities(self) -> dict[str, float]:
        return self._only().probabilities


def require_heads(model: Any, name: str = "MODEL") -> dict[str, Any]:
    """The model's heads by label column; a model without any gets a message saying what to do instead."""
    heads = getattr(model, "heads", None)
    if heads:
        return dict(heads.items())
    modalities = list(getattr(model, "modalities", None) or [])
    what = f"a {type(model).__name__} embedding {' and '.join(modalities)}" if modalities else type(model).__name__
    raise ModelError(
        f"this model has no classification head ({what}): it scores how well items match, it does not "
        f"predict labels. Classify with it by zero-shot classification (class names from a label column): "
        f"polymodal eval {name} --task zeroshot-classification --data MANIFEST; or fine-tune a classifier on "
        f"your labels (examples/image_classification.yaml, examples/text_classification.yaml) and predict "
        f"with that run"
    )


def _dict_hint(inputs: list[str]) -> str:
    return "{" + ", ".join(f"{m!r}: ..." for m in inputs) + "}"


def _as_items(inputs: list[str], items: Any) -> tuple[list[dict[str, Any]], bool]:
    """(items as {modality: value} dicts, whether one item was given rather than a list)."""
    from polymodal.runtime.engine import is_single_item

    if isinstance(items, Mapping):
        items, single = [items], True
    elif len(inputs) == 1 and is_single_item(inputs[0], items):
        return [{inputs[0]: items}], True
    else:
        single = False
        if isinstance(items, str | bytes | Path):
            items = [items]  # a lone path given to a multi-input model: refused below, naming the inputs
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            row = dict(item)
        elif len(inputs) == 1:
            row = {inputs[0]: item}
        else:
            raise ModelError(f"this model reads {' and '.join(inputs)}: give each item as a dict "
                             f"{_dict_hint(inputs)} (item {i} is a {type(item).__name__})")
        missing = [m for m in inputs if row.get(m) is None]
        if missing:
            raise DataError(f"item {i} has no {missing[0]!r} value (this model reads {' and '.join(inputs)}: "
                            f"give {_dict_hint(inputs)})")
        out.append(row)
    return out, single


def head_scores(
    model: Any, items: list[dict[str, Any]], *, batch_size: int = 32,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Raw head outputs (logits / values) per label column for ``{modality: value}`` items, in order."""
    from polymodal.models.towers import move
    from polymodal.runtime.decode import DecodeError, decode_items
    from polymodal.runtime.engine import RUNTIME

    inputs = model_inputs(model)
    device = next(model.parameters()).device
    parts: dict[str, list[np.ndarray]] = {}
    with RUNTIME.eval_mode(model), torch.inference_mode():
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            batch: dict[str, Any] = {}
            for m in inputs:
                try:
                    raw = decode_items(model, m, [item[m] for item in chunk])
                except DecodeError as exc:  # name the item by its place in the whole list
                    raise exc.at(start + exc.index) from None
                batch[m] = move(RUNTIME.preprocess(model.tower(m), raw), device)
            out = model(batch)
            if not isinstance(out, ClassifierOutput):
                raise ModelError(f"{type(model).__name__} returned {type(out).__name__}, not a ClassifierOutput "
                                 "with head logits")
            for col, logits in out.logits.items():
                parts.setdefault(col, []).append(logits.float().cpu().numpy())
            if on_progress is not None:
                on_progress(len(chunk))
    return {col: np.concatenate(p, axis=0) for col, p in parts.items()}


def _head_predictions(head: Any, scores: np.ndarray, threshold: float) -> list[HeadPrediction]:
    kind = head_kind(head)
    if kind == "regression":
        return [HeadPrediction(kind, float(v) if np.ndim(v) == 0 else [float(x) for x in v], None, {}) for v in scores]
    names = class_names(head, scores.shape[1])
    logits = torch.from_numpy(scores)
    if kind == "multilabel":
        probs = torch.sigmoid(logits).numpy()
        return [HeadPrediction(kind, [n for n, p in zip(names, row, strict=True) if p >= threshold], None,
                               dict(zip(names, row.tolist(), strict=True))) for row in probs]
    probs = torch.softmax(logits, dim=-1).numpy()
    best = probs.argmax(axis=1)
    return [HeadPrediction(kind, names[j], float(row[j]), dict(zip(names, row.tolist(), strict=True)))
            for row, j in zip(probs, best, strict=True)]


def predict(
    model: Any, items: Any, *, ids: Sequence[str] | None = None, batch_size: int = 32, threshold: float = 0.5,
    on_progress: Callable[[int], None] | None = None,
) -> Prediction | list[Prediction]:
    """Predictions of ``model``'s heads for raw items: one :class:`Prediction` for one item, a list for a list.

    An item is what ``encode`` takes for the model's input modality (a path, a string, an image,
    a waveform, a clip), or a dict ``{modality: value}`` (what a model with several inputs needs;
    other keys are ignored). ``threshold`` decides a multi-label head's classes.
    """
    heads = require_heads(model)
    rows, single = _as_items(model_inputs(model), items)
    if ids is not None and len(ids) != len(rows):
        raise DataError(f"{len(ids)} ids for {len(rows)} items")
    names = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(rows))]
    scores = head_scores(model, rows, batch_size=batch_size, on_progress=on_progress) if rows else {}
    per_head = {col: _head_predictions(heads[col], s, threshold) for col, s in scores.items() if col in heads}
    preds = [Prediction(names[i], {col: hp[i] for col, hp in per_head.items()}) for i in range(len(rows))]
    return preds[0] if single else preds


@dataclass
class PredictSummary:
    path: Path | None  # None when written to a stream
    rows: int
    heads: list[str]


def predict_to_csv(
    model_or_path: Any, data: Sequence[str | Path], out: str | Path | IO[str], *, split: str | None = None,
    columns: Mapping[str, str] | None = None, root: str | Path | None = None, top_k: int | None = None,
    threshold: float = 0.5, batch_size: int = 32, on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> PredictSummary:
    """Load the model (anything ``polymodal.load`` takes), predict every item of ``data``, write a CSV.

    ``data``: one manifest (JSONL / CSV / class-folder tree / ``hf:NAME``), or folders of files and
    files (one text per line in a ``.txt`` for a text model). The CSV: ``id``, the input column(s)
    as written in the source, the source's label (truth) column where it has one, then per head
    the predicted label, its probability and a probability per class (``top_k`` columns when there
    are many classes; see ``predict_io.write_predictions``).
    """
    if isinstance(model_or_path, str | Path):
        import polymodal

        name = str(model_or_path)
        model = polymodal.load(name)
    else:
        name, model = "MODEL", model_or_path
    require_heads(model, name)  # before reading any data
    inputs = read_inputs(model, data, split=split, columns=columns, root=root)
    if on_total is not None:
        on_total(len(inputs.ids))
    from polymodal.runtime.decode import DecodeError, describe

    try:
        preds = predict(model, inputs.items, ids=inputs.ids, batch_size=batch_size, threshold=threshold,
                        on_progress=on_progress)
    except DecodeError as exc:  # name the row as the source names it
        if inputs.from_manifest:
            raise DataError(f"{data[0]}: row {inputs.ids[exc.index]!r} ({describe(exc.item)}): {exc.reason}") from None
        raise DataError(f"{exc.item}: {exc.reason}") from None
    assert isinstance(preds, list)
    path = write_predictions(model, preds, inputs, out, top_k=top_k)
    return PredictSummary(path, len(preds), list(require_heads(model)))
