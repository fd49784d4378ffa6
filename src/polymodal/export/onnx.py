"""``export_onnx(model, out)``: one ONNX graph per tower, parity-checked with onnxruntime.

Each tower (encoder + pooling + projection, in float32 eval mode) is exported with
``torch.onnx.export(dynamo=True)`` with dynamic batch (and sequence) axes. Before anything is
written to ``out`` the graphs run in onnxruntime on inputs of another batch size and length
than the export's, and the embeddings must reach ``min_cosine`` (default 0.9999) against
PyTorch; a miss writes nothing and says by how much. ``int8=True`` then quantizes the graphs
with onnxruntime's dynamic quantization (int8 weights of MatMul/Gemm, and Gather tables;
activations quantized at run time), checked against ``int8_min_cosine``; the folder then holds
the int8 graphs. The folder loads with ``polymodal.load`` as an ``OnnxDualEncoder``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from polymodal.errors import ModelError
from polymodal.export.onnx_model import ort_session, sha256
from polymodal.models.hub import FORMAT, FORMAT_VERSION, _card

SAMPLE_TEXTS = ["a photo of a red circle", "x", "two small blue squares on a white background next to a tree",
                "a cat", "the quick brown fox jumps over the lazy dog near the river bank at dawn"]
INT8_OPS = ["MatMul", "Gemm", "Gather"]


@dataclass
class ExportResult:
    folder: Path
    min_cosine: dict[str, float]  # per tower, fp32 graph vs PyTorch
    int8_min_cosine: dict[str, float]  # per tower, int8 graph vs PyTorch (empty without int8)

    def summary(self) -> str:
        parts = [f"{m}: fp32 min cosine {c:.6f}" + (f", int8 {self.int8_min_cosine[m]:.4f}" if m in self.int8_min_cosine else "")
                 for m, c in self.min_cosine.items()]
        return "parity vs PyTorch (onnxruntime): " + "; ".join(parts)


class _Graph(nn.Module):
    """A tower called with positional tensors (the names fixed at export)."""

    def __init__(self, tower: nn.Module, names: list[str], as_dict: bool) -> None:
        super().__init__()
        self.tower, self.names, self.as_dict = tower, names, as_dict

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.tower(dict(zip(self.names, xs, strict=True)) if self.as_dict else xs[0])  # type: ignore[no-any-return]


def _samples(tower: Any, n: int, seed: int) -> list[Any]:
    if tower.modality == "text":
        return [SAMPLE_TEXTS[(i + seed) % len(SAMPLE_TEXTS)] * (1 + (i + seed) % 3) for i in range(n)]
    if tower.modality == "image":
        size = int(getattr(tower.encoder, "image_size", 224) or 224)
        rng = np.random.default_rng(seed)
        return [rng.integers(0, 255, (size + 8 * i, size, 3), dtype=np.uint8) for i in range(n)]
    if tower.modality == "audio":  # noise of 0.5 s, 0.75 s, 1 s...: another length each, as texts have
        rate = int(getattr(tower.encoder, "sample_rate", 16000))
        rng = np.random.default_rng(seed)
        return [(0.1 * rng.standard_normal(rate // 2 + rate * i // 4)).astype(np.float32) for i in range(n)]
    raise ModelError(f"ONNX export covers image, text and audio towers; this model has a {tower.modality} tower")


def _export_tower(tower: Any, path: Path) -> list[str]:
    inputs = tower.preprocess(_samples(tower, 3, 0))
    as_dict = isinstance(inputs, dict)
    names = sorted(inputs) if as_dict else ["pixel_values"]
    args = tuple(inputs[k] for k in names) if as_dict else (inputs,)
    batch = torch.export.Dim("batch")
    dims: list[dict[int, Any]] = []
    for arg in args:
        axes: dict[int, Any] = {0: batch}
        if as_dict and arg.dim() == 2:
            axes[1] = torch.export.Dim("sequence")
        dims.append(axes)
    graph = _Graph(tower, names, as_dict).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(graph, args, input_names=names, output_names=["tower_output"],
                                        dynamic_shapes=(tuple(dims),), dynamo=True, verbose=False)
        except Exception as exc:  # the exporter's own error types
            raise ModelError(f"the {tower.modality} tower does not export to ONNX: "
                             f"{str(exc).strip().splitlines()[0]}") from None
    assert program is not None
    program.save(str(path))
    return names


def _parity(tower: Any, path: Path, names: list[str]) -> float:
    """Min cosine of the graph's outputs to PyTorch's on inputs of another shape than the export's."""
    session = ort_session(path)
    worst = 1.0
    for n, seed in ((5, 1), (1, 2)):
        inputs = tower.preprocess(_samples(tower, n, seed))
        values = inputs if isinstance(inputs, dict) else {names[0]: inputs}
        got = torch.from_numpy(session.run(None, {k: values[k].numpy() for k in names})[0])
        with torch.no_grad():
            want = tower(inputs).float()
        worst = min(worst, float(F.cosine_similarity(got, want, dim=-1).min()))
    return worst


def _quantize(src: Path, dst: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ModelError("--int8 needs onnxruntime: pip install 'polymodal[compress]'") from None
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime's quantizer logs a pre-processing hint on the root logger
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=INT8_OPS)
    finally:
        root.setLevel(level)


def export_onnx(model: Any, out: str | Path, *, int8: bool = False, min_cosine: float = 0.9999,
                int8_min_cosine: float = 0.98, overwrite: bool = False) -> ExportResult:
    """Export a dual encoder (loaded, or a preset / folder / run dir) to ``out``; see the module docstring."""
    from polymodal.compress.api import check_out
    from polymodal.models.dual import DualEncoder
    from polymodal.models.loading import load_model

    out = Path(out)
    check_out(out, overwrite)
    loaded = load_model(model) if isinstance(model, str | Path) else model
    if not isinstance(loaded, DualEncoder):
        raise ModelError(f"ONNX export covers dual encoders (image + text towers); got a {type(loaded).__name__}")
    if any(t.get("kind") == "int8_dynamic" for t in loaded.transforms):
        raise ModelError("this model is int8-quantized in PyTorch, whose kernels do not export; export its fp32 "
                         "source and pass --int8 for onnxruntime's int8")
    loaded.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        entries, cosines, int8_cosines = {}, {}, {}
        (work / "onnx").mkdir()
        for modality in loaded.modalities:
            tower: Any = loaded.tower(modality)
            tower.dedupe_inputs = False  # one plain pass per row in the graph
            try:
                path = work / "onnx" / f"{modality}.onnx"
                names = _export_tower(tower, path)
                cosines[modality] = _parity(tower, path, names)
                if cosines[modality] < min_cosine:
                    raise ModelError(f"ONNX parity check failed for the {modality} tower: min cosine to PyTorch "
                                     f"{cosines[modality]:.6f} < {min_cosine} (missed by {min_cosine - cosines[modality]:.2e}); "
                                     "nothing was written")
                if int8:
                    qpath = work / "onnx" / f"{modality}.int8.onnx"
                    _quantize(path, qpath)
                    int8_cosines[modality] = _parity(tower, qpath, names)
                    if int8_cosines[modality] < int8_min_cosine:
                        raise ModelError(f"int8 ONNX check failed for the {modality} tower: min cosine to PyTorch "
                                         f"{int8_cosines[modality]:.4f} < {int8_min_cosine} (missed by "
                                         f"{int8_min_cosine - int8_cosines[modality]:.2e}); nothing was written")
                    path.unlink()
                    path = qpath.rename(path)
            finally:
                del tower.dedupe_inputs
            tower.encoder.save_assets(work / "towers" / modality)
            entries[modality] = {"graph": f"onnx/{modality}.onnx", "sha256": sha256(path), "inputs": names,
                                 "output_dim": tower.output_dim, "spec": tower.spec()}
        _write_folder(loaded, work, entries, cosines, int8_cosines, int8)
        umask = os.umask(0)
        os.umask(umask)
        work.chmod(0o777 & ~umask)  # mkdtemp's folder is private; the export is a normal folder
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return ExportResult(out, cosines, int8_cosines)


def _write_folder(model: Any, folder: Path, entries: dict[str, Any], cosines: dict[str, float],
                  int8_cosines: dict[str, float], int8: bool) -> None:
    from polymodal import __version__

    entry = {"kind": "onnx_export", "int8": int8, "runtime": "onnxruntime", "parity_min_cosine": cosines,
             "int8_min_cosine": int8_cosines, "source_transforms": list(model.transforms),
             "torch": torch.__version__, "polymodal": __version__}
    name = model.card_info.get("name") or type(model).__name__
    info = {**model.card_info, "name": f"{name} (ONNX{' int8' if int8 else ''})"}
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "class": "OnnxDualEncoder",
              "model": {"towers": entries, "embed_dim": model.embed_dim, "logit_bias": model.logit_bias is not None},
              "card": info, "input_columns": dict(model.input_columns), "transforms": [entry]}
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    tensors = {"logit_scale": model.logit_scale.detach().clone()}
    if model.logit_bias is not None:
        tensors["logit_bias"] = model.logit_bias.detach().clone()
    save_file(tensors, str(folder / "model.safetensors"))
    model_view = type("Exported", (), {"towers": model.towers, "heads": None, "transforms": [entry]})()
    (folder / "README.md").write_text(_card(model_view, info), encoding="utf-8")
