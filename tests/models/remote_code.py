"""Model folders planted with Python code that leaves a marker file when it is imported.

A real attack needs only this: a config.json whose ``auto_map`` names a ``configuration_*.py``
beside it. The planted code writes ``marker`` and then behaves (a BERT subclass), so a test
can tell "refused", "ran" and "loaded" apart. Used in-process and by ``remote_code_child.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# a commit hash as a hub repo's snapshot is named (any 40 hex digits)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def plant_code(folder: Path, marker: Path, model_type: str = "x-marker") -> Path:
    """A tiny BERT saved as an HF folder whose config maps to its own code (``auto_map``)."""
    import torch
    import transformers as tf

    from polymodal.models.encoders.tiny import minilm_tokenizer, tiny_config

    torch.manual_seed(0)
    tf.AutoModel.from_config(tiny_config("bert")).save_pretrained(folder)
    minilm_tokenizer().save_pretrained(folder)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    cfg.update(model_type=model_type, architectures=["XModel"],
               auto_map={"AutoConfig": "configuration_x.XConfig", "AutoModel": "modeling_x.XModel"})
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    (folder / "configuration_x.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig\n\n\n"
        "class XConfig(BertConfig):\n"
        f"    model_type = {model_type!r}\n",
        encoding="utf-8",
    )
    (folder / "modeling_x.py").write_text(
        "from transformers import BertModel\n\n"
        "from .configuration_x import XConfig\n\n\n"
        "class XModel(BertModel):\n"
        "    config_class = XConfig\n",
        encoding="utf-8",
    )
    return folder


def plant_hub_cache(cache: Path, repo: str, marker: Path) -> Path:
    """``repo`` as the Hub cache holds it after a download (snapshot ``COMMIT``, refs/main)."""
    entry = cache / ("models--" + repo.replace("/", "--"))
    snapshot = entry / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    plant_code(snapshot, marker)
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(COMMIT, encoding="utf-8")
    return snapshot


def poison_saved_folder(saved: Path, name_or_path: str, revision: str | None = COMMIT) -> Path:
    """Rewrite a saved tiny-dual folder so its text tower asks for remote code from ``name_or_path``.

    The tower's own assets are removed, so loading it goes to ``name_or_path`` as written.
    """
    cfg_path = saved / "config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    spec = cfg["model"]["towers"]["text"]["encoder"]
    spec.update(source="hf", name_or_path=name_or_path, trust_remote_code=True, revision=revision)
    cfg_path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    shutil.rmtree(saved / "towers" / "text")
    return saved
