"""Cores actually available (affinity mask, cgroup quota) and torch's threads set to match."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from polymodal.runtime import cpu


def test_cgroup_v2_quota_caps_the_affinity_mask(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs
    assert cpu.available_cores(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu.available_cores(tmp_path) == len(os.sched_getaffinity(0))


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu.available_cores(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu.available_cores(tmp_path) == len(os.sched_getaffinity(0))


def test_no_cgroup_files_means_the_affinity_mask(tmp_path: Path) -> None:
    assert cpu.available_cores(tmp_path / "absent") == len(os.sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no affinity API on this OS")
def test_cli_sets_torch_threads_to_a_taskset_mask_unless_the_user_chose() -> None:
    """A process pinned to one core runs one intra-op thread; OMP_NUM_THREADS still wins."""
    code = ("import os, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from polymodal.runtime.cpu import configure_threads; configure_threads(); "
            "import torch; print(torch.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k not in cpu.THREAD_ENV}
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=True).stdout.strip() == "1"
    # the user's choice is kept even where it exceeds the mask
    code = ("from polymodal.runtime.cpu import configure_threads; print(configure_threads()); "
            "import torch; print(torch.get_num_threads())")
    env["OMP_NUM_THREADS"] = "1"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=True).stdout.split() == ["None", "1"]


def test_usable_threads_never_exceeds_the_cores() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(cpu.available_cores() + 4)
        assert cpu.usable_threads() == cpu.available_cores()
    finally:
        torch.set_num_threads(before)
