"""Messages a newcomer meets: mistyped model folders, the fallback notice, absolute paths under
``--root /``, a flat folder of images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polymodal.cli.main import app

runner = CliRunner()


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("command", [["eval", "{m}", "--task", "retrieval", "--data", "d.jsonl"],
                                     ["embed", "{m}", "--data", "d.jsonl", "--out", "x.npy"],
                                     ["compare", "tiny-dual", "{m}", "--task", "retrieval", "--data", "d.jsonl",
                                      "--out", "o"]])
def test_a_mistyped_run_dir_is_no_such_folder_with_did_you_mean(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "runs" / "digits-finetune").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, [a.replace("{m}", "runs/digits-finetnue") for a in command])
    out = _one_line(r.output)
    assert r.exit_code == 2, out
    assert "runs/digits-finetnue: no such folder; did you mean runs/digits-finetune?" in out
    assert "hf download" not in out and "Traceback" not in out


def test_a_mistyped_preset_and_a_missing_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["eval", "lite-dul", "--task", "retrieval", "--data", "d.jsonl"])
    assert r.exit_code == 2 and "'lite-dul' is not a preset name or a folder here; did you mean lite-dual or lite-clip?" in _one_line(r.output)
    r = runner.invoke(app, ["eval", "./nowhere/run", "--task", "retrieval", "--data", "d.jsonl"])
    assert r.exit_code == 2 and "nowhere/run: no such folder (nowhere does not exist either)" in _one_line(r.output)


def test_a_hub_id_is_left_to_the_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polymodal.cli.common import check_model_name

    monkeypatch.chdir(tmp_path)
    check_model_name("google/vit-base-patch16-224")  # org/name, and no folder "google" here: no early failure


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from polymodal.data.builtin import make_dataset

    return make_dataset("shapes", tmp_path_factory.mktemp("shapes"), n=40)


def test_the_fallback_notice_is_one_line_the_report_names_the_tower_used_and_eval_refreshes_it(
    shapes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the Hub preset cannot load: the fallback trains
    config = tmp_path / "run.yaml"
    config.write_text("model: {preset: clip-vit-b32, fallback: tiny-dual, kind: dual}\n"
                      "data: {batch_size: 8, image: {size: 32}}\ntrain: {epochs: 1, progress: false}\n",
                      encoding="utf-8")
    run = tmp_path / "run"
    r = runner.invoke(app, ["train", str(config), "--set", f"data.manifest={shapes}", "--out", str(run)])
    assert r.exit_code == 0, r.output
    notices = [ln for ln in r.stderr.splitlines() if "model.fallback" in ln]
    assert len(notices) == 1, r.stderr
    assert notices[0].startswith("warning: using model.fallback 'tiny-dual' instead of model.preset 'clip-vit-b32' "
                                 "(model 'openai/clip-vit-base-patch32', which is not available offline)"), notices
    assert "UserWarning" not in r.stderr and "warnings.warn" not in r.stderr and "hf download" not in r.stderr

    # the run's report names the towers that really trained, and says the fallback stood in
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "Model: DualEncoder · tiny-dual" in page
    assert "model.preset &#x27;clip-vit-b32&#x27; could not be loaded where this run trained" in page
    assert "<td>image</td><td>tiny</td><td>vit</td>" in page  # tiny-dual's image tower, not CLIP's

    # eval of the run dir writes RUN/eval/... and refreshes RUN/report.html with it
    assert "retrieval" not in page
    r = runner.invoke(app, ["eval", str(run), "--task", "retrieval", "--data", str(shapes), "--bootstrap", "0"])
    assert r.exit_code == 0, r.output
    assert f"updated {run / 'report.html'}" in _one_line(r.output)
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "retrieval · shapes" in page and "image_to_text/R@1" in page


def _absolute_manifest(shapes: Path, out: Path) -> Path:
    rows = [json.loads(line) for line in shapes.read_text(encoding="utf-8").splitlines()][:6]
    for row in rows:
        row["image"] = str((shapes.parent / row["image"]).resolve())
    out.mkdir()
    manifest = out / "abs.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return manifest


def test_absolute_paths_are_read_with_root_slash(shapes: Path, tmp_path: Path) -> None:
    manifest = _absolute_manifest(shapes, tmp_path / "elsewhere")
    r = runner.invoke(app, ["data", "validate", str(manifest)])
    assert r.exit_code == 1 and "--root / or data.root: / allows absolute paths" in _one_line(r.output)
    r = runner.invoke(app, ["data", "validate", str(manifest), "--root", "/"])
    assert r.exit_code == 0, r.output
    assert "6 rows: 6 valid, 0 invalid" in r.output
    out = tmp_path / "e.npy"
    r = runner.invoke(app, ["embed", "tiny-dual", "--data", str(manifest), "--modality", "image", "--root", "/",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["eval", "tiny-dual", "--task", "retrieval", "--data", str(manifest), "--root", "/",
                            "--split", "train", "--bootstrap", "0", "--out", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output


def test_absolute_paths_stay_confined_to_the_root(shapes: Path, tmp_path: Path) -> None:
    from polymodal.data.validate import resolve_inside
    from polymodal.errors import DataError

    image = (shapes.parent / "images").resolve()
    first = sorted(image.iterdir())[0]
    assert resolve_inside(image, str(first)) == first  # absolute, inside the root: fine
    with pytest.raises(DataError, match="absolute path not allowed outside the data root"):
        resolve_inside(tmp_path, str(first))
    with pytest.raises(DataError, match="absolute path not allowed outside the data root"):
        resolve_inside(image, str(image / ".." / "manifest.jsonl"))  # '..' inside an absolute path


def test_a_flat_folder_of_images_embeds(shapes: Path, tmp_path: Path) -> None:
    import shutil

    import numpy as np

    flat = tmp_path / "photos"
    flat.mkdir()
    for src in sorted((shapes.parent / "images").iterdir())[:5]:
        shutil.copy(src, flat / src.name)
    (flat / "notes.txt").write_text("not an image", encoding="utf-8")
    out = tmp_path / "e.npy"
    r = runner.invoke(app, ["embed", "tiny-dual", "--data", str(flat), "--modality", "image", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert np.load(out).shape[0] == 5
    assert out.with_suffix(".ids.txt").read_text().split() == sorted(p.name for p in flat.glob("*.png"))
    r = runner.invoke(app, ["embed", "tiny-dual", "--data", str(flat), "--modality", "audio", "--out", str(out)])
    assert r.exit_code == 2 and "no audio files in this folder (it holds image files" in _one_line(r.output)
