"""The inference runtime: ``encode(model, modality, items)`` for every polymodal model.

Models stay plain ``nn.Module``s; the runtime owns what fast, safe inference needs around them:

- decoding (``runtime.decode``: raw paths, bytes, images, waveforms, clips -> tower inputs,
  the same checks as training), length sorting (``encoder.item_lengths``, longest first, so
  batches carry little padding) and putting the rows back in input order;
- the precision decision: ``runtime.precision.decide_precision("auto", device)`` says bf16
  (a CPU whose measured bf16 matmul is fast, or a GPU with bf16) AND the model allows it
  (``model.encode_bf16``) AND the encoder is ``bf16_safe``; on CPU, ``bf16_weights``
  encoders then run a cached bf16 copy with prepacked linears (``runtime.copies``; real bf16
  weights ran MiniLM ~2.5x faster than autocast, which re-casts every activation) and the
  others run under bf16 autocast; ``bf16=`` forces either way;
- worker threads on CPU (``runtime.workers``): whole batches run on up to 4 shared worker
  threads while the calling thread decodes and preprocesses the next ones.

Safe to call from several threads at once on the same model:

- the process's torch thread count is never changed (workers set their own count once);
- a tower's ``preprocess`` (and ``item_lengths``) runs under a lock per tower: HF fast
  tokenizers change their padding / truncation state on every call and fail ("Already
  borrowed") when two threads share one;
- inference copies are built once under a lock per copy (``CopyCache``);
- eval mode: the model is switched to eval when the first concurrent call starts and each
  module's own mode is restored when the last one ends (counted under a lock), so no call
  sees another's restore half-way; the inference copies are eval-mode copies.

``device=``: the caller's model is never moved. Asking for another device than the model's
runs a cached eval-mode copy of the whole model there (rebuilt when the weights change;
``RUNTIME.clear(model)`` frees it).
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, wait
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from polymodal.models.towers import Tower, move
from polymodal.runtime.copies import CopyCache, to_bf16
from polymodal.runtime.decode import DECODE_BEFORE_SORT, DecodeError, decode_items, decode_options
from polymodal.runtime.precision import decide_precision
from polymodal.runtime.workers import WorkerPools, worker_plan


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _resolve(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:  # "cuda" means the current GPU, as .to("cuda") does
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


class _ModeHold:
    """Calls running on one model, and the per-module train/eval flags to put back after the last."""

    def __init__(self, saved: list[tuple[nn.Module, bool]]) -> None:
        self.users = 0
        self.saved = saved


class InferenceRuntime:
    """Runs models for inference; one process-wide instance (``RUNTIME``) is what ``encode`` uses."""

    def __init__(self) -> None:
        self.copies = CopyCache()
        self.pools = WorkerPools()
        self._lock = threading.Lock()
        self._modes: dict[nn.Module, _ModeHold] = {}
        self._preprocess_locks: weakref.WeakKeyDictionary[Tower, threading.Lock] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ shared-state guards
    @contextmanager
    def eval_mode(self, model: nn.Module) -> Iterator[None]:
        """``model`` in eval mode for the duration; concurrent holders share one switch."""
        with self._lock:
            hold = self._modes.get(model)
            if hold is None:
                saved = [(m, m.training) for m in model.modules()]
                model.eval()
                hold = self._modes[model] = _ModeHold(saved)
            hold.users += 1
        try:
            yield
        finally:
            with self._lock:
                hold.users -= 1
                if hold.users == 0:
                    del self._modes[model]
                    root_training = hold.saved[0][1]
                    model.train(root_training)  # through train(): modules that override it see the call
                    for module, training in hold.saved:
                        if training != root_training:  # a mixed model (e.g. a frozen tower kept in eval)
                            module.training = training

    def _preprocess_lock(self, tower: Tower) -> threading.Lock:
        with self._lock:
            lock = self._preprocess_locks.get(tower)
            if lock is None:
                lock = self._preprocess_locks[tower] = threading.Lock()
            return lock

    def bf16_copy(self, model: nn.Module, modality: str) -> nn.Module | None:
        """The cached bf16 inference copy of ``model``'s ``modality`` encoder, if one was built."""
        return self.copies.peek(model, f"bf16:{modality}")

    def clear(self, model: nn.Module | None = None) -> None:
        """Drop the inference copies kept for ``model`` (every model when None)."""
        self.copies.clear(model)

    # ------------------------------------------------------------------ encode
    def encode(
        self, model: Any, modality: str, items: Sequence[Any], *, batch_size: int = 64, bf16: bool | None = None,
        device: str | torch.device | None = None,
    ) -> torch.Tensor:
        """(n, D) float32 CPU embeddings of raw items, in input order (see the module docstring)."""
        tower: Tower = model.tower(modality)  # decodes and preprocesses, whichever copy runs
        items = list(items)
        home = _model_device(model)
        dev = _resolve(device) if device is not None else home
        target: Any = model if dev == home else self.copies.on_device(model, dev)
        runner: Tower = target.tower(modality)
        if bf16 is None:  # the one precision decision (a CPU probe, or the GPU's support)
            bf16 = bool(getattr(model, "encode_bf16", True)) and runner.encoder.bf16_safe \
                and decide_precision("auto", dev).bf16
        fast = self.copies.bf16_encoder(target, runner) if bf16 and dev.type == "cpu" else None
        use_autocast = bool(bf16) and fast is None
        normalize = bool(target.normalize_embeddings)

        options = decode_options(model, modality)
        if modality in DECODE_BEFORE_SORT:
            items = decode_items(model, modality, items, options)
        lock = self._preprocess_lock(tower)
        with lock:
            lengths = tower.encoder.item_lengths(items)
        order = sorted(range(len(items)), key=lambda i: -lengths[i])
        batches = [order[start : start + batch_size] for start in range(0, len(items), batch_size)]
        out = torch.empty(len(items), runner.output_dim)

        def prepare(idx: list[int]) -> Any:
            raw = [items[i] for i in idx]
            if modality not in DECODE_BEFORE_SORT:  # decoded a batch at a time (large once decoded)
                try:
                    raw = decode_items(model, modality, raw, options)
                except DecodeError as exc:
                    raise exc.at(idx[exc.index]) from None
            with lock:
                return tower.preprocess(raw)

        def run(idx: list[int], inputs: Any) -> None:
            # inference mode and autocast are per thread, so each worker enters them itself
            autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_autocast)
            with torch.inference_mode(), autocast:
                if fast is None:
                    z = target.embed(modality, inputs)
                else:  # Tower.forward in eval mode, the encoder in bf16, the rest in float32
                    z = runner.projection(fast(to_bf16(inputs)).float())
                    z = F.normalize(z, dim=-1) if normalize else z
                out[idx] = z.float().cpu()

        workers, threads_each = worker_plan(len(batches), dev)
        with self.eval_mode(target):
            if workers == 1:
                for idx in batches:
                    run(idx, move(prepare(idx), dev))
            else:
                self._run_on_workers(workers, threads_each, batches, prepare, run)
        return out

    def _run_on_workers(self, workers: int, threads_each: int, batches: list[list[int]], prepare: Any, run: Any) -> None:
        # preprocessing stays on this thread and overlaps the workers' forward passes; at most
        # 2 batches per worker wait, so decoded inputs never pile up
        pool = self.pools.get(workers, threads_each)
        pending: deque[Future[None]] = deque()
        try:
            for idx in batches:
                pending.append(pool.submit(run, idx, prepare(idx)))
                while len(pending) > 2 * workers:
                    pending.popleft().result()
            while pending:
                pending.popleft().result()
        finally:
            # after a failure: nothing of this call may still run once it returns (eval mode
            # is restored next), so queued batches are cancelled and running ones awaited
            for future in pending:
                future.cancel()
            wait(pending)


RUNTIME = InferenceRuntime()


def encode(
    model: Any, modality: str, items: Sequence[Any], *, batch_size: int = 64, bf16: bool | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """``RUNTIME.encode``: (n, D) float32 embeddings of raw items with the process's runtime."""
    return RUNTIME.encode(model, modality, items, batch_size=batch_size, bf16=bf16, device=device)
