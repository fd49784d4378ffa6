"""Trade-off table for structured pruning: the original, pruned, and pruned + recovery fine-tune.

Run: PYTHONPATH=src python benchmarks/compress/prune_tradeoff.py --model /tmp/qs/model --out /tmp/prune-conv
     --towers image --sparsity 0.3 --recovery-data /tmp/qs/data/align.jsonl --steps 200
     --eval-data /tmp/qs/data/fashion-mnist/manifest.jsonl --retrieval-data /tmp/qs/data/shapes/manifest.jsonl
Writes OUT/{pruned,recovered}/ (kept between runs) and OUT/tradeoff/tradeoff.{md,json,html}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from polymodal.compress.api import CompressOptions, compress
from polymodal.compress.report import to_markdown, tradeoff


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, help="a saved model folder (the original)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--towers", nargs="*", default=None, help="towers to prune (default: all)")
    parser.add_argument("--sparsity", type=float, default=0.3)
    parser.add_argument("--recovery-data", type=Path, default=None, help="image-text pairs for the recovery fine-tune")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-data", type=Path, default=None, help="zero-shot classification manifest")
    parser.add_argument("--retrieval-data", type=Path, default=None, help="image-text retrieval manifest")
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    label = f"pruned {args.sparsity:.0%} ({', '.join(args.towers or ['all towers'])})"
    variants: dict[str, str | Path] = {"original (fp32)": args.model}
    runs = [("pruned", None)] + ([("recovered", args.recovery_data)] if args.recovery_data else [])
    for name, data in runs:
        folder = args.out / name
        if not (folder / "config.json").is_file():
            opts = CompressOptions(sparsity=args.sparsity, towers=args.towers, data=data, steps=args.steps if data else 0)
            t0 = time.perf_counter()
            result = compress(args.model, "prune", folder, opts, overwrite=True)
            print(f"{name}: {result.summary} ({time.perf_counter() - t0:.0f} s)", flush=True)
        variants[label if data is None else f"{label} + {args.steps} recovery steps"] = folder
    table = tradeoff(variants, args.out / "tradeoff", zeroshot=args.eval_data, retrieval=args.retrieval_data,
                     repeats=args.repeats)
    print(to_markdown(table))


if __name__ == "__main__":
    main()
