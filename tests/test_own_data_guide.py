"""docs/your-own-data.md, run as written: each guide block's commands go through the real CLI
on tiny data the project did not make for itself (a class-folder tree, a CSV with its own column
names, image-caption pairs), with only a step cap and small evaluation batches added to ``train``."""

from __future__ import annotations

import csv
import re
import shlex
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "your-own-data.md"
# added to every `polymodal train` line: a CI-sized run of the guide's own command
TRAIN_EXTRA = ["--set", "train.max_steps=2", "--set", "data.eval_batch_size=16", "--set", "train.progress=false"]
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}


def guide_blocks() -> dict[str, list[str]]:
    """``<!-- guide:NAME -->`` -> the command lines of the bash block after it."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- guide:(\w+) -->\s*```bash\n(.*?)```", text, flags=re.S)
    return {name: [line for line in body.splitlines() if line.strip()] for name, body in blocks}


def _shape(path: Path, colour: str, shape: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (40, 40), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    x, y = (int(v) for v in rng.integers(3, 12, size=2))
    r = int(rng.integers(18, 26))
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse([x, y, x + r, y + r], fill=fill)
    elif shape == "square":
        draw.rectangle([x, y, x + r, y + r], fill=fill)
    else:
        draw.polygon([(x, y + r), (x + r, y + r), (x + r // 2, y)], fill=fill)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def make_images(where: Path) -> None:
    for k in range(12):
        for colour in COLOURS:
            _shape(where / "my_photos" / colour / f"img{k:03d}.jpg", colour, "circle", k)
    for k, colour in enumerate(COLOURS):
        _shape(where / "new_photos" / f"new{k}.png", colour, "square", 100 + k)


def make_text(where: Path) -> None:
    phrases = {
        "sport": ["the team won the match", "a late goal decided the final", "the runner broke the record"],
        "cooking": ["simmer the sauce slowly", "bake the bread until golden", "chop the onions and garlic"],
        "weather": ["heavy rain is expected tonight", "a cold front brings snow", "sunny skies and light wind"],
    }
    endings = ["", " today", " again", " as usual"]
    with (where / "topics.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["body", "topic"])
        for topic, texts in phrases.items():
            out.writerows([text + end, topic] for text in texts for end in endings)
    (where / "new_texts.csv").write_text("body\nsnow is falling tonight\nroast the chicken\n", encoding="utf-8")


def make_pairs(where: Path) -> None:
    rows = []
    for colour in COLOURS:
        for shape in ("circle", "square", "triangle"):
            for k in range(4):
                name = f"pics/{colour}_{shape}_{k}.jpg"
                _shape(where / "pairs" / name, colour, shape, k)
                rows.append([name, f"a {colour} {shape} on white"])
    with (where / "pairs" / "captions.csv").open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["filepath", "caption"])
        out.writerows(rows)


MAKERS = {"images": make_images, "text": make_text, "pairs": make_pairs}


@dataclass
class Ran:
    line: str
    stdout: str


def run_block(name: str, where: Path, monkeypatch: pytest.MonkeyPatch) -> list[Ran]:
    """Each line through the real ``polymodal`` command (click's runner, in this process: a
    subprocess per line paid ~5 s of imports fourteen times), from ``where`` as the user's cwd."""
    from typer.testing import CliRunner

    from polymodal.cli.main import app

    monkeypatch.chdir(where)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("POLYMODAL_CACHE", str(where / ".cache"))
    done = []
    for line in guide_blocks()[name]:
        args = shlex.split(line)
        assert args[0] == "polymodal", line
        args = [str(ROOT / a) if a.startswith("examples/") else a for a in args[1:]]
        if args[0] == "train":
            args += TRAIN_EXTRA
        result = CliRunner().invoke(app, args, prog_name="polymodal")
        detail = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else ""
        assert result.exit_code == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}\n{detail[-3000:]}"
        assert "Traceback" not in result.stderr, line
        done.append(Ran(line, result.stdout))
    return done


def test_the_guide_has_its_three_paths_and_names_this_test() -> None:
    blocks = guide_blocks()
    assert set(blocks) == set(MAKERS)
    for lines in blocks.values():
        assert any(" train " in f" {line} " for line in lines) and any(" eval " in f" {line} " for line in lines)
    assert "tests/test_own_data_guide.py" in GUIDE.read_text(encoding="utf-8")


@pytest.mark.slow
def test_guide_class_folder_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_images(tmp_path)
    run_block("images", tmp_path, monkeypatch)
    with (tmp_path / "photo_preds.csv").open(encoding="utf-8") as f:
        preds = list(csv.DictReader(f))
    assert len(preds) == 3
    assert {p["predicted"] for p in preds} <= set(COLOURS)
    assert {f"prob_{c}" for c in COLOURS} <= set(preds[0])
    assert (tmp_path / "runs" / "photos" / "report.html").is_file()


@pytest.mark.slow
def test_guide_text_csv_with_its_own_column_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_text(tmp_path)
    procs = run_block("text", tmp_path, monkeypatch)
    assert "accuracy" in procs[2].stdout  # eval read body/topic from the run's own mapping
    with (tmp_path / "topic_preds.csv").open(encoding="utf-8") as f:
        preds = list(csv.DictReader(f))
    assert [p["body"] for p in preds] == ["snow is falling tonight", "roast the chicken"]
    assert {p["predicted"] for p in preds} <= {"sport", "cooking", "weather"}


@pytest.mark.slow
def test_guide_image_caption_pairs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_pairs(tmp_path)
    procs = run_block("pairs", tmp_path, monkeypatch)
    assert "image_to_text/R@1" in procs[1].stdout and "image_to_text/R@1" in procs[3].stdout
    vectors = np.load(tmp_path / "pics.npy")
    assert vectors.shape[0] == 36
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
