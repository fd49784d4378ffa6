"""From validated rows to batches: dataset, label spaces, collate, DataLoader, seeding.

Randomness: every augmentation of a sample is drawn from a seed derived from
``(seed, epoch, index)``, so augmentations differ across samples (hence across workers)
and epochs, and are identical for the same seed whatever the number of workers.
Worker processes additionally seed ``random``/``numpy``/``torch`` from
``(seed, epoch, worker id)`` for any other randomness a processor may use.

A sample whose file fails to decode while loading (it changed after validation, or holds a
fault only a full decode meets) is, under ``data.on_error: skip``, written to the run's
quarantine file by id and handed on as a *failed* sample that ``collate`` drops: its batch
shrinks by one. Whether a file decodes is a property of the file, so every pass over the
data -- another epoch, a resumed run -- shrinks the same batches the same way and exact
resume still holds. Under ``fail`` the error names the row and stops the run.
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
from polymodal.data.quarantine import Quarantine
from polymodal.data.sources import MODALITIES, Manifest
from polymodal.data.validate import find_label_sets, resolve_inside
from polymodal.errors import DataError

FAILED = "_failed"  # the key of a sample that could not be loaded (its reason); collate drops it

Processor = Callable[[list[Any]], Any]


_AUDIO_STREAM = 0xA0D10  # keeps audio draws apart from an image's in the same sample


def derive_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (``SeedSequence`` avoids seed+1 correlations)."""
    return int(np.random.SeedSequence([p & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0] >> 1)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def sort_names(names: set[str] | list[str]) -> list[str]:
    """Class names in label-space order: integer names numerically (2 < 10), others as strings."""
    unique = set(names)
    if all(n.lstrip("-").isdigit() for n in unique):
        return sorted(unique, key=int)
    return sorted(unique)


def build_label_spaces(
    rows: Sequence[dict[str, Any]], label_columns: Sequence[str], columns: dict[str, str] | None = None
) -> dict[str, list[str]]:
    """Sorted class names per label column (numbers sort numerically).

    A list-valued column is multi-label. A column whose values are all non-integral numbers
    is a regression target and gets an empty label space. ``columns`` (``data.columns``) reads
    a label from another manifest column (``{"label": "topic"}``).
    """
    spaces: dict[str, list[str]] = {}
    for col in label_columns:
        source = (columns or {}).get(col, col)
        values: list[Any] = []
        for row in rows:
            v = row.get(source)
            if v is None:
                continue
            values.extend(v if isinstance(v, list) else [v])
        if values and all(_is_number(v) for v in values) and any(float(v) != int(v) for v in values):
            spaces[col] = []
            continue
        spaces[col] = sort_names({str(v) for v in values})
    return spaces


def label_spaces_for(
    manifest: Manifest, label_columns: Sequence[str], data_cfg: DataConfig | None = None
) -> dict[str, list[str]]:
    """A run's label spaces: a ``labels.json`` beside the manifest decides a column's classes
    (so a class absent from these rows keeps its place, and a label outside it is invalid);
    other columns get theirs from the rows (``build_label_spaces``)."""
    cfg = data_cfg or DataConfig()
    spaces = build_label_spaces(manifest.rows, label_columns, cfg.columns)
    declared = find_label_sets(manifest) or {}
    for col in label_columns:
        names = declared.get(col)
        if names and spaces.get(col) != []:  # a regression column has no classes to declare
            spaces[col] = sort_names(names)
    return spaces


class Views(tuple[Any, ...]):
    """Several augmented views of one item (``data.image.views``); collate stacks them view-major."""


class MultimodalDataset(Dataset[dict[str, Any]]):
    """Rows -> raw samples ``{"id", "<modality>": raw, "<label col>": encoded, "_row": row}``.

    Paths are re-checked against ``root`` here too, so rows that skipped validation still
    cannot read outside it. ``augment`` (default ``data_cfg.image.augment``) applies
    RandomResizedCrop + horizontal flip (torchvision v2) to images; pass ``augment=False``
    for evaluation datasets. ``features`` (modality -> row id -> tensor) replaces reading
    that modality's file with a stored tensor (a frozen tower's precomputed output).
    ``quarantine`` takes the rows that fail to load under ``data.on_error: skip`` (see the
    module docstring) and gives the manifest lines the error messages name.
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
        quarantine: Quarantine | None = None,
    ) -> None:
        self.rows = list(rows)
        self.quarantine = quarantine
        self.features = dict(features or {})
        self.root = Path(root).resolve()
        self.modalities = [m for m in modalities if m in MODALITIES]
        self.label_spaces = dict(label_spaces)
        self.cfg = data_cfg or DataConfig()
        self.augment = self.cfg.image.augment if augment is None else augment
        # audio: data.audio.augment on a training dataset (evaluation ones pass augment=False)
        self.augment_audio = self.cfg.audio.augment and augment is not False
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

    def _failed(self, row: dict[str, Any], rid: str, field: str, reason: str) -> dict[str, Any]:
        """A sample that could not be loaded: quarantined under ``skip``, an error under ``fail``."""
        line = self.quarantine.line(rid) if self.quarantine is not None else None
        where = f"row {line} (id {rid})" if line is not None else f"row {rid}"
        if self.cfg.on_error != "skip":
            raise DataError(f"{where}: {field}: {reason} (data.on_error=fail; set data.on_error=skip "
                            "to quarantine the row and go on)")
        if self.quarantine is not None:
            self.quarantine.add(rid, field, reason, row)
        return {"id": rid, FAILED: f"{field}: {reason}", "_row": row}

    def _load(self, m: str, value: Any, options: Any) -> Any:
        """Decode one cell; any failure here is the sample's (augmentation runs after, outside)."""
        from polymodal.data.decode import decode_value

        if m == "text":
            return decode_value(m, value, options, where="text")
        try:
            path = resolve_inside(self.root, value)
        except DataError as exc:
            raise DataError(f"{value!r}: {exc}") from None
        try:
            return decode_value(m, path, options)
        except DataError as exc:  # name the file as the manifest does, not by its absolute path
            raise DataError(f"{value}{str(exc).removeprefix(str(path))}") from None

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

    def _augment(self, image: Any, index: int, view: int = 0) -> Any:
        from torchvision.transforms import v2

        ic = self.cfg.image
        size = ic.size or min(image.size)
        steps: list[Any] = [v2.RandomResizedCrop(size, scale=ic.random_resized_crop_scale)]
        if ic.hflip:
            steps.append(v2.RandomHorizontalFlip())
        if ic.color_jitter > 0:  # SimCLR's colour distortion at strength s: jitter 0.8s/0.8s/0.8s/0.2s, p 0.8
            j = ic.color_jitter
            steps += [v2.RandomApply([v2.ColorJitter(0.8 * j, 0.8 * j, 0.8 * j, 0.2 * j)], p=0.8),
                      v2.RandomGrayscale(p=0.2)]
        if ic.blur:  # SimCLR's blur: kernel ~10% of the side, sigma 0.1-2.0, half the time
            k = max(3, (size // 10) | 1)
            steps.append(v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=0.5))
        # a private RNG stream per (seed, epoch, sample[, view]): reproducible, and the caller's
        # global RNG (model init, dropout) is left exactly where it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, self.epoch, index, *([view] if view else [])))
            return v2.Compose(steps)(image)

    def __getitem__(self, index: int) -> dict[str, Any]:
        from polymodal.data.decode import DecodeOptions

        # the decode path inference shares (polymodal.runtime.decode), with this run's rules
        options = DecodeOptions.from_config(self.cfg)
        row = self.rows[index]
        rid = str(row.get("id", index))
        sample: dict[str, Any] = {"id": rid, "_row": row}
        for m in self.modalities:
            column = self.cfg.columns.get(m, m)  # data.columns: a modality may come from another column
            value = row.get(column)
            if m in self.features:
                if rid in self.features[m]:
                    sample[m] = self.features[m][rid]
                    continue
                if value is None:
                    raise DataError(f"row {rid}: no precomputed {m} features")
                # its file failed when the cache was filled: decode it again for the reason
                try:
                    self._load(m, value, options)
                    reason = "no precomputed features"
                except Exception as exc:  # noqa: BLE001 -- any failure is the reason we record
                    reason = str(exc)
                return self._failed(row, rid, column, reason)
            if value is None:
                raise DataError(f"row {rid}: no {m} (column {column!r})")
            try:
                sample[m] = self._load(m, value, options)
            except DataError as exc:
                return self._failed(row, rid, column, str(exc).removeprefix("text: "))
            except Exception as exc:  # a decoder's own bug marks the sample as validation does
                return self._failed(row, rid, column, f"{value}: cannot decode ({type(exc).__name__}: {exc})")
            if m == "image" and self.cfg.image.views > 1:
                # views are augmentations by definition, on every split (val ones from a fixed seed)
                sample[m] = Views(self._augment(sample[m], index, v) for v in range(self.cfg.image.views))
            elif m == "image" and self.augment:
                sample[m] = self._augment(sample[m], index)
            elif m == "audio" and self.augment_audio:
                from polymodal.data.audio_augment import augment_audio

                rng = np.random.default_rng(derive_seed(self.seed, self.epoch, index, _AUDIO_STREAM))
                sample[m] = augment_audio(sample[m], int(self.cfg.audio.sample_rate or 0), self.cfg.audio, rng)
        for col in self.label_spaces:
            sample[col] = self._encode_label(col, row.get(self.cfg.columns.get(col, col)), rid)
        return sample


def make_collate(
    processors: dict[str, Processor], label_spaces: dict[str, list[str]]
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """``collate(samples) -> Batch``: each modality through its processor, labels to tensors.

    Single-label -> ``LongTensor(B)`` (-1 where absent), multi-label -> multi-hot
    ``FloatTensor(B, C)``, regression -> ``FloatTensor(B)``. A modality without a processor
    is passed through as a list of raw values. Samples that failed to load are left out.
    """

    def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        if not samples:
            raise DataError("cannot collate an empty batch")
        failed = [s for s in samples if FAILED in s]
        if failed:  # quarantined while loading: the batch shrinks (the same way on every pass)
            samples = [s for s in samples if FAILED not in s]
            if not samples:
                ids = ", ".join(s["id"] for s in failed)
                raise DataError(f"every sample of a batch failed to load ({ids}), e.g. {failed[0][FAILED]}; "
                                "a batch needs one usable sample: fix or remove these rows")
        batch: dict[str, Any] = {"id": [s["id"] for s in samples]}
        for m in MODALITIES:
            if m in samples[0]:
                raw = [s[m] for s in samples]
                if isinstance(raw[0], Views):  # view-major: rows [v*B, (v+1)*B) are view v of the batch
                    batch["views"] = len(raw[0])
                    raw = [s[m][v] for v in range(len(raw[0])) for s in samples]
                batch[m] = processors[m](raw) if m in processors else raw
                if m == "text" and isinstance(raw[0], str):  # objectives that rewrite captions read them
                    batch["text_raw"] = list(raw)
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
