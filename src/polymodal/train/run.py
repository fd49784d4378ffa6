"""``train(cfg, out_dir)``: build data, model, objective from a RunConfig and run the Trainer."""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.config import RunConfig, dump_config
from polymodal.errors import TrainingError
from polymodal.runtime.precision import PrecisionDecision, decide_precision
from polymodal.train import checkpoint as ckpt
from polymodal.train.resume import trajectory_settings
from polymodal.train.strategies import StrategyReport, apply_strategy, find_towers, merge_lora, save_adapters
from polymodal.train.trainer import DataSplit, Trainer, TrainResult, deterministic_algorithms


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fp32_reason(model: torch.nn.Module) -> str | None:
    """Why bf16 autocast would slow this model's training on a CPU, or None.

    Convolutional encoders that train (fully, top-k or through adapters) ran slower under bf16
    autocast even on an AMX CPU (EfficientNet-Lite0 step 1.31 vs 1.00 s); their encoders say so
    by not being ``bf16_safe``. Frozen towers do not count: their work is inference.
    """
    for modality, tower in find_towers(model).items():
        encoder = getattr(tower, "encoder", None)
        if encoder is None or not any(p.requires_grad for p in encoder.parameters()):
            continue
        if not getattr(encoder, "bf16_safe", False):
            return f"the {modality} tower trains and is not bf16-safe (convolutional: slower under bf16 autocast)"
    return None


def choose_precision(cfg: RunConfig, model: torch.nn.Module | None = None) -> PrecisionDecision:
    """The run's precision: ``train.mixed_precision`` resolved by the one runtime decision."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    decision = decide_precision(cfg.train.mixed_precision, device)
    why_not = fp32_reason(model) if model is not None else None
    if cfg.train.mixed_precision == "auto" and device == "cpu" and decision.bf16 and why_not:
        return PrecisionDecision("no", "auto", device, f"auto: float32 because {why_not}", decision.probe)
    return decision


def make_accelerator(cfg: RunConfig, decision: PrecisionDecision | None = None) -> Any:
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    decision = decision or choose_precision(cfg)
    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") not in (None, decision.mixed_precision):
        # Accelerate keeps one precision per process; a second run in the same process (a
        # notebook, the quickstart) may resolve to another. Its process group is kept.
        AcceleratorState._reset_state()
    # HF encoders often carry parameters a pooling choice never uses (e.g. BERT's pooler)
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    return Accelerator(mixed_precision=decision.mixed_precision, cpu=not torch.cuda.is_available(),
                       kwargs_handlers=[ddp])


def _label_columns(cfg: RunConfig, manifest_columns: list[str]) -> list[str]:
    from polymodal.objectives import objective_kind

    if not objective_kind(cfg.objective.kind).uses_labels:
        return []
    if cfg.data.label_columns:
        return list(cfg.data.label_columns)
    if cfg.model.heads:
        return list(cfg.model.heads)
    return ["label"] if "label" in manifest_columns else manifest_columns[:1]


@dataclass
class RunParts:
    """Everything one run trains with, built from its config (``build_parts``)."""

    model: torch.nn.Module
    objective: torch.nn.Module
    strategy: StrategyReport
    label_columns: list[str]
    train: DataSplit
    val: DataSplit | None
    # every setting that changes what the run computes (train/resume.py): a resume must match it
    fingerprint: dict[str, Any]
    label_spaces: dict[str, list[str]]
    precision: PrecisionDecision


def build_parts(cfg: RunConfig, run_dir: Path) -> RunParts:
    """Data splits, model (strategy applied), objective and fingerprint for one run."""
    from polymodal.data.loader import MultimodalDataset, label_spaces_for, make_collate
    from polymodal.data.quarantine import Quarantine
    from polymodal.data.sources import load_manifest
    from polymodal.data.validate import apply_policy, validate_rows
    from polymodal.models import build_model
    from polymodal.objectives import build_objective

    dc = cfg.data
    if not dc.manifest:
        raise TrainingError("data.manifest is not set (pass --set data.manifest=PATH)")
    manifest = load_manifest(dc.manifest, dc.root, label_columns=dc.label_columns,
                             split_ratio=dc.split_ratio, seed=cfg.train.seed)
    label_columns = _label_columns(cfg, manifest.label_columns)
    label_spaces = label_spaces_for(manifest, label_columns, dc)  # labels.json decides, when there is one
    seed_everything(cfg.train.seed)  # model init is part of the run's determinism
    model = build_model(cfg.model, label_spaces)
    towers = find_towers(model)
    modalities = [m for m in towers if dc.modalities is None or m in dc.modalities]
    # columns a model reads besides its towers' inputs (a CTC model's transcripts) and its own row check
    targets: dict[str, Any] = dict(getattr(model, "target_processors", None) or {})
    modalities += [m for m in targets if m not in modalities]
    row_check = getattr(model, "check_row", None)
    # test rows are the evaluator's business; every other row is validated, so a row with an
    # unknown or missing split is reported (and quarantined under skip), never silently dropped
    keep = [i for i, r in enumerate(manifest.rows) if r.get("split") != dc.test_split]
    manifest.rows = [manifest.rows[i] for i in keep]
    manifest.line_numbers = [manifest.line_numbers[i] for i in keep]
    report = validate_rows(manifest, modalities=modalities, label_sets=label_spaces or None,
                           splits=[dc.train_split, dc.val_split, dc.test_split], options=dc,
                           row_check=row_check if callable(row_check) else None)
    quarantine = Quarantine(dc.quarantine_file or run_dir / "quarantine.jsonl", report.lines_by_id())
    rows = apply_policy(report, dc.on_error, quarantine.path)

    def split(name: str) -> list[dict[str, Any]]:
        chosen = [r for r in rows if r.get("split") == name]
        label = dc.columns.get("label", "label")  # data.columns.label=topic reads the label from topic
        if dc.include_labels is not None:
            chosen = [r for r in chosen if str(r.get(label)) in dc.include_labels]
        if dc.exclude_labels is not None:
            chosen = [r for r in chosen if str(r.get(label)) not in dc.exclude_labels]
        if not dc.limit or len(chosen) <= dc.limit:
            return chosen
        # a seeded sample in manifest order: the first N rows of a class-sorted manifest
        # would be one class
        keep = sorted(random.Random(f"{cfg.train.seed}:{name}").sample(range(len(chosen)), dc.limit))
        return [chosen[i] for i in keep]

    train_rows, val_rows = split(dc.train_split), split(dc.val_split)
    if not train_rows:
        raise TrainingError(f"{dc.manifest}: no valid rows in split {dc.train_split!r}")
    strategy = apply_strategy(model, cfg.train)
    precision = choose_precision(cfg, model)
    features: dict[str, dict[str, Any]] = {}
    if cfg.train.cache_frozen_features:
        from polymodal.train.feature_cache import cacheable_modalities, precompute_features

        for modality in cacheable_modalities(model, towers, strategy.frozen_modules,
                                             dc.image.augment or dc.image.views > 1):
            if modality not in modalities:
                continue
            # frozen features are inference: bf16 only where the run is bf16 and the tower is safe in it
            bf16 = precision.bf16 and bool(getattr(towers[modality].encoder, "bf16_safe", False))
            store = precompute_features(towers[modality], modality, train_rows + val_rows, manifest.root, dc,
                                        batch_size=dc.eval_batch_size or dc.batch_size,
                                        bf16=bf16, progress=cfg.train.progress)
            if store is not None:
                features[modality] = store
    # a model remembers which manifest columns fed its towers, so evaluation reads the same ones
    model.input_columns = dict(dc.columns)
    objective = build_objective(cfg.objective, model, label_spaces)
    processors: dict[str, Any] = {m: t.preprocess for m, t in towers.items() if m in modalities}
    processors.update(targets)
    if features:
        from polymodal.train.feature_cache import stack_features

        processors.update({m: stack_features for m in features})
    collate = make_collate(processors, label_spaces)
    train_ds = MultimodalDataset(train_rows, manifest.root, modalities, label_spaces, dc, seed=cfg.train.seed,
                                 features=features, quarantine=quarantine)
    val_ds = MultimodalDataset(val_rows, manifest.root, modalities, label_spaces, dc, augment=False,
                               seed=cfg.train.seed, features=features, quarantine=quarantine)
    fingerprint = trajectory_settings(cfg, [train_rows, val_rows], precision.mixed_precision)
    return RunParts(
        model=model, objective=objective, strategy=strategy, label_columns=label_columns,
        train=DataSplit(train_ds, collate, dc.num_workers),
        val=DataSplit(val_ds, collate, dc.num_workers) if val_rows else None,
        fingerprint=fingerprint, label_spaces=label_spaces, precision=precision,
    )


def export_model(model: torch.nn.Module, out: Path) -> None:
    """Best weights -> ``out`` via save_pretrained; LoRA adapters saved alongside, then merged."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    adapters = save_adapters(model, out / "adapters")
    merge_lora(model)
    if adapters:
        from polymodal.models.transforms import record_transform

        # the saved weights hold W + BA now; r and alpha as peft wrote them beside the adapters
        lora = json.loads((adapters[0] / "adapter_config.json").read_text(encoding="utf-8"))
        record_transform(model, "lora_merged", towers=[p.name for p in adapters], r=lora.get("r"),
                         alpha=lora.get("lora_alpha"))
    save = getattr(model, "save_pretrained", None)
    if not callable(save):
        raise TrainingError(f"{type(model).__name__} has no save_pretrained; cannot export the model")
    save(str(out))


def train(cfg: RunConfig, out_dir: str | Path, resume: bool = False, force: bool = False) -> TrainResult:
    """Train ``cfg`` into ``out_dir``; ``resume`` continues from the newest complete checkpoint."""
    from accelerate import PartialState

    run_dir = Path(out_dir)
    # the Accelerator comes after the model: its precision depends on which towers train
    state = PartialState(cpu=not torch.cuda.is_available())
    ckpt_root = run_dir / "checkpoints"
    resume_path = None
    if resume:
        resume_path = ckpt.latest_complete(ckpt_root)
        if resume_path is None:
            raise TrainingError(f"--resume: no complete checkpoint under {ckpt_root}")
    elif ckpt.list_checkpoints(ckpt_root):
        if not force:
            raise TrainingError(f"{run_dir} already holds checkpoints; pass --resume to continue "
                                "or --force to start over")
        if state.is_main_process:
            shutil.rmtree(ckpt_root)
            for name in ("metrics.jsonl", "tb", "model", "quarantine.jsonl"):
                target = run_dir / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
        state.wait_for_everyone()
    if state.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        # a resume writes config.yaml only once the checkpoint accepts it (Trainer.resume_from),
        # with the history of changed settings on top: a refused one leaves the file as it was
        if resume_path is None:
            dump_config(cfg, run_dir / "config.yaml")
    state.wait_for_everyone()
    # from before any CUDA work (the frozen-feature cache runs in build_parts): cuBLAS reads its
    # workspace setting once
    with deterministic_algorithms(cfg.train.deterministic):
        parts = build_parts(cfg, run_dir)
    precision = parts.precision
    accelerator = make_accelerator(cfg, precision)
    if accelerator.is_main_process:
        (run_dir / "precision.json").write_text(json.dumps(precision.to_json(), indent=2) + "\n", encoding="utf-8")
        print(f"precision: {'float32' if precision.mixed_precision == 'no' else precision.mixed_precision} "
              f"({precision.reason})", flush=True)
    if cfg.train.gradient_checkpointing:
        for modality, tower in find_towers(parts.model).items():
            # the HF model is the encoder itself or the adapter's `.model`
            hf = tower.encoder if hasattr(tower.encoder, "gradient_checkpointing_enable") else \
                getattr(tower.encoder, "model", None)
            enable = getattr(hf, "gradient_checkpointing_enable", None)
            if not callable(enable):
                raise TrainingError(f"train.gradient_checkpointing: the {modality} tower is not an HF model")
            enable()
    trainer = Trainer(cfg, parts.model, parts.objective, parts.train, parts.val, run_dir,
                      parts.strategy, parts.fingerprint, parts.label_columns, accelerator,
                      export=export_model, precision=precision)
    if accelerator.is_main_process:
        print(parts.strategy.summary(), flush=True)
    result = trainer.fit(resume_path, force)
    # rows quarantined at validation and while loading: in metrics.jsonl and the summary
    from polymodal.data.quarantine import Quarantine

    quarantine = Quarantine(cfg.data.quarantine_file or run_dir / "quarantine.jsonl")
    result.quarantined, result.quarantine_file = quarantine.count(), quarantine.path
    trainer.log.log("data", result.steps, {"quarantined": result.quarantined, "quarantine_file": str(quarantine.path)})
    if accelerator.is_main_process:
        from polymodal.report import write_run_report

        write_run_report(run_dir)
    return result
