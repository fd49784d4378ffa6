"""Run by test_trust.py in a fresh process: the caller allows planted code, and it runs.

A separate process because allowed code is imported for real: transformers copies it under
``HF_MODULES_CACHE`` (a temporary folder here) and it stays in ``sys.modules``. The parent sets
``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` before anything is imported. Prints one JSON object:
for each step, whether it loaded, the error if not, and which markers exist afterwards.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def main(tmp: Path) -> None:
    import polymodal
    from polymodal.errors import PolymodalError

    sys.path.insert(0, str(Path(__file__).parent))
    from remote_code import COMMIT

    markers = {name: tmp / f"{name}.marker" for name in ("local", "saved", "hub", "cli", "train")}
    steps: dict[str, Any] = {}

    def step(name: str, fn: Callable[[], Any]) -> None:
        try:
            model = fn()
            dim = int(model.encode_text(["a red circle"]).shape[1]) if model is not None else None
            steps[name] = {"ok": True, "dim": dim}
        except PolymodalError as exc:
            steps[name] = {"ok": False, "error": str(exc)}
        steps[name]["markers"] = sorted(k for k, m in markers.items() if m.exists())

    repo = "polymodal-test/evil"
    step("hub_refused", lambda: polymodal.load(repo))
    step("hub_allowed", lambda: polymodal.load(repo, trust_remote_code=True, revision=COMMIT))
    step("local_allowed", lambda: polymodal.load(str(tmp / "local"), trust_remote_code=True))
    step("saved_allowed", lambda: polymodal.load(str(tmp / "saved"), trust_remote_code=True))

    from typer.testing import CliRunner

    from polymodal.cli.main import app

    texts = tmp / "texts.txt"
    texts.write_text("a red circle\na blue square\n", encoding="utf-8")
    out = tmp / "emb.npy"
    result = CliRunner().invoke(app, ["embed", str(tmp / "cli"), "--data", str(texts), "--out", str(out),
                                      "--trust-remote-code"])
    steps["cli_allowed"] = {"ok": result.exit_code == 0 and out.is_file(), "error": result.output[-2000:],
                            "markers": sorted(k for k, m in markers.items() if m.exists())}

    # a run whose model.preset is a folder that asks for its code: --trust-remote-code lets it train
    from polymodal.data.builtin import make_dataset

    manifest = make_dataset("shapes", tmp / "shapes", n=24, seed=0)
    example = Path(__file__).resolve().parents[2] / "examples" / "tiny_contrastive.yaml"
    sets = [f"--set={s}" for s in (f"data.manifest={manifest}", f"model.preset={tmp / 'train-saved'}",
                                   "data.batch_size=8", "train.max_steps=1", "train.progress=false")]
    result = CliRunner().invoke(app, ["train", str(example), *sets, "--out", str(tmp / "run"), "--trust-remote-code"])
    steps["train_allowed"] = {"ok": result.exit_code == 0 and (tmp / "run" / "model").is_dir(),
                              "error": result.output[-2000:],
                              "markers": sorted(k for k, m in markers.items() if m.exists())}
    print(json.dumps(steps))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
