"""No code runs from a model folder unless the caller allows it (issue 16, item 1).

Folders are planted with a ``configuration_x.py`` that writes a marker file when imported
(``remote_code.py``): a local HF folder with ``auto_map``, a saved polymodal folder whose tower
spec says ``trust_remote_code: true`` with a 40-hex revision, the same pointing at a hub name, and
a hub repo planted in the Hub cache. Without the caller's permission each is refused with a
message naming what asks and how to allow it, and the marker never appears; with it (in a fresh
process, ``remote_code_child.py``) the code runs. ``HF_HUB_OFFLINE=1`` throughout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from remote_code import COMMIT, OTHER_COMMIT, plant_code, plant_hub_cache, poison_saved_folder
from typer.testing import CliRunner

import polymodal
from polymodal.cli.main import app
from polymodal.errors import ModelError

runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import transformers.dynamic_module_utils as dynamic
    from huggingface_hub import constants

    # the variable is read when huggingface_hub is imported: set its flag too, so no request leaves
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    # were planted code ever imported (a regression), its copy lands here, not in ~/.cache
    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "hf-modules"))
    monkeypatch.setattr(sys, "path", [*sys.path])


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran.marker"


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "tiny"
    polymodal.load("tiny-dual").save_pretrained(folder)
    return folder


def _copy_saved(saved: Path, dest: Path) -> Path:
    import shutil

    return Path(shutil.copytree(saved, dest))


@pytest.mark.parametrize("model_type", ["x-marker", "bert"])
def test_local_folder_with_auto_map_is_refused_and_its_code_never_imported(
        tmp_path: Path, marker: Path, model_type: str) -> None:
    # "bert": transformers would quietly load its own BertModel in place of the folder's class
    folder = plant_code(tmp_path / "evil", marker, model_type)
    with pytest.raises(ModelError) as err:
        polymodal.load(str(folder))
    msg = str(err.value)
    assert str(folder) in msg and "configuration_x.XConfig" in msg and "trust_remote_code=True" in msg
    assert "--trust-remote-code" in msg
    assert not marker.exists()


def test_transformers_is_always_told_trust_remote_code_explicitly(tmp_path: Path, marker: Path) -> None:
    # an unset flag makes transformers prompt on a terminal ("run the custom code? [y/N]")
    from polymodal.models.encoders.hf_common import hub_kwargs
    from polymodal.models.trust import allow_remote_code

    assert hub_kwargs({"name_or_path": "org/model"}, True)["trust_remote_code"] is False
    assert hub_kwargs({"name_or_path": "org/model", "trust_remote_code": True, "revision": COMMIT},
                      True)["trust_remote_code"] is False  # a spec's own flag is not the caller's permission
    with allow_remote_code(True, COMMIT):
        assert hub_kwargs({"name_or_path": "org/model"}, True) == \
            {"local_files_only": True, "trust_remote_code": True, "revision": COMMIT}


def test_saved_folder_asking_for_code_is_refused_naming_the_tower(tmp_path: Path, marker: Path,
                                                                  saved_tiny: Path) -> None:
    evil = plant_code(tmp_path / "evil", marker)
    saved = poison_saved_folder(_copy_saved(saved_tiny, tmp_path / "saved"), str(evil))
    with pytest.raises(ModelError) as err:
        polymodal.load(str(saved))
    msg = str(err.value)
    assert f"{saved}/config.json" in msg and "the text tower" in msg and str(evil) in msg and COMMIT in msg
    assert "trust_remote_code=True" in msg
    assert not marker.exists()
    # the same folder as a run dir, as a config's model.preset and as a distillation teacher
    run = tmp_path / "run"
    run.mkdir()
    saved.rename(run / "model")
    from polymodal.config import ModelConfig, objective_config
    from polymodal.models import build_model
    from polymodal.objectives import build_objective

    with pytest.raises(ModelError, match="the text tower"):
        polymodal.load(str(run))
    with pytest.raises(ModelError, match="the text tower"):
        build_model(ModelConfig(preset=str(run), kind="dual"))
    with pytest.raises(ModelError, match="the text tower"):
        build_objective(objective_config(kind="distill", teacher=str(run)), polymodal.load("tiny-dual"), {})
    assert not marker.exists()


def test_saved_tower_assets_naming_their_own_code_are_refused(tmp_path: Path, marker: Path,
                                                              saved_tiny: Path) -> None:
    # the spec is clean, but the tower's saved config.json maps to code planted beside it
    saved = _copy_saved(saved_tiny, tmp_path / "saved")
    assets = saved / "towers" / "text"
    plant_code(tmp_path / "evil", marker, "bert")
    for name in ("config.json", "configuration_x.py", "modeling_x.py"):
        (assets / name).write_bytes((tmp_path / "evil" / name).read_bytes())
    with pytest.raises(ModelError) as err:
        polymodal.load(str(saved))
    assert str(assets) in str(err.value) and "configuration_x.XConfig" in str(err.value)
    assert not marker.exists()


def test_a_revision_written_in_the_file_never_pins_remote_code(tmp_path: Path, saved_tiny: Path) -> None:
    saved = poison_saved_folder(_copy_saved(saved_tiny, tmp_path / "saved"), "polymodal-test/evil")
    with pytest.raises(ModelError, match="'polymodal-test/evil' at revision " + COMMIT):
        polymodal.load(str(saved))
    # allowed, but the pin must be the caller's: the file's 40-hex revision does not count
    with pytest.raises(ModelError, match="needs a pinned revision given by you"):
        polymodal.load(str(saved), trust_remote_code=True)
    with pytest.raises(ModelError, match=f"pinned to revision {COMMIT} but you allowed code at {OTHER_COMMIT}"):
        polymodal.load(str(saved), trust_remote_code=True, revision=OTHER_COMMIT)


def test_hub_names_need_the_callers_commit(marker: Path) -> None:
    with pytest.raises(ModelError, match="needs a pinned revision given by you"):
        polymodal.load("polymodal-test/evil", trust_remote_code=True)
    with pytest.raises(ModelError, match="not a commit hash"):
        polymodal.load("polymodal-test/evil", trust_remote_code=True, revision="main")
    # a run config's tower asking for remote code is the caller's choice; its revision must still be a commit
    from polymodal.models.towers import build_tower

    with pytest.raises(ModelError, match="needs a pinned revision"):
        build_tower({"modality": "text", "source": "hf", "name_or_path": "org/model", "trust_remote_code": True})


def test_cli_refuses_planted_folders_cleanly(tmp_path: Path, marker: Path, saved_tiny: Path) -> None:
    evil = plant_code(tmp_path / "evil", marker)
    saved = poison_saved_folder(_copy_saved(saved_tiny, tmp_path / "saved"), str(evil))
    texts = tmp_path / "t.txt"
    texts.write_text("a red circle\n", encoding="utf-8")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "split": "test", "text": "a red circle"}) + "\n", encoding="utf-8")
    for args in (["eval", str(saved), "--task", "retrieval", "--data", str(manifest)],
                 ["compare", str(saved), "tiny-dual", "--task", "retrieval", "--data", str(manifest), "--out",
                  str(tmp_path / "cmp")],
                 ["embed", str(evil), "--data", str(texts), "--out", str(tmp_path / "e.npy")]):
        r = runner.invoke(app, args, terminal_width=400)
        assert r.exit_code == 2, r.output
        assert "asks to run its own Python code" in r.output and "--trust-remote-code" in r.output
        assert "Traceback" not in r.output and not isinstance(r.exception, ModelError)
    r = runner.invoke(app, ["embed", str(evil), "--data", str(texts), "--out", str(tmp_path / "e.npy"),
                            "--revision", COMMIT])
    assert r.exit_code == 2 and "pass both" in r.output
    assert not marker.exists()


def test_train_refuses_a_preset_folder_that_asks_for_code(tmp_path: Path, marker: Path, saved_tiny: Path) -> None:
    from polymodal.data.builtin import make_dataset

    evil = plant_code(tmp_path / "evil", marker)
    saved = poison_saved_folder(_copy_saved(saved_tiny, tmp_path / "saved"), str(evil))
    manifest = make_dataset("shapes", tmp_path / "shapes", n=24, seed=0)
    example = Path(__file__).resolve().parents[2] / "examples" / "tiny_contrastive.yaml"
    r = runner.invoke(app, ["train", str(example), f"--set=data.manifest={manifest}", f"--set=model.preset={saved}",
                            "--out", str(tmp_path / "run")], terminal_width=400)
    assert r.exit_code == 2, r.output
    assert "the text tower" in r.output and "--trust-remote-code" in r.output and "Traceback" not in r.output
    assert not marker.exists()


@pytest.mark.slow
def test_the_callers_permission_runs_the_code(tmp_path: Path, saved_tiny: Path) -> None:
    """The switch works both ways: the same folders load, code and all, once the caller allows it."""
    plant_code(tmp_path / "local", tmp_path / "local.marker")
    plant_code(tmp_path / "cli", tmp_path / "cli.marker")
    plant_code(tmp_path / "saved-code", tmp_path / "saved.marker")
    poison_saved_folder(_copy_saved(saved_tiny, tmp_path / "saved"), str(tmp_path / "saved-code"), None)
    plant_hub_cache(tmp_path / "hub", "polymodal-test/evil", tmp_path / "hub.marker")
    plant_code(tmp_path / "train-code", tmp_path / "train.marker")
    poison_saved_folder(_copy_saved(saved_tiny, tmp_path / "train-saved"), str(tmp_path / "train-code"), None)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub"),
           "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    child = Path(__file__).with_name("remote_code_child.py")
    proc = subprocess.run([sys.executable, str(child), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = json.loads(proc.stdout.strip().splitlines()[-1])
    refused = steps["hub_refused"]
    assert not refused["ok"] and "polymodal-test/evil" in refused["error"] and refused["markers"] == []
    assert steps["hub_allowed"] == {"ok": True, "dim": 32, "markers": ["hub"]}
    assert steps["local_allowed"] == {"ok": True, "dim": 32, "markers": ["hub", "local"]}
    assert steps["saved_allowed"] == {"ok": True, "dim": 32, "markers": ["hub", "local", "saved"]}
    assert steps["cli_allowed"]["ok"], steps["cli_allowed"]["error"]
    assert steps["cli_allowed"]["markers"] == ["cli", "hub", "local", "saved"]
    assert steps["train_allowed"]["ok"], steps["train_allowed"]["error"]
    assert steps["train_allowed"]["markers"] == ["cli", "hub", "local", "saved", "train"]
