"""`accelerate launch --multi_gpu --num_processes 2` (gloo on CPUs) shares an index build out and gives the index one process gives."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polymodal.index import open_index

pytestmark = pytest.mark.slow


def test_two_cpu_processes_build_the_same_index_as_one(shapes_dir: Path, tiny, tmp_path: Path) -> None:
    launcher = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")
    if launcher is None:
        pytest.skip("accelerate's launcher is not installed")
    from polymodal.index import build_index

    build_index("tiny-dual", shapes_dir / "manifest.jsonl", tmp_path / "one", chunk_size=5, model=tiny)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                       os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "-m", "polymodal.cli.main", "index", "build", "tiny-dual",
         "--data", str(shapes_dir / "manifest.jsonl"), "--out", str(tmp_path / "two"), "--chunk-size", "5"],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert proc.stdout.count("wrote index of 24") == 1  # the main process reports, once
    info = json.loads((tmp_path / "two" / "info.json").read_text())
    assert info["processes"] == 2
    one, two = open_index(tmp_path / "one"), open_index(tmp_path / "two")
    assert [i.id for i in one.items] == [i.id for i in two.items]
    np.testing.assert_allclose(one.faiss.reconstruct_n(0, 24), two.faiss.reconstruct_n(0, 24), atol=1e-5)
    assert not (tmp_path / "two" / "build").exists()
