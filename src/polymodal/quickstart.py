"""``polymodal quickstart``: the main job on the embedded default (``lite-dual``), offline.

1. make the data (Fashion-MNIST, or scikit-learn digits without the Debian package; and ``shapes``),
2. measure zero-shot classification and retrieval before alignment,
3. LiT-align: image tower locked, text tower with LoRA, projections trained with InfoNCE on
   captions of 7 of the 10 classes plus ``shapes``,
4. measure again (held-out classes, all classes, shapes retrieval incl. held-out combinations),
5. fine-tune a late-fusion LoRA model on ``shapes`` (image + question -> answer),
6. write ``metrics.json``, ``report.html`` and the aligned model.

Every step calls the same public functions a user would (``make_dataset``, ``train``,
``evaluate``); this module only chooses sizes and wires outputs together.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from polymodal.errors import DataError

Log = Callable[[str], None]

FASHION_HELDOUT = ("sandal", "shirt", "trouser")
DIGITS_HELDOUT = ("seven", "eight", "nine")


@dataclass(frozen=True)
class Plan:
    """Sizes of one quickstart; ``FULL`` is ``make demo``, ``QUICK`` is CI's smoke run."""

    image_rows: int
    shapes_rows: int
    align_epochs: int
    align_batch: int
    align_lr: float
    fusion_epochs: int
    fusion_batch: int
    fusion_lr: float
    image_size: int
    bootstrap: int


FULL = Plan(
    image_rows=6000, shapes_rows=1000, align_epochs=3, align_batch=64, align_lr=2e-3,
    fusion_epochs=6, fusion_batch=32, fusion_lr=2e-3, image_size=96, bootstrap=1000,
)
QUICK = Plan(
    image_rows=800, shapes_rows=200, align_epochs=2, align_batch=64, align_lr=2e-3,
    fusion_epochs=3, fusion_batch=32, fusion_lr=2e-3, image_size=64, bootstrap=200,
)


@dataclass
class QuickstartResult:
    out_dir: Path
    dataset: str
    heldout_classes: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    serve_command: str = ""  # the line that serves the aligned model with an index of the images


# ----------------------------------------------------------------------------- data
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def make_data(data_dir: Path, plan: Plan, log: Log) -> tuple[str, Path, Path]:
    """(image dataset name, its manifest, the shapes manifest); Fashion-MNIST when installed."""
    from polymodal.data.builtin import make_dataset

    try:
        image_manifest = make_dataset("fashion-mnist", data_dir / "fashion-mnist", n=plan.image_rows)
        name = "fashion-mnist"
        log(f"data: Fashion-MNIST ({plan.image_rows} rows) from the Debian package")
    except DataError as exc:
        if "dataset-fashion-mnist" not in str(exc):
            raise
        image_manifest = make_dataset("digits", data_dir / "digits", n=min(plan.image_rows, 1797))
        name = "digits"
        log("data: Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist); using scikit-learn digits")
    shapes_manifest = make_dataset("shapes", data_dir / "shapes", n=plan.shapes_rows)
    log(f"data: shapes ({plan.shapes_rows} rows)")
    return name, image_manifest, shapes_manifest


def derived_manifests(image_manifest: Path, shapes_manifest: Path, heldout: tuple[str, ...]) -> dict[str, Path]:
    """Views of the made data, written beside (or above) the originals so paths stay inside their root.

    - ``align``: captions of the train/val rows of the seen classes plus every shapes train/val row;
    - ``heldout`` / ``seen``: image rows of the held-out / seen classes (zero-shot views);
    - ``shapes-heldout``: shapes test rows holding a held-out colour-shape combination;
    - ``shapes-vqa``: shapes rows whose text is the question (the fusion task's input).
    """
    image_rows = _read_jsonl(image_manifest)
    shapes_rows = _read_jsonl(shapes_manifest)
    classes = {r["label"] for r in image_rows}
    missing = [c for c in heldout if c not in classes]
    if missing:
        raise DataError(f"held-out classes {missing} are not labels of {image_manifest}")
    img_dir, shp_dir = image_manifest.parent, shapes_manifest.parent
    root = img_dir.parent
    if shp_dir.parent != root:
        raise DataError("the image and shapes datasets must be made under one data folder")

    def prefixed(row: dict[str, Any], folder: Path, key: str) -> dict[str, Any]:
        return {"id": f"{folder.name}:{row['id']}", "split": row["split"], "image": f"{folder.name}/{row[key]}",
                "text": row["text"]}

    align = [prefixed(r, img_dir, "image") for r in image_rows
             if r["split"] in ("train", "val") and r["label"] not in heldout]
    align += [prefixed(r, shp_dir, "image") for r in shapes_rows if r["split"] in ("train", "val")]
    vqa = [{**{k: v for k, v in r.items() if k not in ("text",)}, "text": r["question"]} for r in shapes_rows]
    return {
        "align": _write_jsonl(root / "align.jsonl", align),
        "heldout": _write_jsonl(img_dir / "heldout.jsonl", [r for r in image_rows if r["label"] in heldout]),
        "seen": _write_jsonl(img_dir / "seen.jsonl", [r for r in image_rows if r["label"] not in heldout]),
        "shapes-heldout": _write_jsonl(shp_dir / "heldout.jsonl", [r for r in shapes_rows if r.get("heldout")]),
        "shapes-vqa": _write_jsonl(shp_dir / "vqa.jsonl", vqa),
    }


# ----------------------------------------------------------------------------- configs
def _model(plan: Plan, **extra: Any) -> dict[str, Any]:
    """lite-dual with the image tower at the plan's resolution (Fashion-MNIST is 28 px: 224 is waste)."""
    image = {"modality": "image", "source": "efficientnet-lite0", "options": {"image_size": plan.image_size}}
    return {"preset": "lite-dual", "towers": [image], **extra}


def align_config(manifest: Path, plan: Plan) -> Any:
    from polymodal.config import config_from_dict

    return config_from_dict({
        "name": "quickstart-lit-alignment",
        "model": _model(plan, kind="dual"),
        "data": {"manifest": str(manifest), "batch_size": plan.align_batch, "label_columns": []},
        "objective": {"kind": "contrastive"},
        "train": {"strategy": "lora", "locked_towers": ["image"],
                  "lora": {"r": 8, "alpha": 16, "towers": ["text"]},
                  # LoRA moves MiniLM gently (its semantics carry the held-out classes); projections fast
                  "epochs": plan.align_epochs, "lr": plan.align_lr / 10, "head_lr": plan.align_lr,
                  "warmup_ratio": 0.1,
                  "schedule": "cosine", "mixed_precision": "auto", "log_every": 5,
                  "early_stopping_metric": "val/loss", "early_stopping_mode": "min"},
    }, source="quickstart alignment")


def fusion_config(manifest: Path, plan: Plan) -> Any:
    from polymodal.config import config_from_dict

    return config_from_dict({
        "name": "quickstart-late-fusion-vqa",
        "model": _model(plan, kind="fusion", inputs=["image", "text"],
                        fusion={"kind": "late", "combine": "concat", "hidden_dim": 256},
                        # a hidden layer: the answer depends on image AND question jointly
                        heads={"answer": {"kind": "classification", "hidden_dim": 256}}),
        "data": {"manifest": str(manifest), "batch_size": plan.fusion_batch, "label_columns": ["answer"]},
        "objective": {"kind": "classification"},
        "train": {"strategy": "lora", "locked_towers": ["image"], "lora": {"r": 8, "alpha": 16, "towers": ["text"]},
                  "epochs": plan.fusion_epochs, "lr": plan.fusion_lr, "warmup_ratio": 0.1, "schedule": "cosine",
                  "mixed_precision": "auto", "log_every": 5,
                  "early_stopping_metric": "val/accuracy", "early_stopping_mode": "max"},
    }, source="quickstart fusion")


def initial_model(cfg: Any) -> Any:
    """The alignment run's model exactly as training starts from it (same seed, same build)."""
    from polymodal.models import build_model
    from polymodal.train.run import seed_everything

    seed_everything(cfg.train.seed)
    model = build_model(cfg.model)
    model.eval()
    return model


# ----------------------------------------------------------------------------- evaluation
def eval_views(image_manifest: Path, shapes_manifest: Path, views: dict[str, Path], dataset: str) -> tuple[list[str], list[Any]]:
    """(tasks, data) pairs of the before/after comparison, each dataset under its own name."""
    from polymodal.tasks.data import as_eval_data

    named = [
        ("zeroshot-classification", image_manifest, dataset),
        ("zeroshot-classification", views["heldout"], f"{dataset}-heldout-classes"),
        ("retrieval", shapes_manifest, "shapes"),
        ("retrieval", views["shapes-heldout"], "shapes-heldout-combos"),
    ]
    datas = []
    for _task, path, name in named:
        data = as_eval_data(str(path))
        data.name = name
        datas.append(data)
    return [t for t, _, _ in named], datas


def run_quickstart(out_dir: str | Path, quick: bool = False, log: Log = print,
                   stage: Callable[[str], Any] | None = None) -> tuple[QuickstartResult, Any, Any]:
    """Run the whole main job into ``out_dir``; returns (result, before/after leaderboard, VQA result)."""
    import polymodal
    from polymodal.serve.commands import serve_command
    from polymodal.tasks import compare, evaluate
    from polymodal.train import train

    plan = QUICK if quick else FULL
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    current: list[tuple[str, float]] = []

    def step(name: str) -> None:
        now = time.perf_counter()
        if current:
            last, start = current.pop()
            seconds[last] = round(now - start, 1)
        if name:
            current.append((name, now))
            if stage is not None:
                stage(name)

    step("data")
    dataset, image_manifest, shapes_manifest = make_data(out / "data", plan, log)
    heldout = FASHION_HELDOUT if dataset == "fashion-mnist" else DIGITS_HELDOUT
    views = derived_manifests(image_manifest, shapes_manifest, heldout)
    tasks, datas = eval_views(image_manifest, shapes_manifest, views, dataset)
    result = QuickstartResult(out_dir=out, dataset=dataset, heldout_classes=list(heldout))
    result.serve_command = serve_command(out / "model", image_manifest, out / "index")

    step("before")
    align_cfg = align_config(views["align"], plan)
    before = initial_model(align_cfg)
    before.name = "lite-dual (before)"
    for task, data in zip(tasks, datas, strict=True):  # fills the embedding cache for the comparison
        evaluate(before, task, data, split="test", bootstrap=plan.bootstrap)

    step("align")
    align_dir = _fresh(out / "align")
    align = train(align_cfg, align_dir)
    result.metrics["align/train"] = {"steps": align.steps, "best_metric": align.best_metric,
                                     "final": align.final_metrics}

    step("after")
    aligned = polymodal.load(str(align_dir / "model"))
    aligned.name = "lite-dual (LiT-aligned)"
    board = compare([before, aligned], tasks, datas, out / "comparison", bootstrap=plan.bootstrap,
                    title="lite-dual before and after LiT alignment")
    result.metrics["comparison"] = board.to_json()
    for name, task_results in board.results.items():
        for r in task_results:
            result.metrics.setdefault("results", []).append({**r.to_json(), "model": name})

    step("fusion")
    fusion_dir = _fresh(out / "fusion")
    fusion = train(fusion_config(views["shapes-vqa"], plan), fusion_dir)
    vqa = evaluate(str(fusion_dir / "model"), "classification", str(views["shapes-vqa"]), split="test",
                   label_column="answer", bootstrap=plan.bootstrap)
    result.metrics["fusion/train"] = {"steps": fusion.steps, "best_metric": fusion.best_metric,
                                      "final": fusion.final_metrics}
    result.metrics["fusion/vqa"] = vqa.to_json()

    step("report")
    shutil.copytree(align_dir / "model", _fresh(out / "model", create=False))
    from polymodal.quickstart_report import write_quickstart_report

    step("")
    result.seconds = {**seconds, "total": round(time.perf_counter() - t_all, 1)}
    (out / "metrics.json").write_text(json.dumps(metrics_doc(result, plan, quick), indent=2), encoding="utf-8")
    write_quickstart_report(result, board, vqa, align_dir, fusion_dir)
    return result, board, vqa


def _fresh(path: Path, create: bool = True) -> Path:
    if path.exists():
        shutil.rmtree(path)
    if create:
        path.mkdir(parents=True)
    return path


def metrics_doc(result: QuickstartResult, plan: Plan, quick: bool) -> dict[str, Any]:
    return {
        "dataset": result.dataset,
        "heldout_classes": result.heldout_classes,
        "quick": quick,
        "plan": asdict(plan),
        "seconds": result.seconds,
        **result.metrics,
    }
