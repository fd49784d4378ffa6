"""The bilingual leaderboard: one aligned model queried with English and with Chinese prompts.

    python benchmarks/bilingual/run.py --data data/fmnist/manifest.jsonl --out bilingual [--model lite-clip]
        [--model chinese-clip-vit-b16 --model clip-vit-b32] [--screenshot docs/images/bilingual-leaderboard.png]

Each model is scored by zero-shot classification and by few-shot with the prompts as a prior, once
with English prompts and once with the project's Chinese ones (``tasks/templates.py``); each pair
(English vs Chinese of one model) gets a paired bootstrap on the same test images. A hub preset
(chinese-clip-vit-b16, clip-vit-b32) is compared only when its weights load here; otherwise the
script says it was skipped. Writes ``<out>/<model>/leaderboard.{md,csv,json,html}``, ``<out>/summary.md``
and, when asked, a screenshot of the first model's HTML page (Playwright driving Debian's chromium).
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--screenshot", type=Path, default=None)
    args = ap.parse_args()
    lines = ["| model | column | English | 中文 | diff (en - zh) | p |", "|---|---|---|---|---|---|"]
    pages = []
    for name in args.model or ["lite-clip"]:
        try:
            model, _ = load_model(name)
        except PolymodalError as exc:
            print(f"skipped {name}: {exc}")
            continue
        out = args.out / name
        board = compare([model, model], ["zeroshot-classification", "few-shot"], [args.data], out,
                        bootstrap=args.bootstrap, names=[f"{name} · English", f"{name} · 中文"],
                        model_opts=[{"lang": "en"}, {"lang": "zh"}],
                        task_opts={"few-shot": {"shots": [args.shots], "draws": args.draws,
                                                "methods": ["zeroshot-prior"]}},
                        title=f"{name}: English vs Chinese prompts")
        en, zh = board.models
        for col in board.columns:
            test = board.paired.get(col)
            p = f"{test.p_value:.3g}" if test else "-"
            diff = f"{test.diff:+.3f} [{test.low:+.3f}, {test.high:+.3f}]" if test else "-"
            lines.append(f"| {name} | {col} | {board.cells[en][col].format()} | {board.cells[zh][col].format()} | {diff} | {p} |")
        pages.append(out / "leaderboard.html")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    if args.screenshot and pages:
        screenshot(pages[0], args.screenshot)
        print(f"wrote {args.screenshot}")


if __name__ == "__main__":
    main()
