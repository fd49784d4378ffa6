"""Checkpoints that survive a SIGKILL at any instant and resume bit for bit.

Layout of ``checkpoints/step-XXXXXXXX/``:
  model.safetensors   the model's state (shared tensors handled by safetensors)
  state.safetensors   every tensor of optimizer / scheduler / grad scaler / RNG / data order
  state.json          the rest of that state, tensors replaced by {"__tensor__": key}
  extra.pt            only if some state is neither JSON nor a tensor (loaded weights_only=True)
  manifest.json       sha256 of every file above -- written LAST

A checkpoint is written into a temporary sibling folder, each file fsynced, then renamed
atomically; a folder without a manifest, whose hashes do not match, or whose files do not
read as what they claim to be (a pickle renamed ``model.safetensors`` under a rewritten
manifest) is unusable and skipped (with a warning) by :func:`latest_complete`, which falls
back to the previous good one. Only the files the manifest lists are ever read.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

from polymodal.errors import TrainingError

PREFIX = "step-"
MANIFEST = "manifest.json"


# ----------------------------------------------------------------- state <-> (json, tensors)
def flatten(obj: Any, tensors: dict[str, torch.Tensor], extra: dict[str, Any], path: str = "s") -> Any:
    """Turn nested state into JSON, moving tensors into ``tensors`` (keyed by their path)."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: flatten(v, tensors, extra, f"{path}.{k}") for k, v in obj.items()}}
        return {"__items__": [[flatten(k, tensors, extra, f"{path}.k{i}"), flatten(v, tensors, extra, f"{path}.{i}")]
                              for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten(v, tensors, extra, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, extra, f"{path}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, bool | int | float | str):
        if isinstance(obj, float) and not np.isfinite(obj):
            return {"__float__": repr(obj)}
        return obj
    extra[path] = obj  # anything else goes to extra.pt (must be weights_only-loadable)
    return {"__extra__": path}


def unflatten(obj: Any, tensors: dict[str, torch.Tensor], extra: dict[str, Any]) -> Any:
    if isinstance(obj, list):
        return [unflatten(v, tensors, extra) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return tensors[obj["__ndarray__"]].numpy()
    if "__dict__" in obj:
        return {k: unflatten(v, tensors, extra) for k, v in obj["__dict__"].items()}
    if "__items__" in obj:
        return {unflatten(k, tensors, extra): unflatten(v, tensors, extra) for k, v in obj["__items__"]}
    if "__tuple__" in obj:
        return tuple(unflatten(v, tensors, extra) for v in obj["__tuple__"])
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__extra__" in obj:
        return extra[obj["__extra__"]]
    raise TrainingError(f"checkpoint state has an unknown node {sorted(obj)}")


# ----------------------------------------------------------------- RNG
def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(tuple(state["numpy"]))  # type: ignore[arg-type]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------- files
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def step_dir(ckpt_root: Path, step: int) -> Path:
    return ckpt_root / f"{PREFIX}{step:08d}"


def save_checkpoint(ckpt_root: str | Path, step: int, model: nn.Module, state: dict[str, Any]) -> Path:
    """Write model + state atomically as ``step-XXXXXXXX``; returns the final folder."""
    root = Path(ckpt_root)
    root.mkdir(parents=True, exist_ok=True)
    final = step_dir(root, step)
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_model(model, str(tmp / "model.safetensors"))
    tensors: dict[str, torch.Tensor] = {}
    extra: dict[str, Any] = {}
    skeleton = flatten(state, tensors, extra)
    save_file(tensors, str(tmp / "state.safetensors"))
    (tmp / "state.json").write_text(json.dumps(skeleton), encoding="utf-8")
    if extra:
        torch.save(extra, tmp / EXTRA)
    files = sorted(p.name for p in tmp.iterdir())
    for name in files:
        _fsync_file(tmp / name)
    manifest = {"step": step, "files": {name: _sha256(tmp / name) for name in files}}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    _fsync_file(tmp / MANIFEST)
    _fsync_dir(tmp)
    if final.exists():  # re-saving the same step (e.g. best == periodic): replace it
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(root)
    return final


REQUIRED = ("model.safetensors", "state.safetensors", "state.json")
EXTRA = "extra.pt"


def _manifest_files(path: Path) -> dict[str, str] | str:
    """The manifest's {file name: sha256}, or the reason it cannot be used."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        return "no manifest (the write did not finish)"
    try:
        files = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "unreadable manifest"
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        return "unreadable manifest"
    unlisted = [name for name in REQUIRED if name not in files]
    if unlisted:
        return f"the manifest does not list {', '.join(unlisted)}"
    return files


def _tensor_keys(path: Path) -> set[str]:
    """The tensor names in a safetensors file; reads the header only (its offsets must fit the file)."""
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


def _references(node: Any, kind: str) -> Iterator[str]:
    """Every ``{kind: key}`` reference in a state skeleton (``__tensor__``, ``__extra__``...)."""
    if isinstance(node, list):
        for v in node:
            yield from _references(v, kind)
    elif isinstance(node, dict):
        if kind in node:
            yield str(node[kind])
        for v in node.values():
            yield from _references(v, kind)


def _read_extra(path: Path) -> dict[str, Any]:
    # weights_only: a pickle that asks for any object beyond tensors and plain containers is refused
    extra = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(extra, dict):
        raise ValueError(f"holds a {type(extra).__name__}, not a dict")
    return extra


def _unreadable(path: Path, files: dict[str, str]) -> str | None:
    """Why the listed files cannot be loaded as a checkpoint, or None (no tensor data is read)."""
    name = ""
    try:
        name = "model.safetensors"
        _tensor_keys(path / name)
        name = "state.safetensors"
        tensors = _tensor_keys(path / name)
        name = "state.json"
        skeleton = json.loads((path / name).read_text(encoding="utf-8"))
        missing = [k for kind in ("__tensor__", "__ndarray__") for k in _references(skeleton, kind) if k not in tensors]
        if missing:
            return f"state.json names tensors state.safetensors lacks ({', '.join(missing[:3])})"
        wanted = list(_references(skeleton, "__extra__"))
        if wanted:
            if EXTRA not in files:
                return f"state.json needs {EXTRA}, which the manifest does not list"
            name = EXTRA
            extra = _read_extra(path / name)
            absent = [k for k in wanted if k not in extra]
            if absent:
                return f"{EXTRA} lacks {', '.join(absent[:3])}"
    except Exception as exc:  # any failure to read a file makes the checkpoint unusable
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{name} cannot be read safely ({type(exc).__name__}: {reason})"
    return None


def verify(path: Path) -> str | None:
    """None when the checkpoint is complete, intact and readable, else the reason it is not.

    Complete: a manifest (written last) listing the model, state and skeleton files; intact:
    every listed file matches its sha256; readable: the safetensors headers parse and fit their
    files, state.json is JSON whose tensors exist, and an ``extra.pt`` it needs loads with
    ``weights_only=True``. Files the manifest does not list are never read.
    """
    files = _manifest_files(path)
    if isinstance(files, str):
        return files
    for name, digest in files.items():
        f = path / name
        if "/" in name or "\\" in name or name.startswith("."):
            return f"the manifest names {name!r}, which is not a file of this folder"
        if not f.is_file():
            return f"{name} is missing"
        if _sha256(f) != digest:
            return f"{name} does not match its hash"
    return _unreadable(path, files)


def unlisted_files(path: Path) -> list[str]:
    """Files in a checkpoint folder that its manifest does not list (never loaded)."""
    files = _manifest_files(path)
    listed = set(files) if isinstance(files, dict) else set()
    return sorted(p.name for p in path.iterdir() if p.name != MANIFEST and p.name not in listed)


def list_checkpoints(ckpt_root: str | Path) -> list[tuple[int, Path]]:
    root = Path(ckpt_root)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit():
            found.append((int(p.name[len(PREFIX):]), p))
    return sorted(found)


def latest_complete(ckpt_root: str | Path) -> Path | None:
    """The newest checkpoint that verifies; incomplete or corrupt ones are skipped with a warning."""
    for _, path in reversed(list_checkpoints(ckpt_root)):
        reason = verify(path)
        if reason is None:
            return path
        warnings.warn(f"skipping checkpoint {path}: {reason}", stacklevel=2)
    return None


def load_checkpoint(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load weights into ``model`` (strict) and return the saved state.

    Only the files the manifest lists are read; anything else in the folder (a dropped-in
    ``*.pt``) is ignored with a warning naming it.
    """
    p = Path(path)
    reason = verify(p)
    if reason is not None:
        raise TrainingError(f"checkpoint {p} is not usable: {reason}")
    extra_files = unlisted_files(p)
    if extra_files:
        warnings.warn(f"checkpoint {p}: ignoring {', '.join(extra_files)} (not in its manifest, never read)",
                      stacklevel=2)
    try:
        missing, unexpected = load_model(model, str(p / "model.safetensors"), strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise TrainingError(f"checkpoint {p} does not fit the model ({str(exc).strip().splitlines()[-1].strip()}); "
                            "was it written with another model config?") from None
    if missing or unexpected:
        raise TrainingError(
            f"checkpoint {p} does not fit the model (missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}); was it written with another model config?"
        )
    tensors = load_file(str(p / "state.safetensors"))
    skeleton = json.loads((p / "state.json").read_text(encoding="utf-8"))
    # extra.pt is read only when the state needs it (verify checked the manifest lists it)
    extra = _read_extra(p / EXTRA) if next(_references(skeleton, "__extra__"), None) is not None else {}
    return unflatten(skeleton, tensors, extra)


def prune(ckpt_root: str | Path, keep_last: int, keep: set[Path] | None = None) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, never one in ``keep`` (the best)."""
    keep = {k.resolve() for k in (keep or set())}
    ckpts = list_checkpoints(ckpt_root)
    for _, path in ckpts[: max(len(ckpts) - keep_last, 0)]:
        if path.resolve() not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for tmp in Path(ckpt_root).glob(".tmp-*"):  # leftovers of a killed writer
        if not tmp.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(tmp, ignore_errors=True)
