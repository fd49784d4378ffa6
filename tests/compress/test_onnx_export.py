"""ONNX export of tiny-dual: onnxruntime parity, reload through polymodal.load, eval, compare, bad folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import polymodal
from polymodal.errors import ModelError
from polymodal.export.onnx import export_onnx
from polymodal.export.onnx_model import OnnxDualEncoder


@pytest.fixture(scope="module")
def exported(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(str(tiny_folder), tmp_path_factory.mktemp("onnx") / "onnx").folder


def test_export_loads_and_matches_pytorch(tiny_folder: Path, exported: Path, texts: list[str], images: list,
                                          find_pickles) -> None:  # type: ignore[no-untyped-def]
    config = json.loads((exported / "config.json").read_text())
    assert config["class"] == "OnnxDualEncoder" and config["transforms"][0]["kind"] == "onnx_export"
    assert min(config["transforms"][0]["parity_min_cosine"].values()) >= 0.9999
    assert sorted(p.name for p in (exported / "onnx").iterdir()) == ["image.onnx", "text.onnx"]
    assert find_pickles(exported) == []
    fp32, onnx = polymodal.load(tiny_folder), polymodal.load(exported)
    assert isinstance(onnx, OnnxDualEncoder)
    assert not any(p.device.type == "meta" for p in onnx.parameters())
    for encode, items in (("encode_text", texts), ("encode_image", images)):
        a, b = getattr(fp32, encode)(items), getattr(onnx, encode)(items)
        assert F.cosine_similarity(a, b).min() >= 0.9999
        assert getattr(onnx, encode)(items[0]).shape == (32,)  # one item, batch of 1: dynamic axes
    assert torch.allclose(onnx.scale(), fp32.scale())


def test_export_ranks_beside_pytorch_in_compare(tiny_folder: Path, exported: Path, shapes: Path, tmp_path: Path) -> None:
    from polymodal.tasks.compare import compare

    board = compare([str(tiny_folder), str(exported)], ["zeroshot-classification"], [shapes], bootstrap=0)
    values = [cells for cells in board.cells.values()]
    assert len(values) == 2
    a, b = (next(iter(c.values())).value for c in values)
    assert abs(a - b) <= 0.05  # same model, another runtime


def test_missing_or_mismatched_files_are_named(exported: Path, tmp_path: Path) -> None:
    broken = shutil.copytree(exported, tmp_path / "broken")
    (broken / "onnx" / "text.onnx").unlink()
    with pytest.raises(ModelError, match=r"text\.onnx is missing"):
        polymodal.load(broken)
    shutil.copy(exported / "onnx" / "image.onnx", broken / "onnx" / "text.onnx")
    with pytest.raises(ModelError, match=r"text\.onnx does not match config\.json"):
        polymodal.load(broken)
    shutil.copy(exported / "onnx" / "text.onnx", broken / "onnx" / "text.onnx")
    shutil.rmtree(broken / "towers" / "text")
    with pytest.raises(ModelError, match=r"towers/text/config\.json is missing"):
        polymodal.load(broken)


def test_failed_parity_writes_nothing_and_says_by_how_much(tiny_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"parity check failed for the image tower: min cosine to PyTorch 1\.0+\d* < 1\.5 "
                                         r"\(missed by 5\.0+e-01\)"):
        export_onnx(str(tiny_folder), tmp_path / "x", min_cosine=1.5)
    assert list(tmp_path.iterdir()) == []


def test_cli_int8_export(tiny_folder: Path, tmp_path: Path, texts: list[str], polymodal_cli) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "int8"
    proc = polymodal_cli("export", "onnx", tiny_folder, "--out", out, "--int8")
    assert proc.exit_code == 0, proc.stderr
    assert "int8" in proc.stdout and json.loads((out / "config.json").read_text())["transforms"][0]["int8"] is True
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / "onnx" / "text.onnx")).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    a = polymodal.load(tiny_folder).encode_text(texts)
    assert F.cosine_similarity(a, polymodal.load(out).encode_text(texts)).min() >= 0.98
