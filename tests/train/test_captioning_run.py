"""A captioning run through the real ``train()``: tiny ViT locked (its token grid cached once),
a 2-layer width-32 decoder over a vocabulary trained on the captions, two steps; then the saved
model loads, captions and is evaluated like any other; and the example config parses."""

from __future__ import annotations

from pathlib import Path

import torch

import polymodal
from polymodal.config import config_from_dict, load_config
from polymodal.models.captioner import CaptioningModel
from polymodal.models.towers import TokenFeatures
from polymodal.tasks import evaluate
from polymodal.train.run import build_parts, train

ROOT = Path(__file__).resolve().parents[2]


def _cfg(manifest: Path) -> object:
    return config_from_dict({
        "model": {"preset": None, "kind": "captioner",
                  "towers": [{"modality": "image", "source": "tiny", "name_or_path": "vit"}],
                  "decoder": {"init": "scratch", "vocab": "data", "num_layers": 2, "hidden_dim": 32, "num_heads": 2,
                              "max_length": 32}},
        "data": {"manifest": str(manifest), "batch_size": 8, "label_columns": []},
        "objective": {"kind": "captioning", "label_smoothing": 0.1},
        "train": {"strategy": "locked", "locked_towers": ["image"], "max_steps": 2, "lr": 1e-3, "log_every": 1,
                  "progress": False},
    })


def test_captioning_run_trains_saves_and_evaluates(shapes_dir: Path, tmp_path: Path) -> None:
    manifest = shapes_dir / "manifest.jsonl"
    cfg = _cfg(manifest)
    parts = build_parts(cfg, tmp_path / "parts")  # type: ignore[arg-type]
    batch = parts.train.collate([parts.train.dataset[i] for i in range(3)])
    assert isinstance(batch["image"], TokenFeatures)  # the locked tower's grid, computed once
    assert set(batch["text"]) == {"input_ids", "attention_mask", "target_mask"}
    assert len(parts.model.decoder.tokenizer) < 200  # type: ignore[union-attr]

    result = train(cfg, tmp_path / "run")  # type: ignore[arg-type]
    assert result.steps == 2
    model = polymodal.load(tmp_path / "run" / "model")
    assert isinstance(model, CaptioningModel)
    # the frozen image encoder kept its weights; the decoder learnt
    fresh = parts.model
    assert torch.equal(model.image_tower.encoder.state_dict()["model.embeddings.cls_token"],
                       fresh.image_tower.encoder.state_dict()["model.embeddings.cls_token"])  # type: ignore[union-attr]
    captions = model.generate([str(shapes_dir / "images" / "shapes-00000.png")], max_new_tokens=6)
    assert len(captions) == 1 and isinstance(captions[0], str)
    res = evaluate(tmp_path / "run", "captioning", manifest, split="test", bootstrap=0, max_new_tokens=8)
    assert 0.0 <= res.metrics["bleu4"].value <= 100.0
    assert 0.0 <= res.metrics["attribute_accuracy"].value <= 1.0


def test_captioning_example_parses_with_a_manifest(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "examples" / "captioning.yaml", [f"data.manifest={tmp_path / 'm.jsonl'}"])
    assert (cfg.model.kind, cfg.objective.kind, cfg.model.decoder.vocab) == ("captioner", "captioning", "data")
    assert load_config(ROOT / "examples" / "captioning.yaml").data.manifest is None
