from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def _share_the_cores_between_workers() -> None:
    """Under xdist, give each worker (and the CLI subprocesses it starts) its share of the cores.

    Left alone, each of two workers runs torch with one thread per core, so a 2-core runner has four
    busy threads; measured on a small slice of this suite (47 tests of fusion, trainer, resume and
    quarantine runs, 2 workers): 253 s of CPU with the default threads, 157 s with one thread a worker.
    A variable the user already set wins.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers < 2:
        return
    from polymodal.runtime.cpu import available_cores

    share = str(max(1, available_cores() // workers))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, share)
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


_share_the_cores_between_workers()


@pytest.fixture(scope="session")
def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (72 + 8 * i, 80, 3), dtype=np.uint8)) for i in range(5)]


@pytest.fixture(scope="session")
def texts() -> list[str]:
    return ["a red circle", "a much longer caption about a small blue square on white", "x", "green triangle", "two dots"]


@pytest.fixture(scope="session")
def tiny_dual():  # type: ignore[no-untyped-def]
    from polymodal.models.build import build_preset

    return build_preset("tiny-dual")


def no_pickle(folder) -> list[str]:  # type: ignore[no-untyped-def]
    """Files that look like pickles or torch zip archives (what loading must never read)."""
    bad = []
    for f in folder.rglob("*"):
        if f.is_file():
            head = f.read_bytes()[:4]
            if f.suffix in (".bin", ".pt", ".pth", ".pkl", ".pickle") or head[:1] == b"\x80" or head == b"PK\x03\x04":
                bad.append(str(f))
    return bad


@pytest.fixture(scope="session")
def find_pickles():  # type: ignore[no-untyped-def]
    return no_pickle


@pytest.fixture(scope="session")
def tiny():  # type: ignore[no-untyped-def]
    """tiny-dual as a user gets it: through the one loader, in eval mode (index and serve tests)."""
    import polymodal

    return polymodal.load("tiny-dual")


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-row built-in shapes set's folder (manifest.jsonl + images)."""
    from polymodal.data.builtin import make_dataset

    return make_dataset("shapes", tmp_path_factory.mktemp("shapes") / "data", n=24).parent  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def polymodal_cli():  # type: ignore[no-untyped-def]
    """``polymodal_cli(*args) -> click Result``: the real ``polymodal`` command run in this process
    (a subprocess pays several seconds of imports per call); ``.exit_code``, ``.stdout``, ``.stderr``."""
    from typer.testing import CliRunner

    from polymodal.cli.main import app

    def run(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(app, [str(a) for a in args], prog_name="polymodal")

    return run


@pytest.fixture(scope="session")
def phrases_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-row spoken-phrases set (espeak-ng clips; 7 train, 1 val, 2 test on held-out voices)."""
    from polymodal.data.builtin import make_dataset

    return make_dataset("spoken-phrases", tmp_path_factory.mktemp("phrases") / "data", n=10).parent  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def tiny_ctc():  # type: ignore[no-untyped-def]
    """A random-init CTC model: a small builtin-audio tower + a 32-wide CTC head."""
    import torch

    from polymodal.config import ModelConfig
    from polymodal.models import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(preset=None, kind="ctc", towers=[{
        "modality": "audio", "source": "builtin-audio",
        "options": {"n_mels": 16, "depth": 2, "width": 4, "freq_pool": "flatten"}}],
        heads={"text": {"kind": "ctc", "hidden_dim": 32}})
    return build_model(cfg).eval()
