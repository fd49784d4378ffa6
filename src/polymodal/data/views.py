"""Views of a manifest written beside it: the same rows with a derived column.

``prompt_target_view`` joins a prompt column and a target column into one text,
``"<prompt> [SEP] <target>"``: a text decoder (``models/decoder.py``) trains on it with the
prompt as context and only the target as what it predicts, which is how a captioning model
learns to answer questions (``data.columns: {text: qa}``). The view lives in the manifest's
folder, so every relative path in it stays inside the same data root.

``also="text"`` adds each row a second time (id ``<id>#<also>``) whose ``column`` is that other
column as is (the caption): one decoder then trains on captions and on questions together, and
the caption rows teach it to name every object, which a single question per image cannot.
"""

from __future__ import annotations

import json
from pathlib import Path

from polymodal.errors import DataError

SEPARATOR = "[SEP]"  # the BERT tokenizers' separator token, which the decoder splits on


def prompt_target_view(manifest: str | Path, prompt: str = "question", target: str = "answer",
                       column: str = "qa", out: str | Path | None = None, also: str | None = None) -> Path:
    """Write ``<manifest>-<column>.jsonl`` (or ``out``, in the same folder) with ``column`` added;
    with ``also``, every row once more with ``column`` = its ``also`` column (rows without it skipped)."""
    src = Path(manifest)
    if src.suffix != ".jsonl" or not src.is_file():
        raise DataError(f"{src}: a prompt/target view is made from a JSONL manifest")
    dest = Path(out) if out is not None else src.with_name(f"{src.stem}-{column}.jsonl")
    if dest.resolve().parent != src.resolve().parent:
        raise DataError(f"{dest}: a view must sit beside its manifest ({src.parent}) so its paths resolve the same")
    lines = []
    for n, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        p, t = row.get(prompt), row.get(target)
        if p in (None, "") or t in (None, ""):
            raise DataError(f"{src}:{n}: row {row.get('id')!r} has no {prompt!r} or no {target!r}")
        if SEPARATOR in str(p) or SEPARATOR in str(t):
            raise DataError(f"{src}:{n}: {prompt!r}/{target!r} already contains {SEPARATOR}")
        if also is not None and row.get(also) not in (None, ""):
            if SEPARATOR in str(row[also]):
                raise DataError(f"{src}:{n}: {also!r} already contains {SEPARATOR}")
            lines.append(json.dumps({**row, "id": f"{row.get('id')}#{also}", column: str(row[also])}, ensure_ascii=False))
        row[column] = f"{p} {SEPARATOR} {t}"
        lines.append(json.dumps(row, ensure_ascii=False))
    dest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dest
