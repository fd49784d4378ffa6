"""Distillation students compared: a separate student (tiny-dual) and one cut from the teacher's own layers.

Run: PYTHONPATH=src python benchmarks/compress/distill_students.py --model /tmp/qs/model --out /tmp/distill
     --data /tmp/qs/data/align.jsonl --layers text=0,2,4 --steps 200
     --eval-data /tmp/qs/data/fashion-mnist/manifest.jsonl --retrieval-data /tmp/qs/data/shapes/manifest.jsonl
Writes OUT/{tiny-dual,cut}/ (kept between runs) and OUT/tradeoff/tradeoff.{md,json,html}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from polymodal.compress.api import CompressOptions, compress
from polymodal.compress.report import to_markdown, tradeoff
from polymodal.compress.student import parse_layers


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="the teacher: a saved model folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="unlabeled image-text items to distill on")
    parser.add_argument("--student", default="tiny-dual", help="the separate student")
    parser.add_argument("--layers", default="text=0,2,4", help="the teacher's layers the cut student keeps")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-data", type=Path, default=None, help="zero-shot classification manifest")
    parser.add_argument("--retrieval-data", type=Path, default=None, help="image-text retrieval manifest")
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    students = {args.student: CompressOptions(data=args.data, steps=args.steps, student=args.student),
                "cut": CompressOptions(data=args.data, steps=args.steps, student_layers=parse_layers(args.layers))}
    variants: dict[str, str | Path] = {"teacher (fp32)": args.model}
    for name, opts in students.items():
        folder = args.out / name
        if not (folder / "config.json").is_file():
            t0 = time.perf_counter()
            result = compress(args.model, "distill", folder, opts, overwrite=True)
            print(f"{name}: {result.summary} ({time.perf_counter() - t0:.0f} s)", flush=True)
        label = f"student {args.student}" if name != "cut" else f"student cut from the teacher ({args.layers})"
        variants[f"{label}, {args.steps} steps"] = folder
    table = tradeoff(variants, args.out / "tradeoff", zeroshot=args.eval_data, retrieval=args.retrieval_data,
                     repeats=args.repeats)
    print(to_markdown(table))


if __name__ == "__main__":
    main()
