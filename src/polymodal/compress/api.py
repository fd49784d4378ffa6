"""``compress(model, method, out)``: the library call behind ``polymodal compress``.

Loads the model through the one loader, applies a method, and writes a normal
``save_pretrained`` folder (its ``config.json`` records the transforms that made it; the model
card names the source). Methods are registered in ``METHODS`` by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from polymodal.errors import ModelError


@dataclass
class CompressOptions:
    """Settings of every method (each reads its own): see ``polymodal compress --help``."""

    towers: list[str] | None = None  # modalities to compress (default: all)
    strict: bool = False  # refuse layers a method cannot handle instead of skipping them
    embeddings: bool = True  # int8: store embedding tables as int8 too
    sparsity: float = 0.3  # prune: fraction of weights (magnitude) or channels (structured) removed
    structured: bool = True  # prune: remove whole MLP / conv channels (False: zero single weights)
    data: str | Path | None = None  # prune (recovery) / distill: a manifest of unlabeled items
    steps: int = 0  # prune: recovery fine-tune steps; distill: training steps (0: the method's default)
    student: str | None = None  # distill: the student's preset or folder
    student_layers: dict[str, list[int]] | None = None  # distill: cut the student from the teacher's layers
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompressResult:
    folder: Path
    summary: str
    transforms: list[dict[str, Any]]


Method = Callable[[Any, CompressOptions], tuple[Any, str]]


def _int8(model: Any, opts: CompressOptions) -> tuple[Any, str]:
    from polymodal.compress.int8 import quantize_int8

    out, report = quantize_int8(model, opts.towers, strict=opts.strict, embeddings=opts.embeddings)
    return out, report.summary()


def _prune(model: Any, opts: CompressOptions) -> tuple[Any, str]:
    from polymodal.compress.prune import prune

    if opts.steps and opts.data is None:
        raise ModelError("--steps sets prune's recovery fine-tune, which needs --data (image-text pairs)")
    if opts.data is not None and not opts.structured:
        raise ModelError("a recovery fine-tune would refill the weights that magnitude pruning zeroed; "
                         "use it with structured pruning (drop --unstructured) or prune without --data")
    out, summary = prune(model, opts.sparsity, structured=opts.structured, towers=opts.towers, strict=opts.strict)
    if opts.data is None:
        return out, summary
    from polymodal.compress.prune import pruned_towers
    from polymodal.compress.recovery import DEFAULT_STEPS, recover
    from polymodal.models.transforms import record_transform

    entry = next(t for t in out.transforms if t.get("kind") == "pruned")
    pruned = pruned_towers([*entry.get("mlp_widths", {}), *entry.get("conv_shapes", {})])
    out, record = recover(out, opts.data, opts.steps or DEFAULT_STEPS, pruned, opts.seed)
    record_transform(out, "pruned_recovered", **record)
    shown = ", ".join(f"{k} {v}" for k, v in record.items() if k.startswith("val/"))
    return out, f"{summary}; recovered with {record['steps']} contrastive steps on {opts.data} ({shown})"


def _distill(model: Any, opts: CompressOptions) -> tuple[Any, str]:
    from polymodal.compress.distill import distill

    return distill(model, opts)


METHODS: dict[str, Method] = {"int8-dynamic": _int8, "prune": _prune, "distill": _distill}


def register_method(name: str, method: Method) -> None:
    """Make ``polymodal compress --method name`` run ``method(model, options) -> (model, summary)``."""
    if name in METHODS and METHODS[name] is not method:
        raise ModelError(f"compression method {name!r} is already registered")
    METHODS[name] = method


def check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ModelError(f"{out} exists and is not empty; pick another --out or pass --overwrite")


def compress(model: Any, method: str, out: str | Path, options: CompressOptions | None = None, *,
             overwrite: bool = False) -> CompressResult:
    """Compress ``model`` (a loaded model, preset, folder or run dir) with ``method`` into ``out``."""
    from polymodal.models.loading import load_model

    if method not in METHODS:
        raise ModelError(f"unknown compression method {method!r} (known: {', '.join(sorted(METHODS))})")
    opts = options or CompressOptions()
    out = Path(out)
    check_out(out, overwrite)
    source = str(model) if isinstance(model, str | Path) else getattr(model, "card_info", {}).get("name")
    loaded = load_model(model) if isinstance(model, str | Path) else model
    # the method may name the source (distill's card and transform record say which teacher)
    result, summary = METHODS[method](loaded, replace(opts, extra={"source": source, **opts.extra}))
    card = {"name": f"{source or type(loaded).__name__} ({method})", "compressed_from": source,
            "compression": summary}
    result.save_pretrained(out, card=card)
    return CompressResult(out, summary, list(result.transforms))
