"""Distillation (issue 12.1): a smaller student trained to match a teacher's embeddings.

1. The teacher embeds every non-test row of ``--data`` once, with its own preprocessing, in
   float32 inference mode, reading rows as the trainer does (same columns, same checks, same
   row ids); the embeddings are stored per row id (``objectives.embed_distill``).
2. The student (``--student``: a preset or a model folder; default ``tiny-dual``) gets
   projections as wide as the teacher's embeddings, so the two can be compared, and the
   teacher's temperature; it is saved as the run's starting model. Or the student is cut from
   the teacher (``--student-layers text=0,2,4``: ``compress.student.cut_student``), keeping
   some of its transformer layers with their weights; it then starts at a lower learning rate
   and the encoders of the towers it left whole stay locked.
3. The existing trainer trains it with the ``embed-distill`` objective (cosine per modality +
   KL between softened in-batch similarity matrices), the teacher's embeddings reaching each
   batch by row id. No labels are read: unlabeled items are enough.

The result is the student, recorded as ``{"kind": "distilled", "teacher": ..., ...}`` in its
``config.json``; the summary gives the mean cosine to the teacher before and after.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from polymodal.errors import ModelError
from polymodal.models.transforms import record_transform, register_transform

KIND = "distilled"
DEFAULT_STUDENT = "tiny-dual"
DEFAULT_STEPS = 200
BATCH_SIZE = 32
LR = 1e-3
LR_CUT = 1e-4  # a student cut from the teacher starts trained: a random-init student's rate would undo that


def embed_rows(model: Any, rows: Sequence[dict[str, Any]], root: str | Path, data_cfg: Any, modality: str,
               batch_size: int = 64) -> tuple[list[str], torch.Tensor]:
    """(row ids, float32 embeddings) of ``rows``' ``modality`` with ``model``'s own preprocessing."""
    from polymodal.data.loader import MultimodalDataset, make_collate
    from polymodal.models.towers import move

    tower = model.tower(modality)
    dataset = MultimodalDataset(rows, root, [modality], {}, data_cfg, augment=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         collate_fn=make_collate({modality: tower.preprocess}, {}))
    device = next(model.parameters()).device
    ids: list[str] = []
    parts: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in loader:
                parts.append(model.embed(modality, move(batch[modality], device)).float().cpu())
                ids += [str(i) for i in batch["id"]]
    finally:
        model.train(was_training)
    return ids, torch.cat(parts) if parts else torch.zeros(0, model.embed_dim)


def mean_cosine(student: Any, targets: dict[str, tuple[list[str], torch.Tensor]], rows: Sequence[dict[str, Any]],
                root: str | Path, data_cfg: Any) -> dict[str, float]:
    """Mean cosine between the student's and the teacher's embeddings of the same rows, per modality."""
    out = {}
    for m, (ids, teacher) in targets.items():
        sids, emb = embed_rows(student, rows, root, data_cfg, m)
        index = {rid: i for i, rid in enumerate(ids)}
        t = teacher[torch.tensor([index[r] for r in sids], dtype=torch.long)]
        out[m] = float(torch.nn.functional.cosine_similarity(emb, t).mean())
    return out


def _embedding_model(model: Any, role: str) -> None:
    from polymodal.models.dual import DualEncoder

    if not isinstance(model, DualEncoder):
        raise ModelError(f"distill: the {role} must be a dual encoder (towers in one embedding space), "
                         f"got {type(model).__name__}")


def distill(teacher: Any, opts: Any) -> tuple[Any, str]:
    """Train a student on ``opts.data`` to match ``teacher``'s embeddings; (student, summary)."""
    from polymodal.config import DataConfig, EmbedDistillConfig, ModelConfig, RunConfig, TrainConfig
    from polymodal.data.sources import load_manifest
    from polymodal.models.loading import load_model
    from polymodal.objectives.embed_distill import save_targets
    from polymodal.train.run import train

    if opts.data is None:
        raise ModelError("distill needs unlabeled items to train the student on: pass --data MANIFEST "
                         "(a manifest of images and texts; labels are not read, e.g. `polymodal data make shapes`)")
    if opts.towers:
        raise ModelError("distill trains a whole student; --towers does not apply (the student's towers are "
                         "the ones distilled)")
    _embedding_model(teacher, "teacher")
    teacher_name = str(opts.extra.get("source") or getattr(teacher, "card_info", {}).get("name")
                       or type(teacher).__name__)
    layers = opts.student_layers
    if layers and opts.student:
        raise ModelError("distill: pass either --student (a separate model) or --student-layers (a student cut "
                         "from the teacher's own layers), not both")
    if layers:
        from polymodal.compress.student import cut_student

        student = cut_student(teacher, layers)
        student_name = "teacher layers " + "; ".join(f"{m}={','.join(map(str, k))}" for m, k in layers.items())
    else:
        student_name = opts.student or DEFAULT_STUDENT
        student = load_model(student_name)
    _embedding_model(student, f"student ({student_name})")
    extra = [m for m in student.towers if m not in teacher.towers]
    if extra:
        raise ModelError(f"distill: the student ({student_name}) has {', '.join(extra)} tower(s) the teacher lacks "
                         f"(teacher towers: {', '.join(teacher.towers)}); pick a student with a subset of them")
    steps = opts.steps or DEFAULT_STEPS
    dim = teacher.embed_dim
    resized = [m for m, t in student.towers.items() if t.output_dim != dim]
    for m in resized:  # new projections to the teacher's width: embeddings must be comparable
        student.tower(m).set_projection(dim)
    if getattr(teacher, "logit_scale", None) is not None:
        with torch.no_grad():
            student.logit_scale.copy_(teacher.logit_scale.detach())
    modalities = list(student.towers)
    # a tower the cut left whole already gives the teacher's embeddings: its encoder stays locked (its
    # features are then computed once; its projection still trains), and the cut towers train
    uncut = [m for m in modalities if m not in layers] if layers else []
    data_cfg = DataConfig(manifest=str(opts.data), batch_size=BATCH_SIZE)
    manifest = load_manifest(str(opts.data), data_cfg.root, split_ratio=data_cfg.split_ratio, seed=opts.seed)
    rows = [r for r in manifest.rows if r.get("split") != data_cfg.test_split]
    if not rows:
        raise ModelError(f"distill: {opts.data} has no rows outside the {data_cfg.test_split!r} split")
    torch.manual_seed(opts.seed)
    with tempfile.TemporaryDirectory(prefix="polymodal-distill-") as tmp:
        targets = {m: embed_rows(teacher, rows, manifest.root, data_cfg, m) for m in modalities}
        target_file = save_targets(Path(tmp) / "teacher_embeddings.pt", teacher_name, targets)
        measure = [r for r in rows if r.get("split") == data_cfg.val_split] or rows
        before = mean_cosine(student, targets, measure, manifest.root, data_cfg)
        start = student.save_pretrained(Path(tmp) / "student")
        cfg = RunConfig(
            model=ModelConfig(preset=str(start)), data=data_cfg,
            objective=EmbedDistillConfig(targets=str(target_file)),
            train=TrainConfig(lr=float(opts.extra.get("lr", LR_CUT if layers else LR)), locked_towers=uncut,
                              epochs=steps, max_steps=steps, seed=opts.seed, warmup_ratio=0.05, eval_every=steps, checkpoint_every=steps, log_every=max(steps // 10, 1),
                              progress=False, keep_last=1),
        )
        train(cfg, Path(tmp) / "run")
        out = load_model(Path(tmp) / "run" / "model")
        after = mean_cosine(out, targets, measure, manifest.root, data_cfg)
    out.transforms = [entry for entry in getattr(out, "transforms", []) if entry.get("kind") != KIND]
    record_transform(out, KIND, teacher=teacher_name, student=student_name, steps=steps, data=str(opts.data),
                     **({"student_layers": layers} if layers else {}),
                     rows=len(rows), seed=opts.seed, objective="embed-distill",
                     similarity_temperature=cfg.objective.similarity_temperature,  # type: ignore[attr-defined]
                     cosine_before={m: round(v, 4) for m, v in before.items()},
                     cosine_after={m: round(v, 4) for m, v in after.items()})
    out.card_info = {**getattr(out, "card_info", {}), "distilled_from": teacher_name}
    cos = ", ".join(f"{m} {before[m]:.3f} -> {after[m]:.3f}" for m in modalities)
    params = sum(p.numel() for p in out.parameters()) / max(sum(p.numel() for p in teacher.parameters()), 1)
    summary = (f"distilled {teacher_name} into {student_name} ({steps} steps on {len(rows)} rows of {opts.data}; "
               f"{params:.1%} of the teacher's parameters"
               f"{'; projections resized to ' + str(dim) + ' for ' + ', '.join(resized) if resized else ''}); "
               f"mean cosine to the teacher on {len(measure)} rows: {cos}")
    return out, summary


register_transform(KIND)  # the student's own config rebuilds it; the weights carry the training
