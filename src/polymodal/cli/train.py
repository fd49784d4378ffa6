"""``polymodal train CONFIG.yaml [--set k=v]... [--epochs N] [--lr X] [--batch-size N] [--image-size PX]
[--out RUN_DIR] [--resume] [--force]``.

The short flags are aliases of ``--set`` keys (``SHORT_FLAGS``); ``--image-size`` sizes what the
image tower sees, which is a tower option rather than one key (``with_image_size``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from polymodal.cli.common import console, remote_code, revision_option, user_errors

if TYPE_CHECKING:
    from polymodal.config import RunConfig
    from polymodal.train import TrainResult

# flag -> the --set key it stands for
SHORT_FLAGS = {"epochs": "train.epochs", "lr": "train.lr", "batch_size": "data.batch_size"}
# tower sources whose options.image_size sets the input size; an "hf" tower's processor fixes it
SIZED_IMAGE_SOURCES = frozenset({"efficientnet-lite0", "builtin-cnn", "builtin-vit", "tiny"})
VISUAL = ("image", "video")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def config_with_flags(
    config: Path, set_: list[str], *, epochs: int | None = None, lr: float | None = None,
    batch_size: int | None = None, image_size: int | None = None,
) -> tuple[RunConfig, list[str]]:
    """The run config with ``--set`` overrides and the short flags applied; notes to print.

    A short flag and a ``--set`` of its key together are refused (which one wins would be a guess).
    """
    from polymodal.config import ConfigError, load_config, parse_override

    given = {".".join(parse_override(o)[0]): o for o in set_}
    overrides = list(set_)
    for name, value in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size)):
        if value is None:
            continue
        key = SHORT_FLAGS[name]
        if key in given:
            raise ConfigError(f"{_flag(name)} {value} and --set {given[key]} set the same key ({key}); give one")
        overrides.append(f"{key}={value}")
    if image_size is not None and "data.image.size" in given:
        raise ConfigError(f"--image-size {image_size} and --set {given['data.image.size']} set the same "
                          "key (data.image.size); give one")
    cfg = load_config(config, overrides)
    if image_size is None:
        return cfg, []
    return with_image_size(cfg, image_size)


def _sized(specs: list[dict[str, Any]], preset: str | None, size: int, notes: list[str]) -> list[dict[str, Any]] | None:
    """``specs`` with the visual towers sized (the preset's own added when none is listed); None if none can be."""
    from polymodal.models.presets import get_preset, is_preset

    visual = [s for s in specs if s["modality"] in VISUAL]
    if not visual and preset is not None and is_preset(preset):
        found = get_preset(preset)
        visual = [dict(t) for t in found.towers if t["modality"] in VISUAL]
        specs = specs + visual
        if found.kind == "wrapped":
            notes.append(f"--image-size: {preset} keeps its own image size (its image processor fixes it)")
            return None
    if not visual:
        if preset is not None:
            notes.append(f"--image-size: {preset} keeps its own image size (a saved model's towers are fixed)")
        return None
    done = False
    for spec in visual:
        if spec.get("source") in SIZED_IMAGE_SOURCES:
            spec["options"] = {**(spec.get("options") or {}), "image_size": size}
            done = True
        else:
            where = f"{preset}'s" if preset else "the"
            notes.append(f"--image-size: {where} {spec['modality']} tower ({spec.get('source')} "
                         f"{spec.get('name_or_path') or ''}) keeps its own image size (its image processor fixes it)")
    return specs if done else None


def with_image_size(cfg: RunConfig, size: int) -> tuple[RunConfig, list[str]]:
    """``cfg`` with every image / video tower it can build taking ``size``-pixel inputs (the tower spec's
    ``options.image_size``; the preset's tower is added to ``model.towers`` to carry it) and
    ``data.image.size`` (the augmentation crop) set to ``size``; notes name the towers that cannot."""
    from polymodal.config import ConfigError, config_from_dict

    data = cfg.model_dump(mode="json")
    model = data["model"]
    inputs = model.get("inputs")
    if inputs and not any(m in VISUAL for m in inputs):
        raise ConfigError(f"--image-size: this model reads {' and '.join(inputs)} only; it has no image tower to size")
    notes: list[str] = []
    original = [dict(t) for t in model.get("towers") or []]
    primary = _sized([dict(t) for t in original], model.get("preset"), size, notes)
    fallback = None
    if model.get("fallback"):  # the fallback's towers are its own list, so the primary's never leak into it
        base = model["fallback_towers"] if model.get("fallback_towers") is not None else original
        fallback = _sized([dict(t) for t in base], model["fallback"], size, notes)
    if primary is None and fallback is None:
        raise ConfigError("--image-size: no image tower here takes a size (" + "; ".join(notes) + "); "
                          "--set data.image.size=N changes only the augmentation crop")
    if primary is not None:
        model["towers"] = primary
        if model.get("fallback") and fallback is None and model.get("fallback_towers") is None:
            model["fallback_towers"] = original  # keep the fallback on the towers it had
    if fallback is not None:
        model["fallback_towers"] = fallback
    data["data"]["image"]["size"] = size
    return config_from_dict(data, "--image-size"), notes


def _summary(r: TrainResult) -> None:
    from rich.table import Table

    table = Table(title="training summary", show_header=True)
    table.add_column("item")
    table.add_column("value", justify="right")
    table.add_row("run dir", str(r.run_dir))
    table.add_row("optimizer steps", str(r.steps))
    if r.strategy is not None:
        table.add_row("trainable params", f"{r.strategy.trainable:,} / {r.strategy.total:,}")
    if r.best_metric is not None:
        table.add_row(f"best {r.selection_metric} (step {r.best_step})", f"{r.best_metric:.4f}")
    for key, value in sorted(r.final_metrics.items()):
        table.add_row(key, f"{value:.4f}")
    if r.stopped_early:
        table.add_row("stopped early", "yes")
    if r.skipped_ids:
        table.add_row("samples in skipped steps", str(len(r.skipped_ids)))
    if r.quarantined:
        table.add_row("quarantined rows", f"{r.quarantined} (reasons in {r.quarantine_file})")
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        config: Path = typer.Argument(..., help="Run config YAML (see examples/)."),
        set_: list[str] = typer.Option([], "--set", help="Override a config key: a.b=value (repeatable)."),
        epochs: int | None = typer.Option(None, "--epochs", min=1, help="Passes over the training data "
                                          "(--set train.epochs=N)."),
        lr: float | None = typer.Option(None, "--lr", help="Learning rate (--set train.lr=X)."),
        batch_size: int | None = typer.Option(None, "--batch-size", min=1, help="Training batch size "
                                              "(--set data.batch_size=N)."),
        image_size: int | None = typer.Option(
            None, "--image-size", min=16,
            help="Side in pixels of the images the image tower sees: sets options.image_size on the image "
                 "tower's spec (the preset's, added to model.towers / model.fallback_towers) and "
                 "data.image.size (the augmentation crop); a hub tower keeps its processor's size."),
        out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/<config name>)."),
        resume: bool = typer.Option(False, "--resume", help="Continue from the newest complete checkpoint."),
        force: bool = typer.Option(False, "--force",
                                   help="Start over in a run dir with checkpoints, or, with --resume, apply "
                                        "settings that differ from the checkpoint's from the resumed step "
                                        "on (recorded in metrics.jsonl and config.yaml)."),
        trust_remote_code: bool = typer.Option(
            False, "--trust-remote-code",
            help="Let the own Python code of the model folders this run loads (model.preset, a distillation "
                 "teacher) run. A tower in your run config allows it with its own trust_remote_code + revision; "
                 "a folder's config.json never does. A hub model also needs --revision."),
        revision: str | None = revision_option(),
    ) -> None:
        """Train (align / fine-tune) a model from a run config."""
        with user_errors(), remote_code(trust_remote_code, revision):
            from polymodal.train import train

            cfg, notes = config_with_flags(config, set_, epochs=epochs, lr=lr, batch_size=batch_size,
                                           image_size=image_size)
            for note in notes:
                console.print(note, highlight=False)
            run_dir = out or Path("runs") / (cfg.name or config.stem)
            result = train(cfg, run_dir, resume=resume, force=force)
        if not result.main_process:  # only rank 0 reports
            return
        if result.interrupted:
            console.print(f"interrupted: checkpoint written; continue with --resume --out {run_dir}")
            return
        _summary(result)
