"""The one loader (models/loading.py), the HF model-type table, the model-class registry and
the transforms record, on tiny real models saved to temporary folders."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import polymodal
from polymodal.errors import ModelError
from polymodal.models.dual import DualEncoder, EmbeddingModel
from polymodal.models.hub import PretrainedMixin, register_model_class, registered_model_classes
from polymodal.models.loading import load_model
from polymodal.models.transforms import record_transform, register_transform
from polymodal.models.wrapped import WrappedDualEncoder
from polymodal.tasks.evaluate import load_model as eval_load_model


# ---------------------------------------------------------------- a model class from outside polymodal
class ToyScale(PretrainedMixin, nn.Module):
    """The smallest saveable model: one learned scale per feature."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.scale = nn.Parameter(torch.randn(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale

    def get_config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> ToyScale:
        return cls(int(config["dim"]))


register_model_class(ToyScale)


def _keep_first(model: nn.Module, entry: dict[str, Any]) -> nn.Module:
    """A toy pruning: keep the first ``entry["keep"]`` features (changes the parameter's shape)."""
    assert isinstance(model, ToyScale)
    # like a real pruner, it leaves get_config alone: the config describes the model as built
    model.scale = nn.Parameter(model.scale.data[: int(entry["keep"])].clone())
    return model


register_transform("toy_pruned", _keep_first)


# ---------------------------------------------------------------- tiny HF checkpoints
def _hf_folder(family: str, folder: Path) -> nn.Module:
    """A tiny random-init transformers model saved as a normal HF folder (weights + preprocessing)."""
    import transformers as tf

    from polymodal.models.encoders.tiny import minilm_tokenizer, tiny_config

    torch.manual_seed(0)
    model = tf.AutoModel.from_config(tiny_config(family))
    model.save_pretrained(folder)
    if family == "bert":
        minilm_tokenizer().save_pretrained(folder)
    elif family == "vit":
        tf.ViTImageProcessor(size={"height": 64, "width": 64}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(folder)
    else:
        tf.Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(folder)
    return model.eval()


def _clip_folder(folder: Path) -> None:
    import transformers as tf

    from polymodal.models.encoders.tiny import minilm_tokenizer

    common = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2}
    cfg = tf.CLIPConfig(text_config={**common, "vocab_size": 30522, "max_position_embeddings": 64, "eos_token_id": 102},
                        vision_config={**common, "image_size": 32, "patch_size": 8}, projection_dim=16)
    torch.manual_seed(0)
    tf.CLIPModel(cfg).save_pretrained(folder)
    minilm_tokenizer().save_pretrained(folder)
    tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)


# ---------------------------------------------------------------- every path of the loader
def test_preset_loads_in_eval_mode_and_polymodal_load_is_the_same_loader() -> None:
    model = load_model("tiny-dual")
    assert type(model) is DualEncoder and not model.training
    again = polymodal.load("tiny-dual")
    assert type(again) is DualEncoder
    # a preset's fresh parts come from a seeded draw: the alias gives the very same model
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))


def test_save_pretrained_folder_and_run_dir(tiny_dual, tmp_path: Path, texts: list[str]) -> None:  # type: ignore[no-untyped-def]
    tiny_dual.save_pretrained(tmp_path / "run" / "model")
    for where in (tmp_path / "run" / "model", tmp_path / "run", str(tmp_path / "run")):
        model = load_model(where)
        assert type(model) is DualEncoder and not model.training
    assert torch.equal(model.encode("text", texts, bf16=False), tiny_dual.encode("text", texts, bf16=False))


@pytest.mark.parametrize(("family", "modality", "pooling"), [("bert", "text", "mean"), ("vit", "image", "cls"),
                                                             ("wav2vec2", "audio", "mean")])
def test_hf_folder_becomes_one_tower_by_its_model_type(family: str, modality: str, pooling: str, tmp_path: Path) -> None:
    _hf_folder(family, tmp_path / family)
    model = load_model(tmp_path / family)
    assert type(model) is EmbeddingModel and model.modalities == [modality] and not model.training
    assert model.tower(modality).encoder.pooling == pooling
    assert model.card_info == {"name": str(tmp_path / family)}


def test_hf_vit_folder_embeds_with_its_cls_token(tmp_path: Path, images: list[Any]) -> None:
    reference = _hf_folder("vit", tmp_path / "vit")
    model = load_model(tmp_path / "vit")
    pixels = model.tower("image").preprocess(images)
    with torch.no_grad():
        expected = F.normalize(reference(pixel_values=pixels).last_hidden_state[:, 0], dim=-1)
    torch.testing.assert_close(model.encode("image", images, bf16=False), expected, atol=1e-5, rtol=1e-4)


def test_hf_clip_folder_is_wrapped_whole_unless_a_modality_is_forced(tmp_path: Path) -> None:
    _clip_folder(tmp_path / "clip")
    whole = load_model(tmp_path / "clip")
    assert isinstance(whole, WrappedDualEncoder) and not whole.training
    assert whole.tower("text").encoder.pooling == "pooler"
    # one half of a composite checkpoint, as a plain tower; the pooling is the modality's default
    half = polymodal.load(tmp_path / "clip", modality="image")
    assert type(half) is EmbeddingModel and half.modalities == ["image"]
    assert half.tower("image").encoder.pooling == "mean"
    # a saved wrapper is a polymodal folder: it reloads as the same class
    saved = whole.save_pretrained(tmp_path / "saved")
    assert isinstance(load_model(saved), WrappedDualEncoder)


def test_siglip2_is_refused_with_its_reason(tmp_path: Path) -> None:
    import transformers as tf

    tf.Siglip2Config().save_pretrained(tmp_path / "siglip2")  # the config is all the loader reads first
    for modality in (None, "text", "image"):
        with pytest.raises(ModelError, match="NaFlex") as info:
            load_model(tmp_path / "siglip2", modality=modality)
        assert "SigLIP (v1)" in str(info.value)
    from polymodal.models.hf_types import wrapped_row

    with pytest.raises(ModelError, match="cannot wrap a 'siglip2' model"):
        wrapped_row("siglip2")


def test_hub_name_offline_is_a_clean_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(ModelError, match="not available offline") as info:
        load_model("some-org/no-such-model", local_files_only=True)
    assert "some-org/no-such-model" in str(info.value)


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="neither a known preset"):
        load_model("no-such-preset")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(ModelError, match="is a file"):
        load_model(tmp_path / "weights.bin")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="not a polymodal model folder"):
        load_model(tmp_path / "empty")


def test_evaluation_uses_the_same_loader(tiny_dual, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tiny_dual.save_pretrained(tmp_path / "m")
    model, name = eval_load_model(str(folder))
    assert type(model) is DualEncoder and name == str(folder)
    assert eval_load_model(model) == (model, "DualEncoder")
    with pytest.raises(ModelError, match="neither a known preset"):
        eval_load_model("no-such-preset")


def test_distillation_teacher_comes_from_the_same_loader(tiny_dual, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from polymodal.config import DistillConfig
    from polymodal.objectives import build_objective

    folder = tiny_dual.save_pretrained(tmp_path / "teacher")
    loss = build_objective(DistillConfig(teacher=str(folder)), tiny_dual)
    teacher = loss._teacher[0]
    assert type(teacher) is DualEncoder and not teacher.training
    assert torch.equal(teacher.logit_scale, tiny_dual.logit_scale)


# ---------------------------------------------------------------- the model-class registry
def test_toy_model_class_from_a_test_file_round_trips(tmp_path: Path) -> None:
    toy = ToyScale(4)
    toy.card_info = {"name": "toy"}
    folder = toy.save_pretrained(tmp_path / "toy")
    assert json.loads((folder / "config.json").read_text())["class"] == "ToyScale"
    loaded = polymodal.load(folder)
    assert type(loaded) is ToyScale and not loaded.training
    assert torch.equal(loaded.scale, toy.scale) and loaded.card_info == {"name": "toy"}
    assert "ToyScale" in registered_model_classes()


def test_builtin_classes_are_registered() -> None:
    from polymodal.models.fused import FusionModel

    classes = registered_model_classes()
    for cls in (EmbeddingModel, DualEncoder, FusionModel, WrappedDualEncoder):
        assert classes[cls.__name__] is cls


def test_unregistered_class_names_what_is_registered(tmp_path: Path) -> None:
    folder = ToyScale(2).save_pretrained(tmp_path / "toy")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "class": "NoSuchModel"}))
    with pytest.raises(ModelError) as info:
        load_model(folder)
    msg = str(info.value)
    assert "config.json names model class 'NoSuchModel', which is not registered" in msg
    assert "DualEncoder, EmbeddingModel, FusionModel" in msg and "import the module that registers it" in msg


def test_register_model_class_checks_its_input() -> None:
    with pytest.raises(ModelError, match="takes a class"):
        register_model_class(ToyScale(2))  # type: ignore[type-var]

    class NotAModule(PretrainedMixin):
        def get_config(self) -> dict[str, Any]:
            return {}

    with pytest.raises(ModelError, match="must subclass both"):
        register_model_class(NotAModule)

    class NoConfig(PretrainedMixin, nn.Module):
        pass

    with pytest.raises(ModelError, match="does not implement get_config and _from_config"):
        register_model_class(NoConfig)

    # another class under a registered name would make saved folders ambiguous
    impostor = type("ToyScale", (ToyScale,), {})
    with pytest.raises(ModelError, match="'ToyScale' is already registered"):
        register_model_class(impostor)
    assert register_model_class(ToyScale) is ToyScale  # the same class again is fine


def test_register_model_class_works_as_a_decorator() -> None:
    @register_model_class
    class ToyDecorated(ToyScale):
        pass

    assert registered_model_classes()["ToyDecorated"] is ToyDecorated


# ---------------------------------------------------------------- transforms and input columns
def test_transforms_and_input_columns_round_trip(tiny_dual, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = load_model("tiny-dual")
    assert model.transforms == [] and model.input_columns == {}
    assert tiny_dual.transforms is not model.transforms  # each model has its own list
    entry = record_transform(model, "lora_merged", towers=["text"], r=8, alpha=16)
    assert entry == {"kind": "lora_merged", "towers": ["text"], "r": 8, "alpha": 16}
    model.input_columns = {"text": "question"}
    folder = model.save_pretrained(tmp_path / "m")
    saved = json.loads((folder / "config.json").read_text())
    assert saved["transforms"] == [entry] and saved["input_columns"] == {"text": "question"}
    assert "## Transforms" in (folder / "README.md").read_text()
    assert "lora_merged (towers=['text'], r=8, alpha=16)" in (folder / "README.md").read_text()
    loaded = load_model(folder)
    assert loaded.transforms == [entry] and loaded.input_columns == {"text": "question"}
    assert tiny_dual.transforms == []


def test_folder_saved_without_transforms_loads_as_none(tiny_dual, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tiny_dual.save_pretrained(tmp_path / "old")
    cfg = json.loads((folder / "config.json").read_text())
    # what the code before the transforms record wrote
    del cfg["transforms"]
    (folder / "config.json").write_text(json.dumps(cfg))
    loaded = load_model(folder)
    assert loaded.transforms == [] and "## Transforms" not in (tiny_dual.save_pretrained(tmp_path / "n") / "README.md").read_text()


def test_a_changed_model_still_loads(tmp_path: Path) -> None:
    toy = ToyScale(4)
    _keep_first(toy, {"keep": 2})
    record_transform(toy, "toy_pruned", keep=2)
    folder = toy.save_pretrained(tmp_path / "pruned")
    loaded = load_model(folder)
    assert loaded.scale.shape == (2,) and torch.equal(loaded.scale, toy.scale)
    assert loaded.transforms == [{"kind": "toy_pruned", "keep": 2}]
    # without the record, the saved weights no longer fit the class's own architecture
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "transforms": []}))
    with pytest.raises(ModelError, match="does not match the model"):
        load_model(folder)


def test_transform_errors(tmp_path: Path) -> None:
    toy = ToyScale(2)
    with pytest.raises(ModelError, match="unknown transform kind 'int8'"):
        record_transform(toy, "int8")
    with pytest.raises(ModelError, match="JSON values"):
        record_transform(toy, "lora_merged", towers={"text"})
    assert toy.transforms == []
    with pytest.raises(ModelError, match="already registered"):
        register_transform("toy_pruned", lambda m, e: m)
    folder = toy.save_pretrained(tmp_path / "toy")
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "transforms": [{"kind": "int8_from_the_future"}]}))
    with pytest.raises(ModelError, match="records transform 'int8_from_the_future', which this polymodal does not know"):
        load_model(folder)
    (folder / "config.json").write_text(json.dumps({**cfg, "transforms": [{"no": "kind"}]}))
    with pytest.raises(ModelError, match=r"transforms\[0\]"):
        load_model(folder)


# ---------------------------------------------------------------- layering
def test_loader_import_does_not_pull_in_the_entry_point() -> None:
    code = ("import sys, polymodal.models.loading, polymodal.models.build, polymodal.models.hub; "
            "bad = [m for m in sys.modules if m == 'polymodal.api' or m.startswith('polymodal.tasks')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


LAYERS_ABOVE_MODELS = ("polymodal.api", "polymodal.tasks", "polymodal.train", "polymodal.cli", "polymodal.objectives",
                       "polymodal.embed", "polymodal.quickstart", "polymodal.report")


def test_no_model_layer_module_imports_a_layer_above_it() -> None:
    import polymodal.models

    root = Path(polymodal.models.__file__).parent
    offences = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from polymodal import load` reaches polymodal.api through the package
                names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "polymodal" else [node.module]
            else:
                continue
            offences += [f"{path.relative_to(root)}:{node.lineno} {n}" for n in names
                         if n == "polymodal" or n == "polymodal.load" or n.startswith(LAYERS_ABOVE_MODELS)]
    assert offences == []
