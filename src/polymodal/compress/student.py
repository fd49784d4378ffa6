"""A distillation student cut from the teacher itself: some of its transformer layers kept.

``cut_student(teacher, {"text": [0, 2, 4]})`` is a copy of the teacher whose text tower keeps
layers 0, 2 and 4 of six, in that order, with the teacher's weights (embeddings, kept layers,
pooling, projection); towers not named stay whole. The tower's transformers config says the new
layer count, so the saved student is a plain 3-layer model that loads without any transform: it
starts where the teacher is (same tokenizer, same preprocessing, same width) rather than from
random weights, and the distillation only has to make up for the dropped layers.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from polymodal.errors import ModelError

# transforms whose rebuild names layers by index or replaces them: a cut would break them
_STRUCTURAL = ("pruned", "int8_dynamic")


def parse_layers(text: str) -> dict[str, list[int]]:
    """``"text=0,2,4;image=0,5"`` (or a list of ``m=...``) -> ``{"text": [0, 2, 4], "image": [0, 5]}``."""
    out: dict[str, list[int]] = {}
    for part in (p.strip() for p in text.replace(";", " ").split()):
        modality, sep, value = part.partition("=")
        try:
            if not sep or not modality:
                raise ValueError
            out[modality.strip()] = [int(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ModelError(f"--student-layers {part!r}: expected MODALITY=I,J,K (e.g. text=0,2,4)") from None
    return out


def _layer_list(model: nn.Module, blocks: list[nn.Module]) -> tuple[nn.Module, str]:
    """(parent, attribute) of the ModuleList holding exactly ``blocks``."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == len(blocks) \
                and all(a is b for a, b in zip(module, blocks, strict=True)):
            parent, _, attr = name.rpartition(".")
            return model.get_submodule(parent), attr
    raise ModelError("could not find the module list that holds the tower's layers")


def cut_student(teacher: Any, layers: dict[str, list[int]]) -> Any:
    """A copy of ``teacher`` whose named towers keep only the listed transformer layers (see module doc)."""
    kinds = [t.get("kind") for t in getattr(teacher, "transforms", []) if t.get("kind") in _STRUCTURAL]
    if kinds:
        raise ModelError(f"--student-layers cuts a float32 model's layers; the teacher records {', '.join(kinds)} "
                         "(cut the model it was made from, then compress the student)")
    unknown = [m for m in layers if m not in teacher.towers]
    if unknown:
        raise ModelError(f"--student-layers names tower(s) {', '.join(unknown)}; the teacher has {', '.join(teacher.towers)}")
    student = copy.deepcopy(teacher)
    for modality, keep in layers.items():
        encoder = student.tower(modality).encoder
        config = getattr(getattr(encoder, "model", None), "config", None)
        blocks = encoder.blocks()
        if config is None or not hasattr(config, "num_hidden_layers") or len(blocks) != config.num_hidden_layers:
            raise ModelError(f"--student-layers: the {modality} tower is not a transformers encoder with a layer "
                             "count in its config (only such towers can be cut by layer)")
        n = len(blocks)
        if not keep or len(set(keep)) != len(keep) or any(not 0 <= i < n for i in keep):
            raise ModelError(f"--student-layers {modality}={','.join(map(str, keep))}: give distinct layer indices "
                             f"in 0..{n - 1} (the teacher's {modality} tower has {n} layers)")
        parent, attr = _layer_list(encoder, blocks)
        setattr(parent, attr, nn.ModuleList(blocks[i] for i in keep))
        config.num_hidden_layers = len(keep)
    return student
