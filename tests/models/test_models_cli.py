from __future__ import annotations

import json

from typer.testing import CliRunner

from polymodal.cli.main import app


def test_models_lists_presets_as_json():
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    for name in ("lite-dual", "tiny-dual", "clip-vit-b32", "chinese-clip-vit-b16", "siglip-base", "vit-base-in21k",
                 "bert-base-cased", "wav2vec2-base", "audio-cnn-text", "minilm", "efficientnet-lite0"):
        assert name in rows
    assert rows["lite-dual"]["offline"] is True and rows["clip-vit-b32"]["offline"] is False
    assert rows["clip-vit-b32"]["source"] == "openai/clip-vit-base-patch32"
    assert rows["tiny-dual"]["params"] > 0


def test_models_table():
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0 and "lite-dual" in result.output and "offline" in result.output


def test_register_preset_file(tmp_path):
    from polymodal.models.presets import get_preset, register_preset

    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"name": "my-text", "kind": "single", "offline": True,
                                "towers": [{"modality": "text", "source": "builtin-text"}]}))
    register_preset(path)
    assert get_preset("my-text").source == "text=builtin-text"
    import polymodal

    model = polymodal.load("my-text")
    assert model.encode_text(["hello"]).shape == (1, 64)
