"""How many cores this process may really use, and torch's thread count set to match.

``os.cpu_count()`` counts the host's CPUs; a container limited by a cgroup CPU quota or a
process pinned by ``taskset`` gets fewer. Running more intra-op threads than that makes them
wait on each other (a 2-core quota on a 64-core host with 64 threads is several times slower).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup's quota (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), None if unlimited."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def available_cores(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """Cores this process may run on: the affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def configure_threads() -> int | None:
    """Match torch's intra-op threads to the available cores unless the user chose a number.

    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` win (the user's choice). Otherwise, if torch is
    already imported its thread count is set; if not, ``OMP_NUM_THREADS`` is, so that torch
    (imported later, maybe never: ``data validate`` does not need it) starts with it.
    Returns the count set, or None when the user's choice was kept.
    """
    if any(os.environ.get(k) for k in THREAD_ENV):
        return None
    cores = available_cores()
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = str(cores)
    elif torch.get_num_threads() != cores:
        torch.set_num_threads(cores)
    return cores


def usable_threads() -> int:
    """Intra-op threads worth using now: torch's setting, never more than the available cores."""
    import torch

    return max(1, min(torch.get_num_threads(), available_cores()))
