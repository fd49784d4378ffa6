"""From validated rows to batches: dataset, label spaces, collate, DataLoader, seeding.

Randomness: every augmentation of a sample is drawn from a seed derived from
``(seed, epoch, index)``, so augmentations differ across samples (hence across workers)
and epochs, and are identical for the same seed whatever the number of workers.
Worker processes additionally seed ``random``/``numpy``/``torch`` from
``(seed, epoch, worker id)`` for any other randomness a processor may use.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from polymodal.config import DataConfig
from polymodal.data.sources import MODALITIES
from polymodal.data.validate import resolve_inside
from polymodal.errors import DataError

Processor = Callable[[list[Any]], Any]


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (``SeedSequence`` avoids seed+1 correlations)."""
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def build_label_spaces(rows: Sequence[dict[str, Any]], label_columns: Sequence[str]) -> dict[str, list[str]]:
    """Sorted class names per label column (numbers sort numerically).

    A list-valued column is multi-label. A column whose values are all non-integral numbers
    is a regression target and gets an empty label space.
    """
    spaces: dict[str, list[str]] = {}
    for col in label_columns:
        values: list[Any] = []
        for row in rows:
            v = row.get(col)
            if v is None:
                continue
            values.extend(v if isinstance(v, list) else [v])
        if values and all(_is_number(v) for v in values) and any(float(v) != int(v) for v in values):
            spaces[col] = []
            continue
        names = {str(v) for v in values}
        if all(n.lstrip("-").isdigit() for n in names):
            spaces[col] = sorted(names, key=int)  # class ids 2 < 10, not "10" < "2"
        else:
            spaces[col] = sorted(names)
    return spaces


class MultimodalDataset(Dataset[dict[str, Any]]):
    """Rows -> raw samples ``{"id", "<modality>": raw, "<label col>": encoded, "_row": row}``.

    Paths are re-checked against ``root`` here too, so rows that skipped validation still
    cannot read outside it. ``augment`` (default ``data_cfg.image.augment``) applies
    RandomResizedCrop + horizontal flip (torchvision v2) to images; pass ``augment=False``
    for evaluation datasets. ``features`` (modality -> row id -> tensor) replaces reading
    that modality's file with a stored tensor (a frozen tower's precomputed output).
    """

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        root: str | Path,
        modalities: Sequence[str],
        label_spaces: dict[str, list[str]],
        data_cfg: DataConfig | None = None,
        *,
        augment: bool | None = None,
        seed: int = 0,
        features: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.rows = list(rows)
        self.features = dict(features or {})
        self.root = Path(root).resolve()
        self.modalities = [m for m in modalities if m in MODALITIES]
        self.label_spaces = dict(label_spaces)
        self.cfg = data_cfg or DataConfig()
        self.augment = self.cfg.image.augment if augment is None else augment
        self.seed = seed
        self.epoch = 0
        self._index = {
            col: {name: i for i, name in enumerate(space)} for col, space in self.label_spaces.items()
        }

    def __len__(self) -> int:
        return len(self.rows)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def lengths(self) -> list[int]:
        """Text length per row in characters (for length bucketing); 0 without text."""
        return [len(str(row.get("text") or "")) for row in self.rows]

    def _encode_label(self, col: str, value: Any, rid: str) -> Any:
        if not self.label_spaces[col]:  # regression
            return float("nan") if value is None else float(value)
        index = self._index[col]
        if isinstance(value, list):
            return [self._lookup(index, col, v, rid) for v in value]
        return -1 if value is None else self._lookup(index, col, value, rid)

    @staticmethod
    def _lookup(index: dict[str, int], col: str, value: Any, rid: str) -> int:
        try:
            return index[str(value)]
        except KeyError:
            raise DataError(f"row {rid}: label {value!r} is not in the label space of {col!r}") from None

    def _augment(self, image: Any, index: int) -> Any:
        from torchvision.transforms import v2

        size = self.cfg.image.size or min(image.size)
        steps: list[Any] = [v2.RandomResizedCrop(size, scale=self.cfg.image.random_resized_crop_scale)]
        if self.cfg.image.hflip:
            steps.append(v2.RandomHorizontalFlip())
        # a private RNG stream per (seed, epoch, sample): reproducible, and the caller's
        # global RNG (model init, dropout) is left exactly where it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, self.epoch, index))
            return v2.Compose(steps)(image)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from polymodal.data.decode import DecodeOptions, decode_value

        # the decode path inference shares (polymodal.runtime.decode), with this run's rules
        options = DecodeOptions.from_config(self.cfg)
        row = self.rows[index]
        rid = str(row.get("id", index))
        sample: dict[str, Any] = {"id": rid, "_row": row}
        for m in self.modalities:
            if m in self.features:
                try:
                    sample[m] = self.features[m][rid]
                except KeyError:
                    raise DataError(f"row {rid}: no precomputed {m} features") from None
                continue
            # data.columns: a modality may come from another column (e.g. text <- question)
            value = row.get(self.cfg.columns.get(m, m))
            if value is None:
                raise DataError(f"row {rid}: no {m} (column {self.cfg.columns.get(m, m)!r})")
            if m == "text":
                sample[m] = decode_value(m, value, options, where=f"row {rid}: text")
                continue
            try:
                path = resolve_inside(self.root, value)
            except DataError as exc:
                raise DataError(f"row {rid}: {m} {value!r}: {exc}") from None
            sample[m] = decode_value(m, path, options)
            if m == "image" and self.augment:
                sample[m] = self._augment(sample[m], index)
        for col in self.label_spaces:
            sample[col] = self._encode_label(col, row.get(col), rid)
        return sample


def make_collate(
    processors: dict[str, Processor], label_spaces: dict[str, list[str]]
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """``collate(samples) -> Batch``: each modality through its processor, labels to tensors.

    Single-label -> ``LongTensor(B)`` (-1 where absent), multi-label -> multi-hot
    ``FloatTensor(B, C)``, regression -> ``FloatTensor(B)``. A modality without a processor
    is passed through as a list of raw values.
    """

    def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        if not samples:
            raise DataError("cannot collate an empty batch")
        batch: dict[str, Any] = {"id": [s["id"] for s in samples]}
        for m in MODALITIES:
            if m in samples[0]:
                raw = [s[m] for s in samples]
                batch[m] = processors[m](raw) if m in processors else raw
        for col, space in label_spaces.items():
            if col not in samples[0]:
                continue
            values = [s[col] for s in samples]
            if not space:
                batch[col] = torch.tensor(values, dtype=torch.float32)
            elif isinstance(values[0], list):
                hot = torch.zeros(len(values), len(space), dtype=torch.float32)
                for i, idx in enumerate(values):
                    hot[i, idx] = 1.0
                batch[col] = hot
            else:
                batch[col] = torch.tensor(values, dtype=torch.long)
        return batch

    return collate


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of similar text length: shuffle, sort within pools of ``pool`` batches, shuffle batches."""

    def __init__(
        self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True, seed: int = 0, pool: int = 50
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool = pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(derive_seed(self.seed, self.epoch))
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        span = self.batch_size * self.pool
        batches: list[list[int]] = []
        for start in range(0, len(order), span):
            chunk = sorted(order[start : start + span], key=lambda i: self.lengths[i])
            batches.extend(chunk[j : j + self.batch_size] for j in range(0, len(chunk), self.batch_size))
        if self.shuffle:
            rng.shuffle(batches)
        return iter(batches)


class _WorkerInit:
    """Picklable worker initialiser seeding every RNG from (seed, epoch, worker id)."""

    def __init__(self, seed: int, epoch: int) -> None:
        self.seed, self.epoch = seed, epoch

    def __call__(self, worker_id: int) -> None:
        s = derive_seed(self.seed, self.epoch, worker_id)
        random.seed(s)
        np.random.seed(s % 2**32)
        torch.manual_seed(s)


class SeededDataLoader(DataLoader[Any]):
    """A DataLoader that advances an epoch counter on each pass and re-seeds everything from it."""

    def __init__(self, dataset: Dataset[Any], *, seed: int, **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self.seed = seed
        self.epoch = -1

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (e.g. when resuming); passes count on from it."""
        self.epoch = epoch - 1

    def __iter__(self) -> Any:
        self.epoch += 1
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        for target in (self.sampler, self.batch_sampler):
            set_epoch = getattr(target, "set_epoch", None)
            if callable(set_epoch):
                set_epoch(self.epoch)
        if self.generator is not None:
            self.generator.manual_seed(derive_seed(self.seed, self.epoch))
        self.worker_init_fn = _WorkerInit(self.seed, self.epoch)
        return super().__iter__()


def build_dataloader(
    dataset: Dataset[Any],
    collate: Callable[[list[dict[str, Any]]], dict[str, Any]],
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    sampler: Sampler[Any] | None = None,
) -> SeededDataLoader:
    """A :class:`SeededDataLoader`; ``sampler`` may be a per-index sampler or a batch sampler
    such as :class:`LengthBucketSampler` (then ``batch_size`` and ``shuffle`` come from it)."""
    # an own generator: shuffling and worker base seeds never consume the global RNG
    kwargs: dict[str, Any] = {
        "collate_fn": collate,
        "num_workers": num_workers,
        "generator": torch.Generator(),
    }
    if hasattr(dataset, "seed"):
        dataset.seed = seed
    if isinstance(sampler, LengthBucketSampler):
        kwargs["batch_sampler"] = sampler
    elif sampler is not None:
        kwargs.update(sampler=sampler, batch_size=batch_size)
    else:
        kwargs.update(batch_size=batch_size, shuffle=shuffle)
    if num_workers > 0:
        # fresh workers each epoch carry the dataset's new epoch counter
        kwargs.update(persistent_workers=False, worker_init_fn=_WorkerInit(seed, 0))
    return SeededDataLoader(dataset, seed=seed, **kwargs)
