"""``polymodal train``'s short flags: --epochs, --lr, --batch-size, --image-size alias ``--set`` keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

import polymodal
from polymodal.cli.main import app
from polymodal.cli.train import config_with_flags
from polymodal.config import ConfigError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_the_short_flags_and_their_keys() -> None:
    code, out, _ = _invoke("train", "--help")
    assert code == 0
    for flag, key in (("--epochs", "train.epochs"), ("--lr", "train.lr"), ("--batch-size", "data.batch_size"),
                      ("--image-size", "options.image_size")):
        assert flag in out and key in out, flag


def test_flags_set_the_same_keys_as_set() -> None:
    cfg, notes = config_with_flags(EXAMPLES / "tiny_contrastive.yaml", [], epochs=3, lr=0.005, batch_size=8)
    via_set, _ = config_with_flags(EXAMPLES / "tiny_contrastive.yaml",
                                   ["train.epochs=3", "train.lr=0.005", "data.batch_size=8"])
    assert (cfg.train.epochs, cfg.train.lr, cfg.data.batch_size) == (3, 0.005, 8)
    assert cfg == via_set and notes == []
    with pytest.raises(ConfigError, match=r"--epochs 2 and --set train.epochs=5 .*give one"):
        config_with_flags(EXAMPLES / "tiny_contrastive.yaml", ["train.epochs=5"], epochs=2)
    with pytest.raises(ConfigError, match=r"train.lr: Input should be greater than 0"):
        config_with_flags(EXAMPLES / "tiny_contrastive.yaml", [], lr=0.0)


def test_image_size_reaches_the_tower_not_only_the_crop() -> None:
    # tiny-dual's image tower comes from the preset: it is added to model.towers to carry the size
    cfg, _ = config_with_flags(EXAMPLES / "tiny_contrastive.yaml", [], image_size=32)
    assert cfg.data.image.size == 32
    image = [t for t in cfg.model.towers or [] if t.modality == "image"]
    assert len(image) == 1 and image[0].source == "tiny" and image[0].options["image_size"] == 32
    # a hub preset with an offline fallback: the fallback's towers get the size, the hub ViT cannot
    cfg, notes = config_with_flags(EXAMPLES / "image_classification.yaml", [], image_size=96)
    fb = cfg.model.fallback_towers or []
    assert [t.options["image_size"] for t in fb if t.modality == "image"] == [96]
    assert cfg.model.towers is None
    assert any("vit-base-in21k" in n and "keeps its own" in n for n in notes)
    # a fallback that used model.towers gets its own list, so the primary's towers do not leak into it
    cfg, notes = config_with_flags(EXAMPLES / "clip_multimodal_classification.yaml", [], image_size=128)
    assert [(t.source, t.options["image_size"]) for t in cfg.model.fallback_towers or []] == [("efficientnet-lite0", 128)]
    # a model that reads no images
    with pytest.raises(ConfigError, match=r"--image-size: this model reads text only"):
        config_with_flags(EXAMPLES / "text_classification.yaml", [], image_size=64)
    with pytest.raises(ConfigError, match=r"--image-size 64 and --set data.image.size=48"):
        config_with_flags(EXAMPLES / "tiny_contrastive.yaml", ["data.image.size=48"], image_size=64)


def test_a_real_run_with_the_short_flags(tmp_path: Path) -> None:
    from polymodal.data.builtin import make_dataset

    manifest = make_dataset("shapes", tmp_path / "shapes", n=24)
    run = tmp_path / "run"
    code, out, err = _invoke("train", str(EXAMPLES / "tiny_contrastive.yaml"), "--set", f"data.manifest={manifest}",
                             "--set", "train.max_steps=2", "--set", "train.progress=false",
                             "--epochs", "2", "--lr", "0.002", "--batch-size", "4", "--image-size", "32",
                             "--out", str(run))
    assert code == 0, err + out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 2 and saved["train"]["lr"] == 0.002
    assert saved["data"]["batch_size"] == 4 and saved["data"]["image"]["size"] == 32
    model = polymodal.load(str(run))
    # the saved model sees 32-px images (read from its preprocessing: HFVisionEncoder.image_size
    # reports 224 under transformers 5, whose processors keep sizes in a SizeDict, not a dict)
    pixels = model.tower("image").preprocess([Image.new("RGB", (100, 80))])
    assert tuple(pixels.shape[-2:]) == (32, 32)
