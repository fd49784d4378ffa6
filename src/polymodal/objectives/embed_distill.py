"""Embedding distillation: a student matches a teacher's embeddings, precomputed per row id.

The teacher may preprocess differently from the student (another image size, another
tokenizer), so it does not run on the student's batch (``DistillationLoss`` does): its
embeddings are computed once, with its own preprocessing, and reach each batch by row id
(as precomputed frozen features do). Per batch:

L = embedding_weight * mean_m (1 - cos(s_m, t_m))
  + similarity_weight * mean_{a<b} (KL(P_t || P_s) over rows + over columns) / 2,

with P = softmax(cos(x_a, x_b) / similarity_temperature) over the batch's a-b similarity
matrix: the student learns where each item lies and how the batch's items rank against
each other. No labels are read.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from polymodal.errors import ModelError
from polymodal.models.outputs import EmbeddingOutput
from polymodal.objectives.base import Objective, ObjectiveResult, full_precision

# the targets file: {"teacher": str, "modalities": {modality: {"ids": [row id, ...], "embeddings": (n, D)}}}
Targets = dict[str, tuple[dict[str, int], torch.Tensor]]


def save_targets(path: str | Path, teacher: str, targets: dict[str, tuple[list[str], torch.Tensor]]) -> Path:
    path = Path(path)
    torch.save({"teacher": teacher,
                "modalities": {m: {"ids": list(ids), "embeddings": emb.float().contiguous()}
                               for m, (ids, emb) in targets.items()}}, path)
    return path


def load_targets(path: str | Path) -> Targets:
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"objective.targets: {path} does not exist (the teacher's embeddings)") from None
    return {m: ({rid: i for i, rid in enumerate(v["ids"])}, v["embeddings"]) for m, v in raw["modalities"].items()}


def soft_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher / T) || softmax(student / T)), rows and columns averaged."""
    def one(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(s / temperature, -1), F.log_softmax(t / temperature, -1),
                        reduction="batchmean", log_target=True)
    return (one(student, teacher) + one(student.T, teacher.T)) / 2


class EmbedDistillLoss(Objective):
    validation = ("retrieval",)

    def __init__(self, targets: Targets, embedding_weight: float = 1.0, similarity_weight: float = 1.0,
                 similarity_temperature: float = 0.05) -> None:
        super().__init__()
        self.targets = targets
        self.embedding_weight = embedding_weight
        self.similarity_weight = similarity_weight
        self.temperature = similarity_temperature

    def _teacher(self, modality: str, ids: list[str], device: torch.device) -> torch.Tensor:
        index, emb = self.targets[modality]
        try:
            rows = [index[str(rid)] for rid in ids]
        except KeyError as exc:
            raise ModelError(f"row {exc.args[0]}: no teacher {modality} embedding in objective.targets") from None
        return emb[torch.tensor(rows, dtype=torch.long)].to(device)

    def forward(self, outputs: Any, batch: dict[str, Any]) -> ObjectiveResult:
        if not isinstance(outputs, EmbeddingOutput):
            raise ModelError(f"embed-distill needs an EmbeddingOutput, got {type(outputs).__name__}")
        ids = list(batch["id"])
        student = {m: F.normalize(full_precision(e), dim=-1) for m, e in outputs.embeddings.items() if m in self.targets}
        if not student:
            raise ModelError(f"embed-distill: the batch's modalities {list(outputs.embeddings)} have no teacher "
                             f"embeddings (the targets hold {list(self.targets)})")
        teacher = {m: F.normalize(self._teacher(m, ids, s.device), dim=-1) for m, s in student.items()}
        metrics: dict[str, torch.Tensor] = {}
        loss = torch.zeros((), device=next(iter(student.values())).device)
        cos = {m: (student[m] * teacher[m]).sum(-1).mean() for m in student}
        for m, c in cos.items():
            metrics[f"teacher_cos_{m}"] = c.detach()
        loss = loss + self.embedding_weight * torch.stack([1 - c for c in cos.values()]).mean()
        pairs = list(combinations(list(student), 2))
        if pairs and self.similarity_weight:
            kls = {f"{a}_{b}": soft_kl(student[a] @ student[b].T, teacher[a] @ teacher[b].T, self.temperature)
                   for a, b in pairs}
            metrics.update({f"sim_kl_{k}": v.detach() for k, v in kls.items()})
            loss = loss + self.similarity_weight * torch.stack(list(kls.values())).mean()
        return ObjectiveResult(loss, metrics)
