"""A short contrastive fine-tune that lets a pruned dual encoder recover (``prune --data --steps``).

Structured pruning removes channels; the rest of the network can adapt to their loss. The pruned
model is saved, trained through the ordinary ``train()`` (InfoNCE on the image-text pairs of
``--data``; the towers that were not pruned stay locked, so only the narrowed blocks and the
projections move) and read back: the ``pruned`` transform comes with it, so the result still
loads narrow.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from polymodal.errors import ModelError
from polymodal.models.transforms import register_transform

DEFAULT_STEPS = 200
LR = 1e-4
HEAD_LR = 1e-3
BATCH_SIZE = 32


def recover(model: Any, data: str | Path, steps: int, pruned: list[str], seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """``model`` fine-tuned for ``steps`` on ``data`` with the towers outside ``pruned`` locked;
    (model, a record: steps, data, the validation loss and recall@1 at the end)."""
    from polymodal.config import ContrastiveConfig, DataConfig, ModelConfig, RunConfig, TrainConfig
    from polymodal.models.loading import load_model
    from polymodal.train.run import train

    if len(getattr(model, "towers", {})) < 2 or not hasattr(model, "logit_scale"):
        raise ModelError("the recovery fine-tune trains a dual encoder contrastively; this model has no pair "
                         "of towers (fine-tune it with `polymodal train` instead)")
    if not pruned:
        raise ModelError("nothing was pruned, so there is nothing to recover")
    locked = [m for m in model.towers if m not in pruned]
    with tempfile.TemporaryDirectory(prefix="polymodal-recover-") as tmp:
        start = model.save_pretrained(Path(tmp) / "pruned")
        cfg = RunConfig(
            model=ModelConfig(preset=str(start), kind="dual"),
            data=DataConfig(manifest=str(data), batch_size=BATCH_SIZE, label_columns=[]),
            objective=ContrastiveConfig(),
            train=TrainConfig(strategy="full", locked_towers=locked, lr=LR, head_lr=HEAD_LR, epochs=steps,
                              max_steps=steps, seed=seed, warmup_ratio=0.05, eval_every=steps,
                              checkpoint_every=steps, log_every=max(steps // 10, 1), progress=False, keep_last=1,
                              early_stopping_metric="val/loss", early_stopping_mode="min"),
        )
        result = train(cfg, Path(tmp) / "run")
        out = load_model(Path(tmp) / "run" / "model")
    final = {k: round(float(v), 4) for k, v in (result.final_metrics or {}).items()
             if k in ("val/loss", "val/recall@1")}
    return out, {"steps": steps, "data": str(data), "locked": locked, "seed": seed, **final}


register_transform("pruned_recovered")  # a record only: the weights carry the training, `pruned` the shape
