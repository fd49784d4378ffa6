"""`polymodal train --resume` over hostile checkpoint files (issue 16, item 2), through the CLI.

The newest checkpoint holds a pickle renamed model.safetensors under a manifest rewritten to
match it; the one before has pickles dropped beside its files. The resume warns, falls back to
the older checkpoint, ignores the dropped files and finishes; nothing is unpickled. When no
checkpoint is usable the CLI says so in one line.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from polymodal.cli.main import app
from polymodal.train import checkpoint as ckpt

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tiny_contrastive.yaml"
SETTINGS = ["data.batch_size=8", "data.limit=32", "train.epochs=1", "train.max_steps=4", "train.checkpoint_every=2",
            "train.eval_every=2", "train.keep_last=5", "train.warmup_steps=0", "train.progress=false"]


class Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def _train(manifest: Path, out: Path, *extra: str) -> object:
    sets = [f"--set={s}" for s in [f"data.manifest={manifest}", *SETTINGS]]
    return CliRunner().invoke(app, ["train", str(EXAMPLE), *sets, "--out", str(out), *extra], terminal_width=400)


def _rehash(path: Path) -> None:
    files = {p.name: ckpt._sha256(p) for p in sorted(path.iterdir()) if p.name != ckpt.MANIFEST}
    (path / ckpt.MANIFEST).write_text(json.dumps({"step": 0, "files": files}), encoding="utf-8")


def test_resume_falls_back_past_hostile_files_and_never_unpickles(tmp_path: Path) -> None:
    from polymodal.data.builtin import make_dataset

    manifest = make_dataset("shapes", tmp_path / "shapes", n=48, seed=0)
    run = tmp_path / "run"
    first = _train(manifest, run)
    assert first.exit_code == 0, first.output
    marker = tmp_path / "unpickled.marker"
    newest, older = ckpt.step_dir(run / "checkpoints", 4), ckpt.step_dir(run / "checkpoints", 2)
    (newest / "model.safetensors").write_bytes(pickle.dumps({"w": Payload(marker)}))
    _rehash(newest)
    for name in ("extra.pt", "evil.pt"):
        torch.save({"x": Payload(marker)}, older / name)

    # the CLI turns polymodal's warnings into one "warning: ..." line each
    resumed = _train(manifest, run, "--resume")
    assert resumed.exit_code == 0, resumed.output
    said = " | ".join(line for line in resumed.output.splitlines() if line.startswith("warning:"))
    assert "step-00000004: model.safetensors cannot be read safely" in said
    assert "ignoring evil.pt, extra.pt (not in its manifest, never read)" in said
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e.get("checkpoint") for e in events if e["event"] == "resume"] == ["step-00000002"]
    assert [e["step"] for e in events if e["event"] == "end"] == [4]  # (a "data" count event follows it)
    assert not marker.exists()

    # nothing usable left: one clean line, no traceback
    for step in (2, 4):
        path = ckpt.step_dir(run / "checkpoints", step)
        (path / "state.safetensors").write_bytes(pickle.dumps({"w": Payload(marker)}))
        _rehash(path)
    failed = _train(manifest, run, "--resume")
    assert "warning:" in failed.output and "cannot be read safely" in failed.output, failed.output
    assert failed.exit_code == 2 and "no complete checkpoint" in failed.output, failed.output
    assert "Traceback" not in failed.output and isinstance(failed.exception, SystemExit)
    assert not marker.exists()
