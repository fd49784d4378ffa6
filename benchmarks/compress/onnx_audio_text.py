"""ONNX export of an audio-text dual encoder: export, reload through polymodal.load, audio parity.

Run: PYTHONPATH=src python benchmarks/compress/onnx_audio_text.py [--model tiny-audio-text] [--out /tmp/onnx-audio] [--int8]
Exits 1 when the reloaded graph's audio embeddings miss min cosine 0.9999 (0.98 with --int8) against PyTorch on
waveforms of lengths the export did not see. Not a CI test: as one it took 68 s on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import torch.nn.functional as F

import polymodal
from polymodal.export.onnx import _samples, export_onnx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="tiny-audio-text")
    parser.add_argument("--out", type=Path, default=Path("/tmp/onnx-audio"))
    parser.add_argument("--int8", action="store_true")
    args = parser.parse_args()
    model = polymodal.load(args.model)
    shutil.rmtree(args.out, ignore_errors=True)
    t0 = time.perf_counter()
    result = export_onnx(model, args.out, int8=args.int8)
    print(f"{result.summary()} ({time.perf_counter() - t0:.0f} s)")
    onnx = polymodal.load(result.folder)
    waves = _samples(model.tower("audio"), 3, 5)
    cos = float(F.cosine_similarity(model.encode("audio", waves, bf16=False), onnx.encode("audio", waves)).min())
    print(f"reloaded {type(onnx).__name__}: audio min cosine to PyTorch {cos:.6f} on {len(waves)} unseen lengths")
    sys.exit(0 if cos >= (0.98 if args.int8 else 0.9999) else 1)


if __name__ == "__main__":
    main()
