"""Validation metrics: the loss and the objective's own metrics for every objective, plus what
the objective declares in ``validation``: in-batch retrieval recall@1 (``"retrieval"``, read
from an ``EmbeddingOutput``) and accuracy / macro-F1 per label column (``"classification"``,
read from a ``ClassifierOutput``), reduced over processes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from accelerate.utils import gather_object

from polymodal.errors import TrainingError
from polymodal.models.outputs import ClassifierOutput, EmbeddingOutput


def _recall_hits(a: torch.Tensor, b: torch.Tensor) -> tuple[float, int]:
    """Rows of ``a`` whose nearest ``b`` is its own pair (and vice versa), summed over both directions."""
    sim = a.float() @ b.float().T
    target = torch.arange(sim.shape[0])
    hits = (sim.argmax(1) == target).sum() + (sim.argmax(0) == target).sum()
    return float(hits), 2 * sim.shape[0]


@torch.no_grad()
def evaluate(model: Any, objective: Callable[[Any, Any], Any], batches: Iterable[dict[str, Any]],
             accelerator: Any, label_columns: list[str]) -> dict[str, float]:
    """Run ``model`` over ``batches`` (this process's shards) and return ``val/*`` metrics."""
    totals: dict[str, float] = {"loss": 0.0, "n": 0.0, "hits": 0.0, "pairs": 0.0}
    obj_metrics: dict[str, float] = {}
    preds: dict[str, list[np.ndarray]] = {c: [] for c in label_columns}
    golds: dict[str, list[np.ndarray]] = {c: [] for c in label_columns}
    declared = tuple(getattr(objective, "validation", ()))
    for batch in batches:
        with accelerator.autocast():
            out = model(batch)
            res = objective(out, batch)
        n = len(batch["id"])
        totals["loss"] += float(res.loss) * n
        totals["n"] += n
        for key, value in res.metrics.items():
            obj_metrics[key] = obj_metrics.get(key, 0.0) + float(value) * n
        if "retrieval" in declared:
            if not isinstance(out, EmbeddingOutput):
                raise TrainingError(f"the objective asks for retrieval validation, but the model returned "
                                    f"{type(out).__name__}, not an EmbeddingOutput")
            emb = out.embeddings
            keys = sorted(emb)
            for i in range(len(keys)):
                for j in range(i + 1, len(keys)):
                    # the global batch: every process's shard, in rank order
                    a = accelerator.gather(emb[keys[i]].contiguous())
                    b = accelerator.gather(emb[keys[j]].contiguous())
                    hits, count = _recall_hits(a, b)
                    totals["hits"] += hits / accelerator.num_processes
                    totals["pairs"] += count / accelerator.num_processes
        if "classification" in declared:
            if not isinstance(out, ClassifierOutput):
                raise TrainingError(f"the objective asks for classification validation, but the model returned "
                                    f"{type(out).__name__}, not a ClassifierOutput")
            for col in label_columns:
                if col in out.logits and col in batch:
                    preds[col].append(out.logits[col].float().cpu().numpy())
                    golds[col].append(batch[col].cpu().numpy())
    keys = ["loss", "n", "hits", "pairs", *sorted(obj_metrics)]
    vec = torch.tensor([totals.get(k, obj_metrics.get(k, 0.0)) for k in keys], dtype=torch.float64,
                       device=accelerator.device)
    vec = accelerator.reduce(vec, "sum")
    red = dict(zip(keys, vec.tolist(), strict=True))
    n = max(red["n"], 1.0)
    metrics = {"val/loss": red["loss"] / n}
    for k in obj_metrics:
        metrics[f"val/{k}"] = red[k] / n
    if red["pairs"]:
        metrics["val/recall@1"] = red["hits"] / red["pairs"]
    accs, f1s = [], []
    for col in label_columns:
        if not preds[col]:
            continue
        # imported here, not at the top: a second off the start of every run without labels
        from sklearn.metrics import f1_score

        local = (np.concatenate(preds[col]), np.concatenate(golds[col]))
        gathered = gather_object([local]) if accelerator.num_processes > 1 else [local]
        p = np.concatenate([g[0] for g in gathered])
        y = np.concatenate([g[1] for g in gathered])
        if y.ndim == 2:  # multi-label: multi-hot targets, logit > 0 is a positive
            hat = (p > 0).astype(int)
            acc = float(((hat == y).all(1)).mean())
            f1 = float(f1_score(y.astype(int), hat, average="macro", zero_division=0))
        elif np.issubdtype(y.dtype, np.floating):  # regression
            metrics[f"val/{col}/mse"] = float(((p.squeeze(-1) - y) ** 2).mean())
            continue
        else:
            hat = p.argmax(-1)
            acc = float((hat == y).mean())
            f1 = float(f1_score(y, hat, average="macro", zero_division=0))
        metrics[f"val/{col}/accuracy"] = acc
        metrics[f"val/{col}/macro_f1"] = f1
        accs.append(acc)
        f1s.append(f1)
    if accs:
        metrics["val/accuracy"] = float(np.mean(accs))
        metrics["val/macro_f1"] = float(np.mean(f1s))
    return metrics
