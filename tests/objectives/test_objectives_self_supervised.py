"""SimCLR (two augmented views, InfoNCE through the objective's head) and domain-adaptive MLM
(transformers' masking collator + MLM head on the text tower): the losses learn, the views and
masks are reproducible, the strategies apply, and both train from the example YAMLs and reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import polymodal
from polymodal.config import DataConfig, config_from_dict, load_config, objective_config
from polymodal.data.loader import MultimodalDataset, Views, make_collate
from polymodal.errors import ModelError
from polymodal.models.build import build_preset
from polymodal.objectives import MaskedLMLoss, SimCLRLoss, build_objective

ROOT = Path(__file__).resolve().parents[2]
SIMCLR = ROOT / "examples" / "self_supervised.yaml"
MLM = ROOT / "examples" / "self_supervised_mlm.yaml"


@pytest.fixture(scope="module")
def shape_rows(shapes_dir: Path) -> list[dict[str, Any]]:
    from polymodal.data.sources import load_manifest

    return [r for r in load_manifest(shapes_dir / "manifest.jsonl").rows if r["split"] == "train"]


def _cnn() -> Any:
    from polymodal.models.dual import EmbeddingModel
    from polymodal.models.towers import build_tower

    torch.manual_seed(0)
    return EmbeddingModel({"image": build_tower({"modality": "image", "source": "builtin-cnn", "options": {"image_size": 32}})})


def _steps(objective: Any, model: Any, batch: dict[str, Any], params: list[Any], lr: float, n: int) -> tuple[list[float], Any]:
    """``n`` AdamW steps on one batch (can the objective fit it?): the losses and the last result."""
    opt = torch.optim.AdamW(params, lr=lr)
    losses = []
    for _ in range(n):
        res = objective(model(batch), batch)
        opt.zero_grad()
        res.loss.backward()
        losses.append(float(res.loss.detach()))
        opt.step()
    return losses, res


def test_views_are_distinct_seeded_augmentations_stacked_view_major(shapes_dir: Path, shape_rows: list[dict[str, Any]]) -> None:
    cfg = DataConfig(image={"views": 2, "size": 32})
    ds = MultimodalDataset(shape_rows[:2], shapes_dir, ["image"], {}, cfg, augment=False, seed=3)
    a, b = ds[0]["image"], ds[0]["image"]
    assert isinstance(a, Views) and len(a) == 2 and a[0].size == (32, 32)
    assert a[0].tobytes() == b[0].tobytes()  # same (seed, epoch, index, view): same view
    assert a[0].tobytes() != a[1].tobytes()  # two views differ
    single = MultimodalDataset(shape_rows[:2], shapes_dir, ["image"], {}, DataConfig(image={"size": 32, "augment": True}),
                               seed=3)[0]["image"]
    assert single.tobytes() == a[0].tobytes()  # view 0 is the one-view augmentation
    batch = make_collate({"image": lambda xs: [x.size for x in xs]}, {})([ds[0], ds[1]])
    assert batch["views"] == 2 and len(batch["image"]) == 4 and batch["id"] == [r["id"] for r in shape_rows[:2]]


def test_simclr_learns_to_match_views_and_its_head_is_its_own(shapes_dir: Path, shape_rows: list[dict[str, Any]]) -> None:
    model = _cnn()  # a small random-init CNN: its views are far apart at first, so there is something to learn
    objective = build_objective(objective_config(kind="simclr", temperature=0.2), model)
    assert isinstance(objective, SimCLRLoss)
    assert not {id(p) for p in objective.parameters()} & {id(p) for p in model.parameters()}
    cfg = DataConfig(image={"views": 2, "size": 32, "random_resized_crop_scale": (0.5, 1.0)})
    ds = MultimodalDataset(shape_rows[:8], shapes_dir, ["image"], {}, cfg, augment=False, seed=3)
    batch = make_collate(model.processors, {})([ds[i] for i in range(len(ds))])
    assert batch["image"].shape[0] == 16
    losses, res = _steps(objective, model, batch, [*model.parameters(), *objective.parameters()], 1e-3, 4)
    assert losses[-1] < losses[0] / 2, losses  # measured: 1.96 -> 0.18 in four steps
    assert float(res.metrics["acc_view_match"]) == 1.0
    single = {"image": batch["image"][:8]}
    with pytest.raises(ModelError, match="data.image.views: 2"):
        objective(model(single), single)


def test_mlm_masks_reproducibly_learns_and_names_towers_it_cannot_train() -> None:
    torch.manual_seed(0)
    model = build_preset("tiny-dual")
    objective = build_objective(objective_config(kind="mlm", mlm_probability=0.3), model)
    assert isinstance(objective, MaskedLMLoss)
    texts = ["a red circle above a blue square", "a green triangle on a plain background", "two stars and a cross"] * 2
    batch = {"text": model.tower("text").preprocess(texts), "id": [f"r{i}" for i in range(6)]}
    ids = batch["text"]["input_ids"]
    m1, labels = objective._mask(ids, batch["id"])
    m2, _ = objective._mask(ids, batch["id"])
    assert torch.equal(m1, m2) and not torch.equal(m1, ids)  # seeded by the rows' ids
    assert (labels[ids == 0] == -100).all() and (labels[:, 0] == -100).all()  # padding and [CLS] never scored
    assert torch.equal(labels[labels != -100], ids[labels != -100])
    losses, _ = _steps(objective, model, batch, [*model.tower("text").parameters(), *objective.parameters()], 3e-3, 6)
    assert losses[-1] < losses[0] - 0.5, losses  # measured: 10.35 -> 9.50 in six steps
    from polymodal.models.dual import EmbeddingModel
    from polymodal.models.towers import build_tower

    byte_text = EmbeddingModel({"text": build_tower({"modality": "text", "source": "builtin-text"})})
    with pytest.raises(ModelError, match="transformers text tower with a mask token"):
        build_objective(objective_config(kind="mlm"), byte_text)


def _tiny_overrides(shapes_dir: Path) -> list[str]:
    return [f"data.manifest={shapes_dir / 'manifest.jsonl'}", "data.batch_size=4", "data.num_workers=0",
            "train.max_steps=2", "train.eval_every=2", "train.log_every=1", "train.progress=false"]


def test_example_yamls_train_tiny_models_with_strategies_and_reload(shapes_dir: Path, tmp_path: Path) -> None:
    from polymodal.train import train

    simclr = load_config(SIMCLR, [*_tiny_overrides(shapes_dir), "model.preset=tiny-dual", "model.towers=null",
                                  "data.image.size=64", "train.strategy=lora"])
    assert simclr.objective.kind == "simclr" and simclr.data.image.views == 2 and simclr.model.kind == "embedding"
    run = train(simclr, tmp_path / "simclr")
    assert run.strategy is not None and run.strategy.strategy == "lora" and "val/acc_view_match" in run.final_metrics
    saved = polymodal.load(str(run.run_dir))
    assert type(saved).__name__ == "EmbeddingModel" and saved.transforms[0]["kind"] == "lora_merged"
    mlm = load_config(MLM, [*_tiny_overrides(shapes_dir), "model.preset=tiny-dual", "train.strategy=top_k"])
    run = train(mlm, tmp_path / "mlm")
    assert run.strategy is not None and run.strategy.strategy == "top_k" and run.final_metrics["val/mlm_loss"] > 0
    before = build_preset("tiny-dual").tower("text").encoder.model.embeddings.word_embeddings.weight
    after = polymodal.load(str(run.run_dir)).tower("text").encoder.model.embeddings.word_embeddings.weight
    assert torch.equal(before, after)  # top-k trains the last block only: the embeddings stay
    assert config_from_dict({"objective": {"kind": "mlm"}}).objective.kind == "mlm"
