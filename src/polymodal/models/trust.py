"""What a model folder can make polymodal do: run its code only when the caller allows it,
and hand over weights only as safetensors.

Code (transformers' ``trust_remote_code``) runs only by the caller's choice:
``polymodal.load(..., trust_remote_code=True, revision=COMMIT)``, the CLI's
``--trust-remote-code --revision COMMIT``, or a tower spec in the run config the user passed
(``build_tower`` honours the spec it is given). Never a file's: a saved folder's config.json
that asks for it is refused, naming the tower (``refuse_requests``); a local folder whose
config names its own code (``auto_map``) is refused (``check_local_code``); and transformers is
always told ``trust_remote_code`` explicitly, so it neither imports such code nor prompts for it.
For a hub name the code is pinned by the caller's 40-hex commit (``pinned_revision``), never by
a revision written in a file; a local folder's code is the code on disk, so it needs none.

The permission is a context variable: it reaches the loaders under ``train`` (a ``model.preset``
folder, a distillation teacher) without widening every registered builder's signature, and it
is scoped to the ``with`` block, thread and task that set it.

Weights are read from safetensors only (``check_safetensors``, ``require_safetensors``): a
pickle renamed ``model.safetensors``, a truncated file or a folder holding only a pickled
``pytorch_model.bin`` is refused with an error naming the file, and nothing is unpickled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polymodal.errors import ModelError

COMMIT = re.compile(r"[0-9a-f]{40}")
HOW_TO_ALLOW = (
    "If you trust that code, allow it yourself: polymodal.load(..., trust_remote_code=True, revision=COMMIT) "
    "in Python or --trust-remote-code --revision COMMIT on the command line (COMMIT: the 40-hex commit whose "
    "code you reviewed; a local folder needs no revision)"
)
# files whose `auto_map` makes transformers import Python code from the model's folder
CODE_CONFIGS = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json")


@dataclass(frozen=True)
class RemoteCode:
    """The caller's permission: may a model's own code run, and at which commit (hub models)."""

    allowed: bool = False
    revision: str | None = None


NOT_ALLOWED = RemoteCode()  # frozen: safe as the context variable's shared default
_PERMISSION: ContextVar[RemoteCode] = ContextVar("polymodal_remote_code", default=NOT_ALLOWED)


def permission() -> RemoteCode:
    """The permission in effect here (not allowed unless a caller said so)."""
    return _PERMISSION.get()


@contextmanager
def allow_remote_code(allowed: bool = True, revision: str | None = None) -> Iterator[RemoteCode]:
    """Within the block, model code may run (``allowed``) at ``revision``; ``False`` forbids it."""
    perm = RemoteCode(bool(allowed), revision or None)
    token = _PERMISSION.set(perm)
    try:
        yield perm
    finally:
        _PERMISSION.reset(token)


def caller_scope(trust_remote_code: bool | None, revision: str | None = None) -> AbstractContextManager[Any]:
    """``trust_remote_code=None`` keeps the permission already in effect; True/False set it."""
    if trust_remote_code is None:
        return nullcontext()
    return allow_remote_code(trust_remote_code, revision if trust_remote_code else None)


def pinned_revision(name: str, revision: str | None) -> str | None:
    """The revision to load ``name`` at; with code allowed, a hub name needs the caller's commit.

    ``revision`` is the spec's own (a pin for the download). It never stands in for the
    caller's: a file could write any commit there.
    """
    perm = permission()
    if not perm.allowed or not name or Path(name).is_dir():
        return revision
    if not perm.revision:
        raise ModelError(
            f"trust_remote_code for {name!r} needs a pinned revision given by you (revision=COMMIT / "
            "--revision COMMIT, the 40-hex commit you reviewed), so the code that runs is the code you reviewed"
        )
    if not COMMIT.fullmatch(perm.revision):
        raise ModelError(f"revision {perm.revision!r} for {name!r} is not a commit hash (40 hex digits): "
                         "a branch or tag can move, so it does not pin the code that runs")
    if revision and revision != perm.revision:
        raise ModelError(f"{name!r} is pinned to revision {revision} but you allowed code at {perm.revision}; "
                         "allow the commit it names (after reviewing it) or load another model")
    return perm.revision


def _where(keys: list[str]) -> str:
    for i, key in enumerate(keys[:-1]):
        if key == "towers":
            return f"the {keys[i + 1]} tower"
    return "`" + ".".join(keys) + "`" if keys else "the model"


def requests(config: Any, keys: list[str] | None = None) -> list[str]:
    """Each spec in a saved model config that asks for ``trust_remote_code``, described."""
    keys = keys or []
    found: list[str] = []
    if isinstance(config, dict):
        if config.get("trust_remote_code"):
            name, rev = config.get("name_or_path"), config.get("revision")
            found.append(f"{_where(keys)} ({name!r}" + (f" at revision {rev}" if rev else "") + ")")
        for key, value in config.items():
            found += requests(value, [*keys, str(key)])
    elif isinstance(config, list):
        for i, value in enumerate(config):
            found += requests(value, [*keys, str(i)])
    return found


def refuse_requests(config: Any, source: str) -> None:
    """Refuse a saved model whose own config asks to run code the caller did not allow."""
    asked = requests(config)
    if asked and not permission().allowed:
        raise ModelError(
            f"{source}: {', '.join(asked)} asks to run its own Python code (trust_remote_code); polymodal "
            f"never runs a model's code because a file asks for it. {HOW_TO_ALLOW}"
        )


def code_references(folder: Path) -> list[str]:
    """``file: class reference`` for every ``auto_map`` entry in a local model folder."""
    refs: list[str] = []
    for name in CODE_CONFIGS:
        path = folder / name
        if not path.is_file():
            continue
        try:
            auto_map = json.loads(path.read_text(encoding="utf-8")).get("auto_map")
        except (OSError, ValueError, AttributeError):
            continue  # not ours to judge here; transformers reports unreadable files
        if isinstance(auto_map, dict):
            refs += [f"{name}: {k} -> {v}" for k, v in auto_map.items()]
        elif isinstance(auto_map, list | str):
            refs.append(f"{name}: {auto_map}")
    return refs


def check_local_code(folder: str | Path, what: str = "") -> None:
    """Refuse a local folder that names its own code (``auto_map``) unless the caller allowed it."""
    path = Path(folder)
    if permission().allowed or not path.is_dir():
        return
    refs = code_references(path)
    if refs:
        shown = "; ".join(refs[:3]) + (f"; +{len(refs) - 3} more" if len(refs) > 3 else "")
        raise ModelError(f"{what or path}: the folder asks to run its own Python code ({shown}); it was not "
                         f"imported. {HOW_TO_ALLOW}")


def is_remote_code_refusal(exc: BaseException) -> bool:
    """Whether transformers refused to load a model because it needs its own code."""
    text = str(exc)
    return "trust_remote_code" in text or "contains custom code" in text or "references custom code" in text


def check_safetensors(path: Path) -> None:
    """Refuse a weight file that is not safetensors (a renamed pickle, a truncated write), naming it.

    Reading the header is enough: it holds every tensor's offsets, and a file shorter than they
    say is refused; nothing in the file is ever unpickled.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path} is not a readable safetensors file ({reason}); polymodal reads weights from "
                         "safetensors only and never unpickles a file") from None


# pickle-based weight files: transformers would torch.load them; polymodal never reads them
PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")


def require_safetensors(name: str) -> None:
    """For a local model folder: its safetensors files must read, and pickles alone are refused.

    Named in the error: the unreadable file, or the pickled weight files found instead.
    """
    folder = Path(name)
    if not folder.is_dir():
        return  # a hub name: transformers is told use_safetensors=True
    safe = sorted(folder.glob("*.safetensors"))
    for path in safe:
        check_safetensors(path)
    if safe or any(folder.glob("*.safetensors.index.json")):
        return
    pickles = sorted(p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern))
    if pickles:
        raise ModelError(
            f"{folder}: its weights are {', '.join(pickles)}, a pickle format polymodal never loads (reading a "
            "pickle can run code). Convert them to model.safetensors where you trust them (load with "
            "transformers and save_pretrained) and pass that folder"
        )
