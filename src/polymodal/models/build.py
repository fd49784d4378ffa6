"""Build any polymodal model from a run config (``ModelConfig``) or a preset name.

``build_model(model_cfg, label_spaces)`` is what the trainer calls: it takes the towers of
the preset (or of a saved model / run dir / HF folder named by ``model.preset``), lets
``model.towers`` replace or add towers by modality, then builds the ``kind`` asked for:
``dual`` (DualEncoder), ``fusion`` (towers + fusion + heads), ``classifier`` (late concat
fusion + heads; fine-tuning one or more towers for classification/regression), ``ctc``
(speech recognition: the audio tower's frames + a CTC head, ``models/ctc.py``), ``embedding``
(the towers alone, as an EmbeddingModel: what self-supervised objectives train) or ``captioner``
(the image tower + ``model.decoder``, a text decoder with cross-attention) or ``text-to-image``
(the text tower + ``model.generator``, a diffusion UNet conditioned on the text's tokens).
"""

from __future__ import annotations

import warnings
import zlib
from typing import Any

import torch
from torch import nn

from polymodal.config import FusionSpec, HeadSpec, ModelConfig
from polymodal.errors import ModelError
from polymodal.models.dual import DualEncoder, EmbeddingModel
from polymodal.models.heads import Head, build_head
from polymodal.models.loading import load_model
from polymodal.models.presets import Preset, get_preset, is_preset, load_preset_weights
from polymodal.models.towers import Tower, build_tower


def _preset_towers(preset: Preset, local_files_only: bool | None) -> dict[str, Tower]:
    towers: dict[str, Tower] = {}
    for spec in preset.towers:
        try:
            tower = build_tower(spec, local_files_only=local_files_only)
        except ModelError as exc:
            if not preset.offline:
                raise ModelError(f"preset {preset.name!r}: {exc}") from None
            raise
        towers[tower.modality] = tower
    return towers


def build_preset(name: str, *, local_files_only: bool | None = None, **kw: Any) -> EmbeddingModel:
    """The model a preset names, with pretrained weights (``kw``: init_temperature, learn_temperature)."""
    preset = get_preset(name)
    if preset.kind == "wrapped":
        from polymodal.models.wrapped import WrappedDualEncoder

        assert preset.hf_model is not None
        return WrappedDualEncoder.from_hub(preset.hf_model, local_files_only=local_files_only, preset=preset.name)
    # a preset names one model: its fresh parts (projections) start from the same draw on every
    # load, so two loads embed alike and the embedding cache recognises them
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(zlib.crc32(preset.name.encode("utf-8")))
        towers = _preset_towers(preset, local_files_only)
        model: EmbeddingModel
        if preset.kind == "single" or len(towers) < 2:
            model = EmbeddingModel(towers)
        else:
            model = DualEncoder(towers, preset.embed_dim, **kw)
    load_preset_weights(preset, model)  # an aligned preset's trained projections
    model.card_info = {"name": preset.name, "preset": preset.name}
    return model


def _base_model(cfg: ModelConfig) -> tuple[EmbeddingModel | None, dict[str, Tower], int | None]:
    if cfg.preset is None:
        return None, {}, None
    if is_preset(cfg.preset):
        preset = get_preset(cfg.preset)
        if preset.kind != "wrapped" and (preset.kind == "single" or cfg.kind != "dual" or cfg.towers):
            return None, _preset_towers(preset, cfg.local_files_only), preset.embed_dim
        kw = {"init_temperature": cfg.init_temperature, "learn_temperature": cfg.learn_temperature}
        base = build_preset(cfg.preset, local_files_only=cfg.local_files_only, **(kw if preset.kind == "dual" else {}))
        return base, dict(base.towers.items()), preset.embed_dim  # type: ignore[arg-type]
    base = load_model(cfg.preset, local_files_only=cfg.local_files_only)
    if not isinstance(base, EmbeddingModel) and not hasattr(base, "towers"):
        raise ModelError(f"{cfg.preset} holds no towers to build on")
    return base, dict(base.towers.items()), getattr(base, "embed_dim", None)


def _heads(cfg: ModelConfig, label_spaces: dict[str, list[str]] | None, in_dim: int) -> dict[str, Head]:

    spaces = label_spaces or {}
    specs = dict(cfg.heads) or {col: HeadSpec() for col in spaces}
    if not specs:
        raise ModelError("a fusion/classifier model needs a head: give model.heads or data with a label column")
    heads: dict[str, Head] = {}
    for col, spec in specs.items():
        n = spec.num_outputs
        if n is None:
            if spec.kind == "regression":
                n = 1
            elif col in spaces:
                n = len(spaces[col])
            else:
                raise ModelError(f"head {col!r}: no num_outputs and no label set for column {col!r} in the data")
        heads[col] = build_head(spec, in_dim, n, labels=spaces.get(col))
    return heads


class FallbackNotice(UserWarning):
    """``model.fallback`` stands in for a ``model.preset`` that cannot load here: one short line
    (the command line prints it as ``warning: ...``; the full reason stays in ``.reason``)."""

    def __init__(self, preset: str | None, fallback: str, reason: BaseException | str) -> None:
        self.preset, self.fallback, self.reason = preset, fallback, str(reason)
        # the loader's first sentence says why ("model 'x', which is not available offline")
        why = self.reason.split(". ")[0].strip().rstrip(".")
        for lead in (f"preset {preset!r}: ", f"preset {preset!r} needs "):  # the notice names it already
            why = why.removeprefix(lead)
        super().__init__(f"using model.fallback {fallback!r} instead of model.preset {preset!r} ({why}); "
                         "the run's model card and report name the towers actually used")


def _base_or_fallback(cfg: ModelConfig) -> tuple[ModelConfig, tuple[EmbeddingModel | None, dict[str, Tower], int | None]]:
    """The preset's parts, or the fallback's when the preset cannot load here (e.g. Hub offline)."""
    try:
        return cfg, _base_model(cfg)
    except ModelError as exc:
        if not cfg.fallback:
            raise
        warnings.warn(FallbackNotice(cfg.preset, cfg.fallback, exc), stacklevel=3)
        towers = cfg.fallback_towers if cfg.fallback_towers is not None else cfg.towers
        used = cfg.model_copy(update={"preset": cfg.fallback, "fallback": None, "fallback_towers": None, "towers": towers})
        return used, _base_model(used)


def _keep_aligned_projections(cfg: ModelConfig, model: DualEncoder) -> None:
    """An aligned preset's trained projections stay with the towers a run config re-specifies only
    in their options (``image_size``: the same encoder, the same features), so
    ``preset: lite-clip`` + ``towers: [{image at 96 px}]`` starts aligned; a tower with another
    encoder or pooling, or another ``embed_dim``, starts fresh."""
    if cfg.preset is None or not is_preset(cfg.preset):
        return
    preset = get_preset(cfg.preset)
    if not preset.weights or model.embed_dim != preset.embed_dim:
        return
    own = {t["modality"]: t for t in preset.towers}

    def same_encoder(spec: Any) -> bool:
        base = own.get(spec.modality)
        return base is not None and (spec.source, spec.name_or_path, spec.pooling) == (
            base.get("source"), base.get("name_or_path"), base.get("pooling", "mean"))

    replaced = {s.modality for s in cfg.towers or [] if not same_encoder(s)} | (set(model.towers) - set(own))
    skip = tuple(f"towers.{m}." for m in replaced) + (("logit_scale",) if replaced else ())
    load_preset_weights(preset, model, skip=skip)


def _captioner(cfg: ModelConfig, towers: dict[str, Tower], texts: list[str] | None) -> nn.Module:
    from polymodal.models.captioner import CaptioningModel
    from polymodal.models.decoder import TextDecoder, data_tokenizer

    if "image" not in towers:
        raise ModelError(f"a captioner needs an image tower; {cfg.preset or 'the config'} gives {list(towers)}: "
                         "add one in model.towers")
    d = cfg.decoder
    tokenizer = None
    if d.vocab == "data":
        if texts is None:
            raise ModelError("model.decoder.vocab: data builds the vocabulary from the training texts; "
                             "build_model needs them (train() passes them)")
        tokenizer = data_tokenizer(texts)
    decoder = TextDecoder.build(d.init, num_layers=d.num_layers, hidden_dim=d.hidden_dim, num_heads=d.num_heads,
                                max_length=d.max_length, dropout=d.dropout, tokenizer=tokenizer)
    return CaptioningModel(towers["image"], decoder)


def build_model(model_cfg: ModelConfig, label_spaces: dict[str, list[str]] | None = None, *,
                texts: list[str] | None = None) -> nn.Module:
    """Build the model a run config asks for (see the module docstring). ``texts``: the training
    texts, from which a captioner with ``decoder.vocab: data`` makes its vocabulary."""
    cfg, parts = _base_or_fallback(model_cfg)
    model = _assemble(cfg, parts, label_spaces, texts)
    if cfg.preset != model_cfg.preset:  # the fallback stood in: saved in the model card, read by the run report
        card = {**getattr(model, "card_info", {}), "fallback": {"requested": model_cfg.preset, "used": cfg.preset}}
        setattr(model, "card_info", card)  # noqa: B010 - a plain attribute of a PretrainedMixin model
    return model


def _assemble(cfg: ModelConfig, parts: tuple[EmbeddingModel | None, dict[str, Tower], int | None],
              label_spaces: dict[str, list[str]] | None, texts: list[str] | None = None) -> nn.Module:
    base, towers, preset_dim = parts
    for spec in cfg.towers or []:
        tower = build_tower(spec.model_dump(), local_files_only=cfg.local_files_only)
        towers[tower.modality] = tower
    if not towers:
        raise ModelError("no towers: set model.preset or model.towers")
    if cfg.kind == "embedding":
        if base is not None and not cfg.towers and type(base) is EmbeddingModel:
            return base
        return EmbeddingModel(towers)
    if cfg.kind == "captioner":
        return _captioner(cfg, towers, texts)
    if cfg.kind == "text-to-image":
        from polymodal.models.text_to_image import TextToImageModel

        if "text" not in towers:
            raise ModelError(f"a text-to-image model needs a text tower; {cfg.preset or 'the config'} gives "
                             f"{list(towers)}: add one in model.towers")
        return TextToImageModel(towers["text"], cfg.generator)
    if cfg.kind == "dual":
        if base is not None and not cfg.towers and isinstance(base, DualEncoder):
            if cfg.embed_dim is not None and cfg.embed_dim != base.embed_dim:
                raise ModelError(f"model.embed_dim={cfg.embed_dim} differs from {cfg.preset}'s {base.embed_dim}")
            return base
        if len(towers) < 2:
            raise ModelError(
                f"a dual encoder needs two towers; {cfg.preset or 'the config'} gives only {list(towers)}: add one in model.towers"
            )
        dims = {t.output_dim for t in towers.values()}
        embed_dim = cfg.embed_dim or preset_dim or (dims.pop() if len(dims) == 1 else 256)
        model = DualEncoder(towers, embed_dim, cfg.init_temperature, cfg.learn_temperature)
        _keep_aligned_projections(cfg, model)
        return model
    if cfg.kind == "ctc":
        from polymodal.models.ctc import build_ctc_model

        head = cfg.heads.get("text", HeadSpec(kind="ctc"))
        if head.kind != "ctc":
            raise ModelError(f"model.kind: ctc takes a head of kind 'ctc' (model.heads.text), got {head.kind!r}")
        return build_ctc_model(towers, head.hidden_dim, head.dropout)
    from polymodal.models.fused import FusionModel
    from polymodal.models.fusion import build_fusion

    inputs = cfg.inputs or list(towers)
    missing = [m for m in inputs if m not in towers]
    if missing:
        raise ModelError(f"model.inputs names {missing} but the towers are {list(towers)}")
    used = {m: towers[m] for m in inputs}
    fspec = cfg.fusion or FusionSpec(kind="late", combine="concat")
    if cfg.kind == "classifier" and cfg.fusion is None:
        fspec = FusionSpec(kind="late", combine="concat")
    fusion = build_fusion(fspec, used)
    return FusionModel(used, fusion, _heads(cfg, label_spaces, fusion.output_dim), inputs, fspec)
