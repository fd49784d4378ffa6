"""End-to-end runs of `polymodal.train.train` on real (tiny) parts: report, frozen features computed once,
column mapping remembered by the model, objective-owned parameters trained and checkpointed."""

import json
from pathlib import Path

import pytest
import torch

import polymodal
from polymodal.config import config_from_dict
from polymodal.data.builtin import make_dataset
from polymodal.train import train


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset("shapes", tmp_path_factory.mktemp("shapes"), n=80)


def _cfg(manifest: Path, **sections: dict) -> object:
    base = {
        "model": {"preset": "tiny-dual", "kind": "dual"},
        "data": {"manifest": str(manifest), "batch_size": 16, "image": {"size": 64}},
        "train": {"epochs": 2, "lr": 1e-3, "log_every": 1, "progress": False},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return config_from_dict(base)


def test_lit_run_keeps_the_locked_tower_and_writes_report(shapes: Path, tmp_path: Path) -> None:
    cfg = _cfg(shapes, train={"epochs": 2, "lr": 1e-3, "log_every": 1, "progress": False,
                              "strategy": "lora", "locked_towers": ["image"], "lora": {"towers": ["text"]}})

    result = train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "report.html").is_file()
    assert result.steps > 0
    model = polymodal.load(str(tmp_path / "run" / "model"))
    # the folder records that LoRA was merged into its text tower, with the adapter's settings
    merged = {"kind": "lora_merged", "towers": ["text"], "r": cfg.train.lora.r, "alpha": cfg.train.lora.alpha}
    assert json.loads((tmp_path / "run" / "model" / "config.json").read_text())["transforms"] == [merged]
    assert model.transforms == [merged]
    assert "lora_merged" in (tmp_path / "run" / "model" / "README.md").read_text()
    # the locked image encoder kept its weights; the text encoder changed through merged LoRA
    fresh = polymodal.load("tiny-dual")
    img_a = dict(model.towers["image"].encoder.named_parameters())
    img_b = dict(fresh.towers["image"].encoder.named_parameters())
    assert all(torch.equal(img_a[k], img_b[k]) for k in img_a)
    txt_a = dict(model.towers["text"].encoder.named_parameters())
    txt_b = dict(fresh.towers["text"].encoder.named_parameters())
    assert any(not torch.equal(txt_a[k], txt_b[k]) for k in txt_a)


def test_locked_tower_features_are_computed_once_before_training(shapes: Path, tmp_path: Path) -> None:
    from polymodal.models.towers import PooledFeatures
    from polymodal.train.run import build_parts

    # float32 pinned: the comparison below is with a float32 forward pass
    cfg = _cfg(shapes, train={"strategy": "locked", "locked_towers": ["image"], "progress": False,
                              "mixed_precision": "no"})
    parts = build_parts(cfg, tmp_path)
    model = parts.model
    tower = model.towers["image"]
    seen: list[int] = []
    tower.encoder.register_forward_hook(lambda _m, args, _o: seen.append(int(args[0].shape[0])))
    train_ds = parts.train.dataset
    batch = parts.train.collate([train_ds[i] for i in range(8)])
    assert isinstance(batch["image"], PooledFeatures) and isinstance(batch["text"], dict)
    model(batch)
    assert seen == []  # the stored features stand in for the encoder
    # ... and they are what the frozen encoder gives for those images
    from polymodal.data.loader import MultimodalDataset

    raw = MultimodalDataset(train_ds.rows[:8], train_ds.root, ["image"], {}, cfg.data, augment=False)
    pixels = tower.preprocess([raw[i]["image"] for i in range(8)])
    tower.encoder.eval()
    with torch.inference_mode():
        torch.testing.assert_close(batch["image"].values, tower.encoder(pixels), atol=1e-5, rtol=1e-4)
    # the text tower trains, so it is never cached
    assert "text" not in train_ds.features


def test_augmented_or_training_towers_are_not_cached(shapes: Path, tmp_path: Path) -> None:
    from polymodal.train.run import build_parts

    augmented = _cfg(shapes, data={"manifest": str(shapes), "image": {"augment": True, "size": 64}},
                     train={"strategy": "locked", "locked_towers": ["image"], "progress": False})
    assert build_parts(augmented, tmp_path / "a").train.dataset.features == {}
    full = _cfg(shapes, train={"strategy": "full", "progress": False})
    assert build_parts(full, tmp_path / "b").train.dataset.features == {}
    off = _cfg(shapes, train={"strategy": "locked", "locked_towers": ["image"], "progress": False,
                              "cache_frozen_features": False})
    assert build_parts(off, tmp_path / "c").train.dataset.features == {}


def test_fusion_model_remembers_its_text_column(shapes: Path, tmp_path: Path) -> None:
    cfg = _cfg(shapes, model={"preset": "tiny-dual", "kind": "fusion", "inputs": ["image", "text"],
                              "heads": {"answer": {"kind": "classification"}}},
               data={"manifest": str(shapes), "batch_size": 16, "columns": {"text": "question"},
                     "label_columns": ["answer"], "image": {"size": 64}},
               objective={"kind": "classification"},
               train={"epochs": 1, "progress": False, "early_stopping_metric": "val/accuracy"})
    train(cfg, tmp_path / "fusion")
    saved = json.loads((tmp_path / "fusion" / "model" / "config.json").read_text())
    assert saved["input_columns"] == {"text": "question"}
    model = polymodal.load(str(tmp_path / "fusion" / "model"))
    assert model.input_columns == {"text": "question"}
    # rows without a caption at all: evaluation must read the question column, as training did
    rows = [json.loads(line) for line in shapes.read_text().splitlines()]
    stripped = shapes.parent / "no_captions.jsonl"
    stripped.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "text"}) + "\n" for r in rows))
    result = polymodal.tasks.evaluate(model, "classification", str(stripped), split="test",
                                      label_column="answer", bootstrap=0, cache=False)
    assert 0.0 <= result.metrics["accuracy"].value <= 1.0
    assert result.details["n"] == sum(1 for r in rows if r["split"] == "test")


def test_uncertainty_weights_train_and_are_checkpointed(shapes: Path, tmp_path: Path) -> None:
    cfg = _cfg(shapes, model={"preset": "tiny-dual", "kind": "classifier", "inputs": ["image"],
                              "heads": {"shape": {"kind": "classification"}, "color": {"kind": "classification"}}},
               data={"manifest": str(shapes), "batch_size": 16, "label_columns": ["shape", "color"],
                     "image": {"size": 64}},
               objective={"kind": "multitask", "weighting": "uncertainty"},
               train={"epochs": 1, "progress": False, "checkpoint_every": 2, "lr": 1e-2})
    train(cfg, tmp_path / "mt")
    ckpts = sorted((tmp_path / "mt" / "checkpoints").glob("step-*"))
    assert ckpts
    from safetensors.torch import load_file

    tensors = load_file(str(ckpts[-1] / "state.safetensors"))
    log_vars = {k: v for k, v in tensors.items() if "log_vars" in k and k.startswith("s.objective")}
    assert set(log_vars) and all(float(v.abs()) > 0 for v in log_vars.values())


def test_fallback_preset_used_when_the_hub_model_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    from polymodal.config import ModelConfig
    from polymodal.errors import ModelError
    from polymodal.models import build_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError):
        build_model(ModelConfig(preset="clip-vit-b32", kind="dual"))
    with pytest.warns(UserWarning, match="fallback"):
        model = build_model(ModelConfig(preset="clip-vit-b32", fallback="tiny-dual", kind="dual"))
    assert set(model.towers) == {"image", "text"}


def test_fallback_towers_apply_only_when_the_fallback_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    from polymodal.config import ModelConfig, TowerSpec
    from polymodal.models import build_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    small = [TowerSpec(modality="image", source="builtin-cnn", options={"image_size": 24})]
    with pytest.warns(UserWarning, match="fallback"):
        used = build_model(ModelConfig(preset="clip-vit-b32", fallback="tiny-dual", fallback_towers=small, kind="dual"))
    assert used.towers["image"].encoder.image_size == 24
    # the preset loads here, so its own towers stay and fallback_towers are ignored
    kept = build_model(ModelConfig(preset="tiny-dual", fallback="tiny-dual", fallback_towers=small, kind="dual"))
    assert kept.towers["image"].encoder.image_size != 24


def test_data_limit_is_a_seeded_sample_in_manifest_order(shapes: Path, tmp_path: Path) -> None:
    from polymodal.train.run import build_parts

    rows = [json.loads(line) for line in shapes.read_text().splitlines()]
    train_ids = [r["id"] for r in rows if r["split"] == "train"]
    cfg = _cfg(shapes, data={"manifest": str(shapes), "image": {"size": 64}, "limit": 10})
    first = [r["id"] for r in build_parts(cfg, tmp_path / "a").train.dataset.rows]
    again = [r["id"] for r in build_parts(cfg, tmp_path / "b").train.dataset.rows]
    assert first == again and len(first) == 10
    assert first != train_ids[:10]  # not simply the first rows
    assert first == [i for i in train_ids if i in set(first)]  # manifest order kept
