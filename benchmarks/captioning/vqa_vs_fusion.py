"""Generative VQA (a captioner answering in words) against the classification-head fusion model,
paired on the same test rows.

``polymodal compare`` pairs models within one task; these two models answer through different
tasks (``generative-vqa`` and ``classification`` on the ``answer`` column) over the same rows, so
this script runs both and feeds their per-row accuracy statistics to the same paired bootstrap.

    python benchmarks/captioning/vqa_vs_fusion.py runs/vqa-gen runs/clip-mm data/shapes/manifest.jsonl
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from polymodal.metrics.bootstrap import paired_bootstrap
from polymodal.tasks import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("captioner", type=Path)
    ap.add_argument("fusion", type=Path)
    ap.add_argument("manifest", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    gen = evaluate(args.captioner, "generative-vqa", args.manifest, args.split, bootstrap=args.bootstrap, cache=False)
    cls = evaluate(args.fusion, "classification", args.manifest, args.split, bootstrap=args.bootstrap, cache=False,
                   label_column="answer")
    a, b = gen.statistics["accuracy"], cls.statistics["accuracy"]
    if a.ids != b.ids:
        raise SystemExit("the two tasks scored different rows (or in another order); no paired test")
    test = paired_bootstrap(a.statistic, b.statistic, len(a.ids), n_boot=args.bootstrap)
    out = {"rows": len(a.ids), "generative_vqa": asdict(gen.metrics["accuracy"]),
           "fusion_classification": asdict(cls.metrics["accuracy"]), "generative_minus_fusion": test.to_json()}
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
