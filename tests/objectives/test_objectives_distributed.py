"""Two real processes (gloo): gathered InfoNCE/SigLIP give each shard the full-batch gradient."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from polymodal.objectives.contrastive import infonce, siglip


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, a: torch.Tensor, b: torch.Tensor, out: dict) -> None:  # type: ignore[type-arg]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        n = a.shape[0] // world
        results = {}
        for name in ("infonce", "siglip"):
            la = a[rank * n : (rank + 1) * n].clone().requires_grad_()
            lb = b[rank * n : (rank + 1) * n].clone().requires_grad_()
            scale = torch.tensor(5.0, dtype=torch.float64)
            if name == "infonce":
                loss = infonce(la, lb, scale)[0]
            else:
                loss = siglip(la, lb, scale, torch.tensor(-2.0, dtype=torch.float64))
            loss.backward()
            # DDP averages gradients over processes; do the same for the features
            results[name] = (float(loss), la.grad / world, lb.grad / world)
        out[rank] = results
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # starts two processes
def test_gathered_losses_match_single_process_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(8, 4, generator=g, dtype=torch.float64), dim=-1)
    b = torch.nn.functional.normalize(torch.randn(8, 4, generator=g, dtype=torch.float64), dim=-1)
    manager = mp.Manager()
    out = manager.dict()
    mp.spawn(_worker, args=(2, _port(), a, b, out), nprocs=2, join=True)
    fa, fb = a.clone().requires_grad_(), b.clone().requires_grad_()
    full = {"infonce": infonce(fa, fb, torch.tensor(5.0, dtype=torch.float64))[0]}
    full["infonce"].backward()
    ref = {"infonce": (fa.grad.clone(), fb.grad.clone())}
    fa.grad, fb.grad = None, None
    full["siglip"] = siglip(fa, fb, torch.tensor(5.0, dtype=torch.float64), torch.tensor(-2.0, dtype=torch.float64))
    full["siglip"].backward()
    ref["siglip"] = (fa.grad.clone(), fb.grad.clone())
    for name in ("infonce", "siglip"):
        ga = torch.cat([out[r][name][1] for r in range(2)])
        gb = torch.cat([out[r][name][2] for r in range(2)])
        torch.testing.assert_close(ga, ref[name][0], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(gb, ref[name][1], rtol=1e-9, atol=1e-12)
    # InfoNCE: the mean of the per-process losses is the full-batch loss
    mean_loss = sum(out[r]["infonce"][0] for r in range(2)) / 2
    assert mean_loss == pytest.approx(float(full["infonce"].detach()), rel=1e-9)
