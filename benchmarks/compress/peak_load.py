"""Peak resident memory of loading one model folder, then of encoding a batch of 64 per tower.

Run: PYTHONPATH=src python benchmarks/compress/peak_load.py FOLDER new|old
`old` turns off the empty (meta-device) build that pruned folders get (`transforms.builds_empty`),
so the same folder can be measured both ways; run each in its own process (a peak only grows).
"""

from __future__ import annotations

import resource
import sys

import polymodal
import polymodal.models.hub as hub
from polymodal.compress.report import THROUGHPUT_BATCH, _items


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    folder, mode = sys.argv[1], sys.argv[2]
    if mode == "old":
        hub.builds_empty = lambda transforms: False  # type: ignore[assignment]
    model = polymodal.load(folder)
    loaded = peak_mib()
    for modality in model.modalities:
        model.encode(modality, _items(model, modality, THROUGHPUT_BATCH), batch_size=THROUGHPUT_BATCH, bf16=False)
    print(f"{mode}: load peak {loaded:.0f} MiB, with one batch of 64 per tower {peak_mib():.0f} MiB")


if __name__ == "__main__":
    main()
