"""int8-dynamic on tiny-dual: real int8 kernels, int8 bytes in safetensors, exact reload, eval."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import nn

import polymodal
from polymodal.compress.api import CompressOptions, compress
from polymodal.compress.int8 import Int8DynamicLinear, Int8Embedding, quantize_int8
from polymodal.errors import ModelError


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("model.safetensors"))


def test_int8_folder_reloads_exactly_and_stays_close(tiny_folder: Path, tmp_path: Path, texts: list[str],
                                                     images: list, find_pickles) -> None:  # type: ignore[no-untyped-def]
    result = compress(str(tiny_folder), "int8-dynamic", tmp_path / "int8")
    assert [t["kind"] for t in result.transforms] == ["int8_dynamic"]
    fp32, q = polymodal.load(tiny_folder), polymodal.load(result.folder)
    kinds = {type(m) for m in q.modules()}
    assert Int8DynamicLinear in kinds and Int8Embedding in kinds
    assert {n for n, m in q.named_modules() if type(m) is nn.Linear} <= {"towers.image.projection", "towers.text.projection"}
    assert "towers.image.encoder.model.embeddings.patch_embeddings.projection" in q.transforms[0]["skipped"]
    with safe_open(str(result.folder / "model.safetensors"), "pt") as f:
        assert f.get_tensor(q.transforms[0]["linear"][0] + ".weight_int8").dtype == torch.int8
    assert _size(result.folder) < 0.45 * _size(tiny_folder)
    assert find_pickles(result.folder) == []
    again = quantize_int8(fp32)[0]
    for encode in ("encode_text", "encode_image"):
        items = texts if encode == "encode_text" else images
        a, b, c = getattr(fp32, encode)(items), getattr(q, encode)(items), getattr(again, encode)(items)
        assert torch.equal(b, c)  # the reloaded model is the model that was saved
        assert F.cosine_similarity(a, b).min() > 0.99
        assert not torch.equal(a, b)  # the int8 kernels really ran


def test_int8_eval_and_strict(tiny_folder: Path, tmp_path: Path, shapes: Path) -> None:
    from polymodal.tasks import evaluate

    folder = compress(str(tiny_folder), "int8-dynamic", tmp_path / "q", CompressOptions(towers=["text"])).folder
    q = polymodal.load(folder)
    image_kinds = {type(m) for m in q.tower("image").modules()}
    assert nn.Linear in image_kinds and Int8DynamicLinear not in image_kinds
    assert Int8DynamicLinear in {type(m) for m in q.tower("text").modules()}
    res = evaluate(str(folder), "zeroshot-classification", shapes, bootstrap=0)
    assert 0.0 <= res.metrics["acc@1"].value <= 1.0
    with pytest.raises(ModelError, match="patch_embeddings.projection .Conv2d"):
        compress(str(tiny_folder), "int8-dynamic", tmp_path / "strict", CompressOptions(strict=True))
    with pytest.raises(ModelError, match="not empty"):
        compress(str(tiny_folder), "int8-dynamic", folder)
    with pytest.raises(ModelError, match="no tower audio"):
        quantize_int8(polymodal.load(tiny_folder), ["audio"])


def test_cli_compress_int8(tiny_folder: Path, tmp_path: Path, polymodal_cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "cli"
    ok = polymodal_cli("compress", tiny_folder, "--method", "int8-dynamic", "--out", out)
    assert ok.exit_code == 0, ok.stderr
    assert "kept in float32: 1 x Conv2d" in ok.stdout and (out / "model.safetensors").is_file()
    bad = polymodal_cli("compress", tiny_folder, "--method", "int4", "--out", tmp_path / "x")
    assert bad.exit_code == 2 and "unknown --method 'int4'" in bad.stderr and "Traceback" not in bad.stderr
