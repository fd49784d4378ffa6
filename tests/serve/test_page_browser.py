"""The search page in a real browser (Playwright driving Debian's /usr/bin/chromium; nothing downloaded)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("POLYMODAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# screenshots for docs/ are written only when asked: POLYMODAL_SCREENSHOTS=docs/images
SHOTS = os.environ.get("POLYMODAL_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    pg = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server + "/")
    expect(pg.locator("#status")).to_contain_text("items")
    yield pg
    assert errors == []  # no script errors, no content-security-policy violations
    pg.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect  # waits without eval (the page's CSP forbids it)

    return pw_expect(locator)


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def shown_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#results li", "els => els.map(e => e.dataset.id)")


def test_type_a_query_and_see_the_expected_items(page: Any, tiny, shapes_index) -> None:
    query = "a blue square"
    page.fill("#query", query)
    page.fill("#k", "6")
    page.click("#text-form button")
    page.wait_for_selector("#results li")
    want = shapes_index.search(tiny.encode("text", [query], convert_to_numpy=True), 6)[0]
    assert shown_ids(page) == [h.id for h in want]
    first = page.locator("#results li").first
    assert first.locator(".caption").inner_text() == want[0].caption
    assert float(first.locator(".score").inner_text()) == pytest.approx(want[0].score, abs=1e-3)
    imgs = page.locator("#results img")
    for i in range(imgs.count()):  # every thumbnail really loaded from /items/{id}
        expect(imgs.nth(i)).to_have_js_property("complete", True)
        assert imgs.nth(i).evaluate("img => img.naturalWidth") > 0
    shot(page, "serve-text-search.png")


def test_upload_an_image_and_see_its_nearest_neighbours(page: Any, shapes_dir: Path, tiny, shapes_index) -> None:
    row = json.loads((shapes_dir / "manifest.jsonl").read_text().splitlines()[7])
    image = shapes_dir / row["image"]
    page.set_input_files("#image-file", str(image))
    expect(page.locator("#results-for")).to_have_text(f"like {image.name}")
    ids = shown_ids(page)
    want = shapes_index.search(tiny.encode("image", [str(image)], convert_to_numpy=True), 12)[0]
    assert ids[0] == row["id"] and ids == [h.id for h in want]
    assert page.locator("#results li .score").first.inner_text() == "1.000"
    shot(page, "serve-image-search.png")


def test_zero_shot_box_ranks_the_labels(page: Any, server: str, shapes_dir: Path) -> None:
    image = shapes_dir / json.loads((shapes_dir / "manifest.jsonl").read_text().splitlines()[2])["image"]
    page.set_input_files("#zs-file", str(image))
    page.fill("#zs-labels", "circle, square, star")
    page.click("#zs-form button")
    page.wait_for_selector("#zs-results li")
    shown = [t.split(" ")[0] for t in page.locator("#zs-results li").all_inner_texts()]
    api = httpx.post(f"{server}/classify", files={"image": ("q.png", image.read_bytes(), "image/png")},
                     data={"labels": "circle, square, star"}).json()["labels"]
    assert shown == [r["label"] for r in api]
    shot(page, "serve-zero-shot.png")


def test_api_docs_page_lists_the_endpoints(browser: Any, server: str) -> None:
    pg = browser.new_page()
    pg.goto(server + "/docs")
    pg.wait_for_selector("#endpoints h2")
    heads = pg.locator("#endpoints h2").all_inner_texts()
    assert "POST /search" in heads and "GET /readyz" in heads
    pg.close()
