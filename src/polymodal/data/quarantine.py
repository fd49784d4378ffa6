"""A run's quarantine file: one JSON line per unusable row, each row at most once.

Two stages write it. Validation (``stage: "validate"``) rewrites its own lines every time a
run starts or resumes. Loading (``stage: "load"``) appends a row whose file fails to decode
while training -- a file that changed after validation, or a fault validation cannot see --
from whichever process or DataLoader worker met it. An append is one ``write`` of one line
on an ``O_APPEND`` descriptor, so lines from concurrent workers never interleave, and a row
already in the file is not written again (a later epoch or a resumed run meets it again).

Line format: ``{"row", "id", "field", "reason", "stage", "record"}``; ``row`` is the 1-based
manifest line when known (None otherwise), ``record`` the manifest row as read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class Quarantine:
    """Where a run's unusable rows go; ``lines`` maps row id -> manifest line for the messages."""

    def __init__(self, path: str | Path, lines: dict[str, int] | None = None) -> None:
        self.path = Path(path)
        self.lines = dict(lines or {})

    def line(self, rid: str) -> int | None:
        return self.lines.get(rid)

    def records(self) -> list[dict[str, Any]]:
        """Every line of the file (a line cut short by a kill is ignored)."""
        if not self.path.is_file():
            return []
        out = []
        for text in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def ids(self) -> set[str]:
        return {str(r.get("id")) for r in self.records()}

    def count(self) -> int:
        """Rows quarantined so far, at validation and while loading."""
        return len(self.ids())

    def add(self, rid: str, field: str, reason: str, record: dict[str, Any], stage: str = "load") -> bool:
        """Append one row unless it is already there; True when written."""
        if rid in self.ids():
            return False
        entry = {"row": self.line(rid), "id": rid, "field": field, "reason": reason, "stage": stage,
                 "record": record}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = (json.dumps(entry, default=str) + "\n").encode("utf-8", "backslashreplace")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return True

    def rewrite_validation(self, entries: Iterable[dict[str, Any]], in_use: set[str]) -> None:
        """Replace the validation lines with ``entries``; keep the loading lines of rows still in use.

        A resumed run validates again but does not meet the rows that failed to load before
        its checkpoint a second time, so their lines must survive the rewrite."""
        fresh = list(entries)
        ids = {str(e.get("id")) for e in fresh}
        kept = [r for r in self.records() if r.get("stage") == "load" and str(r.get("id")) in in_use - ids]
        if not fresh and not kept and not self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # ensure_ascii (the default) keeps invalid UTF-8 (lone surrogates) writable as \u escapes
        text = "".join(json.dumps(e, default=str) + "\n" for e in [*fresh, *kept])
        self.path.write_text(text, encoding="utf-8")
