"""An exported ONNX folder as a polymodal model: the same ``encode_*`` API, run by onnxruntime.

The folder is a normal polymodal model folder: ``config.json`` names ``OnnxDualEncoder``,
``model.safetensors`` holds the temperature (and bias), ``towers/<m>/`` the preprocessing
assets (tokenizer / processor files), and ``onnx/<m>.onnx`` one graph per tower (raw inputs
-> the tower's projected embedding, before normalisation). Each tower's preprocessing is the
original encoder's, rebuilt on the meta device (no weights allocated); its forward pass is an
``onnxruntime.InferenceSession``. Loading checks every file the config names (the graph's
sha256 and input names), naming the file that is missing or does not match.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.errors import ModelError
from polymodal.models.dual import DualEncoder
from polymodal.models.encoders.base import Encoder, Inputs
from polymodal.models.hub import register_model_class
from polymodal.models.towers import Tower, build_encoder
from polymodal.models.transforms import register_transform

# attributes the runtime's decoding reads from an encoder (image size, audio rate, frame count)
_DECODE_ATTRS = ("image_size", "sample_rate", "num_frames", "max_pixels")

register_transform("onnx_export")  # the graphs carry the change; nothing to rebuild in torch


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ort_session(path: Path, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for ``path`` (intra-op threads: torch's count, as the CLI configured it)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("running an ONNX export needs onnxruntime: pip install 'polymodal[compress]'") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph types
        raise ModelError(f"{path}: onnxruntime cannot load it ({str(exc).strip().splitlines()[0]})") from None


class OnnxEncoder(Encoder):
    """A tower's whole forward pass (encoder + pooling + projection) as an onnxruntime session."""

    bf16_safe = False

    def __init__(self, source: Encoder, session: Any, inputs: list[str], output_dim: int, spec: dict[str, Any]) -> None:
        super().__init__()
        self.__dict__["_source"] = source  # preprocessing only; not a submodule (its weights are on meta)
        self.modality = source.modality
        self.hidden_dim = source.hidden_dim
        self.pooled_dim = output_dim
        self.session = session
        self.input_names = list(inputs)
        self._spec = spec
        for attr in _DECODE_ATTRS:
            if hasattr(source, attr):
                setattr(self, attr, getattr(source, attr))

    @property
    def source(self) -> Encoder:
        return self.__dict__["_source"]  # type: ignore[no-any-return]

    def preprocess(self, items: list[Any]) -> Inputs:
        return self.source.preprocess(items)

    def item_lengths(self, items: list[Any]) -> list[int]:
        return self.source.item_lengths(items)

    def forward(self, inputs: Inputs) -> torch.Tensor:
        values = inputs if isinstance(inputs, dict) else {self.input_names[0]: inputs}
        feed = {name: _numpy(values[name]) for name in self.input_names}
        return torch.from_numpy(self.session.run(None, feed)[0])

    def forward_tokens(self, inputs: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
        raise ModelError("an ONNX export holds each tower's pooled embedding only, not its token features")

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.numpy() if value.dtype != torch.bfloat16 else value.float().numpy()
    return np.asarray(value)


def _tower(folder: Path, modality: str, entry: dict[str, Any]) -> Tower:
    graph = folder / str(entry.get("graph", ""))
    if not graph.is_file():
        raise ModelError(f"{graph} is missing (config.json names it as the {modality} tower's graph)")
    if entry.get("sha256") and sha256(graph) != entry["sha256"]:
        raise ModelError(f"{graph} does not match config.json (sha256 differs); re-export the model")
    assets = folder / "towers" / modality
    spec = entry["spec"]
    needs_assets = spec["encoder"].get("source") in ("hf", "tiny", "minilm")
    if needs_assets and not (assets / "config.json").is_file():
        raise ModelError(f"{assets / 'config.json'} is missing (the {modality} tower's preprocessing assets)")
    try:
        with torch.device("meta"):
            source = build_encoder(spec["encoder"], assets=assets)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{assets}: cannot read the {modality} tower's preprocessing assets ({exc})") from None
    session = ort_session(graph)
    names = [i.name for i in session.get_inputs()]
    if sorted(names) != sorted(entry["inputs"]):
        raise ModelError(f"{graph} takes inputs {names}, config.json says {entry['inputs']}; re-export the model")
    encoder = OnnxEncoder(source, session, entry["inputs"], int(entry["output_dim"]), spec["encoder"])
    return Tower(encoder)


class OnnxDualEncoder(DualEncoder):
    """A ``DualEncoder`` whose towers run as ONNX graphs in onnxruntime (see the module docstring)."""

    def __init__(self, towers: dict[str, Tower], entries: dict[str, dict[str, Any]], logit_bias: bool = False) -> None:
        super().__init__(towers, None, learn_temperature=False, logit_bias=-10.0 if logit_bias else None)
        self.encode_bf16 = False
        self._entries = entries

    def train(self, mode: bool = True) -> OnnxDualEncoder:
        if mode:
            raise ModelError("an ONNX export runs inference only; fine-tune the PyTorch model it came from")
        return super().train(False)  # type: ignore[return-value]

    def get_config(self) -> dict[str, Any]:
        return {"towers": self._entries, "embed_dim": self.embed_dim, "logit_bias": self.logit_bias is not None}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> OnnxDualEncoder:
        entries = config.get("towers")
        if not isinstance(entries, dict) or len(entries) < 2:
            raise ModelError(f"{folder}/config.json: an ONNX dual encoder names at least two tower graphs")
        towers = {m: _tower(folder, m, e) for m, e in entries.items()}
        return cls(towers, entries, bool(config.get("logit_bias")))


register_model_class(OnnxDualEncoder)


def count_graph_parameters(path: Path) -> int:
    """Elements in a graph's initializers (its weights)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))

