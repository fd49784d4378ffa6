"""Hostile or broken weight files give a clean error naming the file, and nothing is unpickled
(issue 16, item 2): a pickle renamed ``model.safetensors``, an HF folder whose only weights are a
pickled ``pytorch_model.bin``, truncated safetensors; through ``polymodal.load`` and the CLI.

The pickles are real attacks: unpickling one runs ``exec`` and writes a marker file.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

import polymodal
from polymodal.cli.main import app
from polymodal.errors import ModelError

runner = CliRunner()


class Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('unpickled')",))


def hostile_pickle(marker: Path) -> bytes:
    blob = pickle.dumps({"weight": Payload(marker)})
    pickle.loads(pickle.dumps(Payload(marker.with_suffix(".selftest"))))  # the payload is live
    assert marker.with_suffix(".selftest").exists()
    return blob


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    # the variable is read when huggingface_hub is imported: set its flag too, so no request leaves
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "tiny"
    polymodal.load("tiny-dual").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import transformers as tf

    from polymodal.models.encoders.tiny import minilm_tokenizer, tiny_config

    folder = tmp_path_factory.mktemp("hf") / "bert"
    torch.manual_seed(0)
    tf.AutoModel.from_config(tiny_config("bert")).save_pretrained(folder)
    minilm_tokenizer().save_pretrained(folder)
    return folder


def _manifest(tmp_path: Path) -> Path:
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"id": "a", "split": "test", "text": "a red circle"}) + "\n", encoding="utf-8")
    return path


def _cli_refuses(args: list[str], *expected: str) -> None:
    r = runner.invoke(app, args, terminal_width=400)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)
    for text in expected:
        assert text in r.output, r.output


def test_pickle_renamed_model_safetensors_is_refused_by_name(tmp_path: Path, saved_tiny: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    folder = Path(shutil.copytree(saved_tiny, tmp_path / "saved"))
    weights = folder / "model.safetensors"
    weights.write_bytes(hostile_pickle(marker))
    with pytest.raises(ModelError, match="is not a readable safetensors file") as err:
        polymodal.load(str(folder))
    assert str(weights) in str(err.value) and "never unpickles" in str(err.value)
    _cli_refuses(["eval", str(folder), "--task", "retrieval", "--data", str(_manifest(tmp_path))], str(weights))
    assert not marker.exists()


def test_truncated_model_safetensors_is_refused_by_name(tmp_path: Path, saved_tiny: Path) -> None:
    folder = Path(shutil.copytree(saved_tiny, tmp_path / "saved"))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelError, match=f"{weights} is not a readable safetensors file"):
        polymodal.load(str(folder))


def test_hf_folder_with_only_a_pickled_bin_is_refused_and_never_unpickled(tmp_path: Path, hf_bert: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    folder = Path(shutil.copytree(hf_bert, tmp_path / "hf"))
    (folder / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": Payload(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(ModelError) as err:
        polymodal.load(str(folder))
    assert str(folder) in str(err.value) and "pytorch_model.bin" in str(err.value) and "pickle" in str(err.value)
    texts = tmp_path / "t.txt"
    texts.write_text("a red circle\n", encoding="utf-8")
    _cli_refuses(["embed", str(folder), "--data", str(texts), "--out", str(tmp_path / "e.npy")], "pytorch_model.bin")
    _cli_refuses(["eval", str(folder), "--task", "retrieval", "--data", str(_manifest(tmp_path))], "pytorch_model.bin")
    assert not marker.exists()


def test_hf_folder_with_both_reads_only_the_safetensors(tmp_path: Path, hf_bert: Path) -> None:
    marker = tmp_path / "unpickled.marker"
    folder = Path(shutil.copytree(hf_bert, tmp_path / "hf"))
    (folder / "pytorch_model.bin").write_bytes(hostile_pickle(marker))
    model = polymodal.load(str(folder))
    assert model.encode_text(["a red circle"]).shape == (1, 32)
    assert not marker.exists()


def test_hf_folder_with_truncated_safetensors_is_refused_by_name(tmp_path: Path, hf_bert: Path) -> None:
    folder = Path(shutil.copytree(hf_bert, tmp_path / "hf"))
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelError, match=f"{weights} is not a readable safetensors file"):
        polymodal.load(str(folder))


def test_hub_model_with_only_a_pickled_bin_is_refused(tmp_path: Path, hf_bert: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a hub repo as the Hub cache holds it after a download, offline: transformers is told
    # use_safetensors=True, so it never falls back to torch.load of the .bin
    from huggingface_hub import constants

    marker = tmp_path / "unpickled.marker"
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = tmp_path / "hub" / "models--polymodal-test--pickled"
    snapshot = Path(shutil.copytree(hf_bert, entry / "snapshots" / commit))
    (snapshot / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": Payload(marker)}, snapshot / "pytorch_model.bin")
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text(commit, encoding="utf-8")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelError, match="polymodal-test/pickled has no safetensors weights"):
        polymodal.load("polymodal-test/pickled")
    assert not marker.exists()
