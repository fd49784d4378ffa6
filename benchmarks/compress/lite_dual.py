"""Trade-off table for lite-dual (or any dual model): fp32, int8-dynamic, ONNX fp32, ONNX int8.

Run: PYTHONPATH=src python benchmarks/compress/lite_dual.py [--model lite-dual] [--out /tmp/lite-tradeoff]
     [--eval-data MANIFEST] [--retrieval-data MANIFEST]
Writes OUT/{original,int8,onnx,onnx-int8}/ and OUT/tradeoff/tradeoff.{md,json,html}.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from polymodal.compress.api import compress
from polymodal.compress.report import to_markdown, tradeoff
from polymodal.export.onnx import export_onnx
from polymodal.models.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="lite-dual")
    parser.add_argument("--out", type=Path, default=Path("/tmp/lite-tradeoff"))
    parser.add_argument("--eval-data", type=Path, default=None, help="zero-shot classification manifest")
    parser.add_argument("--retrieval-data", type=Path, default=None, help="image-text retrieval manifest")
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    out = args.out
    original = out / "original"
    if not (original / "config.json").is_file():
        load_model(args.model).save_pretrained(original)
    variants: dict[str, str | Path] = {"original (fp32)": original}
    if not (out / "int8" / "config.json").is_file():
        compress(str(original), "int8-dynamic", out / "int8", overwrite=True)
    variants["int8-dynamic"] = out / "int8"
    for name, int8 in (("onnx", False), ("onnx-int8", True)):
        if not (out / name / "config.json").is_file():
            print(export_onnx(str(original), out / name, int8=int8, overwrite=True).summary(), flush=True)
        variants[name] = out / name
    table = tradeoff(variants, out / "tradeoff", zeroshot=args.eval_data, retrieval=args.retrieval_data,
                     repeats=args.repeats)
    print(to_markdown(table))


if __name__ == "__main__":
    main()
