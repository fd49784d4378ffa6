"""``wordnet``: WordNet noun glosses labelled by lexicographer category (text classification).

Read from the Debian package ``wordnet-base`` (``/usr/share/wordnet/data.noun``). Each
synset line carries its lexicographer file number as the second field and its gloss after
`` | ``; the gloss's definition (before any quoted usage example) is the ``text`` and the
category name (``noun.animal``, ``noun.food``...) the ``label``. The label set is the noun
categories with at least 2,000 synsets (14 of them); each is capped to the same count
(1,000 by default, ``n // 14`` when ``n`` is given) so classes are balanced. Further
columns: ``meta.lemma`` (the synset's first word; ``meta`` is never a label). Splits 80/10/10, stratified by category.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from polymodal.data.builtin import _common as common
from polymodal.errors import DataError

NAME = "wordnet"
SOURCE = Path("/usr/share/wordnet/data.noun")
MIN_SYNSETS = 2000
DEFAULT_PER_CLASS = 1000
FILES_DIR = "text"  # nothing is written there: the text is inline in the manifest
# WordNet's fixed lexicographer file numbering (the ``lexnames`` file of WordNet 3.x)
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip


def definition(gloss: str) -> str:
    """The gloss without its quoted usage examples ("a dog; \"the dog barked\"" -> "a dog")."""
    head = gloss.split('"', 1)[0]
    return head.strip().rstrip(";").strip()


def read_glosses(path: Path | None = None) -> list[tuple[str, str, str, str]]:
    """(offset, lexname, lemma, definition) per synset; DataError naming the package when absent."""
    path = SOURCE if path is None else path
    if not path.is_file():
        raise DataError(
            f"wordnet: {path} not found; install the Debian package wordnet-base (apt-get install wordnet-base)"
        )
    out = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if line.startswith("  "):  # the licence header lines
                continue
            fields, sep, gloss = line.partition(" | ")
            parts = fields.split()
            if not sep or len(parts) < 5:
                raise DataError(f"{path}:{number}: not a WordNet synset line")
            try:
                lexname = LEXNAMES[int(parts[1])]
            except (ValueError, IndexError) as exc:
                raise DataError(f"{path}:{number}: bad lexicographer file number {parts[1]!r}") from exc
            text = definition(gloss)
            if text:
                out.append((parts[0], lexname, parts[4].replace("_", " "), text))
    return out


def make(out_dir: str | Path, n: int | None = None, seed: int = 0) -> Path:
    synsets = read_glosses()
    by_class: dict[str, list[tuple[str, str, str, str]]] = {}
    for item in synsets:
        by_class.setdefault(item[1], []).append(item)
    classes = sorted(c for c, items in by_class.items() if len(items) >= MIN_SYNSETS)
    if not classes:
        raise DataError(f"wordnet: no noun category in {SOURCE} has {MIN_SYNSETS} glosses")
    smallest = min(len(by_class[c]) for c in classes)
    common.check_n(NAME, n, smallest * len(classes))
    if n is None:
        quotas = [min(DEFAULT_PER_CLASS, smallest)] * len(classes)
    else:
        # equal shares; the remainder goes one each to the first classes in name order
        quotas = [n // len(classes) + (1 if k < n % len(classes) else 0) for k in range(len(classes))]
    rng = random.Random(f"{seed}-{NAME}")
    picked: list[tuple[str, str, str, str]] = []
    for cls, quota in zip(classes, quotas, strict=True):
        picked.extend(sorted(rng.sample(by_class[cls], quota)))
    splits = common.stratified_splits([p[1] for p in picked], random.Random(f"{seed}-{NAME}-splits"))
    out = common.prepare_out_dir(out_dir, FILES_DIR)
    rows: list[dict[str, Any]] = [
        {"id": f"wn-n-{offset}", "split": split, "text": text, "label": lexname, "meta": {"lemma": lemma}}
        for (offset, lexname, lemma, text), split in zip(picked, splits, strict=True)
    ]
    info = {
        "name": NAME,
        "seed": seed,
        "source": f"{SOURCE} (Debian package wordnet-base; WordNet 3.0 licence)",
        "label": "WordNet lexicographer category of the noun synset",
        "classes": classes,
        "min_synsets_per_class": MIN_SYNSETS,
    }
    return common.write_manifest(out, rows, info, FILES_DIR, {"label": classes})
