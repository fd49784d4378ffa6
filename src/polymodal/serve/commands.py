"""The shell line that indexes a collection and serves a model over it (what the quickstart prints)."""

from __future__ import annotations

import shlex
from pathlib import Path


def serve_command(model: str | Path, data: str | Path, index: str | Path) -> str:
    """``polymodal index build MODEL --data DATA --out INDEX && polymodal serve MODEL --index INDEX``."""
    m, d, i = (shlex.quote(str(p)) for p in (model, data, index))
    return f"polymodal index build {m} --data {d} --out {i} && polymodal serve {m} --index {i}"
