"""What a resumed run must agree on with the checkpoint it continues.

A run's trajectory -- the weights after every step and the model it exports -- is a function
of its settings. Each checkpoint records them (:func:`trajectory_settings`, the run's
fingerprint); ``--resume`` compares them with the new config (:func:`compare`) and refuses a
difference, naming each key with its old and new value, unless ``--force`` is given. Then
the trainer applies the new values from the resumed step on and records what changed (a
``resume`` event in ``metrics.jsonl`` and a history at the top of ``config.yaml``).

Every config key is part of the fingerprint except :data:`FREE_KEYS`, which cannot change
what is computed. Two keys are derived rather than read: ``data.rows`` (a digest of the train
and val rows after validation, limits and label filters) and ``train.mixed_precision`` (the
*resolved* precision, so ``auto`` deciding differently on another machine is caught too).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from polymodal.config import RunConfig, TrainConfig, dump_config

# keys that cannot change the weights a run computes nor the model it exports, with the reason
FREE_KEYS: dict[str, str] = {
    "name": "a label", "notes": "a label", "eval": "post-training evaluation settings",
    "data.manifest": "where the rows come from: data.rows covers the rows themselves",
    "data.root": "where the files are: data.rows covers the rows themselves",
    "data.quarantine_file": "where rejected rows are written",
    "data.num_workers": "augmentation is seeded per sample, the same for any worker count",
    "data.test_split": "not read by training",
    "model.local_files_only": "where the weights are read from, not which",
    "train.progress": "display", "train.log_every": "logging", "train.checkpoint_every": "saving",
    "train.keep_last": "saving", "train.on_nan": "what happens on a failure, not the computation",
    "train.nan_max_consecutive": "a failure limit", "train.nan_max_fraction": "a failure limit",
    "train.gradient_checkpointing": "recomputes the same activations (RNG state preserved) to save memory",
    # the resolved value is fingerprinted instead (``auto`` may resolve differently elsewhere)
    "train.mixed_precision": "fingerprinted as the resolved precision",
}
# the run's length: a change is honest when a fresh run of the new length would have taken the
# same steps so far (same learning rate at each), e.g. more epochs on a constant schedule
LENGTH_KEYS = ("train.epochs", "train.max_steps")
# a change here changes which parameters train (or how the optimizer treats them): the saved
# optimizer state (moments) no longer belongs to them and is reset on a forced resume
PARAMETER_KEYS = ("model.", "objective.", "train.strategy", "train.top_k", "train.top_k_towers",
                  "train.locked_towers", "train.lora.", "train.optimizer")
ABSENT = "(not recorded)"


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _is_free(key: str) -> bool:
    return any(key == free or key.startswith(free + ".") for free in FREE_KEYS)


def _flatten(section: BaseModel, prefix: str, out: dict[str, Any]) -> None:
    # pydantic sections become dotted keys; other values (lists, free-form dicts) are leaves
    for name in type(section).model_fields:
        value = getattr(section, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            _flatten(value, key + ".", out)
        else:
            out[key] = json.loads(json.dumps(value, default=lambda v: v.model_dump(mode="json")))


def trajectory_settings(cfg: RunConfig, rows: Any, precision: str) -> dict[str, Any]:
    """The run's fingerprint: every setting that changes what it computes, by dotted key."""
    flat: dict[str, Any] = {}
    _flatten(cfg, "", flat)
    settings = {k: v for k, v in flat.items() if not _is_free(k)}
    settings["data.rows"] = digest(rows)
    settings["train.mixed_precision"] = precision
    return settings


def compare(saved: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs: ``{key: (checkpoint's value, this run's value)}``."""
    changes = {}
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key, ABSENT), current.get(key, ABSENT)
        if old != new:
            changes[key] = (old, new)
    return changes


def describe(changes: dict[str, tuple[Any, Any]]) -> str:
    def show(value: Any) -> str:
        return value if value == ABSENT else json.dumps(value)

    # a checkpoint from before settings were recorded lacks nearly all of them: one phrase, not 80
    unrecorded = [k for k, (old, _) in changes.items() if old == ABSENT]
    listed = {k: v for k, v in changes.items() if len(unrecorded) <= 3 or k not in unrecorded}
    parts = [f"data.rows: the train/val rows differ (digest {old} -> {new})" if key == "data.rows"
             else f"{key}: {show(old)} -> {show(new)}" for key, (old, new) in listed.items()]
    if len(listed) < len(changes):
        parts.append(f"{len(unrecorded)} settings the checkpoint does not record (written by an older "
                     f"polymodal?), e.g. {', '.join(unrecorded[:3])}")
    return "; ".join(parts)


def changes_parameters(changes: dict[str, Any]) -> bool:
    return any(key.startswith(PARAMETER_KEYS) for key in changes)


def honest_length_keys(changes: dict[str, Any], tc: TrainConfig, old_total: int | None, new_total: int,
                       steps_taken: int) -> set[str]:
    """The length keys among ``changes`` that need no ``--force``: a fresh run of the new length
    would have used the same learning rate at each of the ``steps_taken`` steps (a constant
    schedule, or warm-up only), so the resumed run is exactly that run. Any other key that
    changed makes the question moot (forced or refused anyway)."""
    from polymodal.train.optim import lr_factor, warmup_steps

    keys = {k for k in LENGTH_KEYS if k in changes}
    if not keys or old_total is None:
        return set()
    before = lr_factor(tc.schedule, old_total, warmup_steps(tc, old_total))
    after = lr_factor(tc.schedule, new_total, warmup_steps(tc, new_total))
    return keys if all(before(s) == after(s) for s in range(steps_taken)) else set()


# the settings that cut an epoch into optimizer steps: a change moves the position in steps
POSITION_KEYS = ("data.batch_size", "train.grad_accum", "data.rows")


def moves_position(changes: dict[str, Any]) -> bool:
    return any(k in changes for k in POSITION_KEYS)


def rows_done(saved: dict[str, Any], trainer_state: dict[str, Any]) -> int:
    """Rows of the current epoch's order the checkpointed run had consumed."""
    bs, accum = saved.get("data.batch_size"), saved.get("train.grad_accum")
    offset = int(trainer_state.get("epoch_offset", 0))
    if not (isinstance(bs, int) and isinstance(accum, int)):  # not recorded: keep the step position
        return offset
    # every step before the current one was a full group of ``accum`` global batches
    return offset + int(trainer_state["step_in_epoch"]) * bs * accum


def apply_hyperparameters(optimizer: Any, scheduler: Any, fresh: list[dict[str, Any]]) -> None:
    """After the checkpoint's optimizer / scheduler state is loaded, put back the hyper-parameters
    this config asks for (``fresh``: its param groups before the load): base lr, weight decay,
    betas, momentum..., and the lr of the next step from the (possibly new) schedule."""
    groups = optimizer.param_groups
    if len(groups) != len(fresh):
        return  # the load already failed loudly in that case
    lambdas = getattr(scheduler, "lr_lambdas", None) or [lambda _s: 1.0] * len(groups)
    for i, (group, new) in enumerate(zip(groups, fresh, strict=True)):
        group.update({k: v for k, v in new.items() if k != "lr"})
        base = new.get("initial_lr", new["lr"])
        scheduler.base_lrs[i] = base
        group["lr"] = base * lambdas[i](scheduler.last_epoch)
    scheduler._last_lr = [g["lr"] for g in groups]


def read_settings(path: Path) -> dict[str, Any] | None:
    """A checkpoint's recorded settings from its ``state.json`` alone (no weights read), or None."""
    from polymodal.train.checkpoint import unflatten

    try:
        skeleton = json.loads((path / "state.json").read_text(encoding="utf-8"))
        value = unflatten(skeleton["__dict__"]["fingerprint"], {}, {})
    except Exception:  # unreadable or another layout: unknown, the caller reports what it has
        return None
    return value if isinstance(value, dict) else None


def write_config(path: Path, cfg: RunConfig, entry: str | None) -> None:
    """Write ``config.yaml`` = the config in force, below the history of resumes that changed it.

    The history is YAML comments, so the file still loads as a run config.
    """
    history: list[str] = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            history.append(line)
    if entry is not None:
        if not history:
            history.append("# history: resumes that changed a setting (metrics.jsonl has the `resume` events)")
        history.append(f"# {entry}")
    dump_config(cfg, path)
    if history:
        path.write_text("\n".join(history) + "\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
