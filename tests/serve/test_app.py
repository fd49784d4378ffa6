from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from polymodal.data.image import load_image


def rows(shapes_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (shapes_dir / "manifest.jsonl").read_text().splitlines()]


def test_health_ready_page_and_openapi(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    page = httpx.get(f"{server}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/embed", "/classify", "/search", "/items/{item_id}", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/search"]["post"]["requestBody"]["content"]
    docs = httpx.get(f"{server}/docs")
    assert docs.status_code == 200 and "http" not in docs.text.replace("http-equiv", "")  # nothing from a CDN


def test_embed_text_and_image_equal_the_library(server: str, tiny, shapes_dir: Path) -> None:
    got = httpx.post(f"{server}/embed", json={"text": "a red circle"}).json()
    assert got["modality"] == "text" and got["dim"] == 32
    np.testing.assert_allclose(got["embedding"], tiny.encode("text", "a red circle").numpy(), atol=1e-5)
    path = shapes_dir / rows(shapes_dir)[0]["image"]
    want = tiny.encode("image", load_image(path)).numpy()
    up = httpx.post(f"{server}/embed", files={"image": ("x.png", path.read_bytes(), "image/png")}).json()
    b64 = httpx.post(f"{server}/embed", json={"image_base64": "data:image/png;base64,"
                                              + base64.b64encode(path.read_bytes()).decode()}).json()
    for got in (up, b64):
        assert got["modality"] == "image"
        np.testing.assert_allclose(got["embedding"], want, atol=1e-5)


def test_concurrent_requests_are_batched_and_equal_unbatched_calls(server: str, tiny) -> None:
    texts = [f"a {c} shape number {i}" for i, c in enumerate(["red", "blue", "green", "tiny purple"] * 8)]
    with ThreadPoolExecutor(32) as pool:
        got = list(pool.map(lambda t: httpx.post(f"{server}/embed", json={"text": t}, timeout=30).json(), texts))
    for text, out in zip(texts, got, strict=True):
        np.testing.assert_allclose(out["embedding"], tiny.encode("text", text).numpy(), atol=1e-5)
    stats = httpx.get(f"{server}/stats").json()["batchers"]["text"]
    assert stats["batches"] < stats["items"]  # some requests shared a model call


def test_search_by_image_and_text(server: str, tiny, shapes_dir: Path, shapes_index) -> None:
    row = rows(shapes_dir)[4]
    data = (shapes_dir / row["image"]).read_bytes()
    got = httpx.post(f"{server}/search", files={"image": ("q.png", data, "image/png")}, data={"k": "3"}).json()
    assert got["query"] == "image" and len(got["results"]) == 3
    top = got["results"][0]
    assert top["id"] == row["id"] and top["score"] == pytest.approx(1.0, abs=1e-4)
    assert top["caption"] == row["text"] and top["url"] == f"/items/{row['id']}"
    text = httpx.post(f"{server}/search", json={"text": "a blue square", "k": 5}).json()
    want = shapes_index.search(tiny.encode("text", ["a blue square"], convert_to_numpy=True), 5)[0]
    assert [r["id"] for r in text["results"]] == [h.id for h in want]
    media = httpx.get(f"{server}{top['url']}")
    assert media.status_code == 200 and media.content == data and media.headers["content-type"] == "image/png"


def test_classify_ranks_labels_as_the_model_does(server: str, tiny, shapes_dir: Path) -> None:
    from polymodal.tasks.templates import GENERIC

    path = shapes_dir / rows(shapes_dir)[2]["image"]
    labels = ["circle", "square", "star", "cross"]
    got = httpx.post(f"{server}/classify", files={"image": ("q.png", path.read_bytes(), "image/png")},
                     data={"labels": "circle, square, star, cross"}).json()["labels"]
    assert sum(r["score"] for r in got) == pytest.approx(1.0, abs=1e-5)
    img = tiny.encode("image", load_image(path))
    protos = []
    for label in labels:
        z = tiny.encode("text", [t.format(label) for t in GENERIC]).mean(0)
        protos.append(z / z.norm())
    logits = (np.stack(protos) @ img.numpy()) * float(tiny.scale().detach())
    want = [labels[i] for i in np.argsort(-logits)]
    assert [r["label"] for r in got] == want
    b64 = base64.b64encode(path.read_bytes()).decode()
    again = httpx.post(f"{server}/classify", json={"image_base64": b64, "labels": labels}).json()["labels"]
    assert [r["label"] for r in again] == want


@pytest.mark.parametrize("body", [
    {"image_path": "/etc/passwd"}, {"url": "http://example.com/x.png"}, {"text": "x", "model": "/tmp/evil"},
])
def test_no_endpoint_takes_a_path_or_url(server: str, body: dict) -> None:
    for endpoint in ("/embed", "/search"):
        r = httpx.post(f"{server}{endpoint}", json=body)
        assert r.status_code == 422, (endpoint, r.text)


def test_items_only_by_id_inside_the_root(server: str) -> None:
    for bad in ("/items/nope", "/items/../../etc/passwd", "/items/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/items//etc/passwd"):
        r = httpx.get(f"{server}{bad}")
        assert r.status_code == 404, (bad, r.status_code)
        assert b"root:" not in r.content


def test_bad_requests_get_clear_4xx(server: str) -> None:
    assert httpx.post(f"{server}/embed", content=b"{", headers={"content-type": "application/json"}).status_code == 400
    assert httpx.post(f"{server}/embed", content=b"hi", headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.post(f"{server}/embed", json={"text": ""}).status_code == 422
    assert httpx.post(f"{server}/embed", json={"text": "x" * 5000}).status_code == 413
    assert httpx.post(f"{server}/search", json={"text": "x", "k": 10_000}).status_code == 422
    assert httpx.post(f"{server}/embed", json={"image_base64": "%%%"}).status_code == 400
    r = httpx.post(f"{server}/classify", files={"image": ("q.png", b"not an image", "image/png")},
                   data={"labels": "a, b"})
    assert r.status_code == 400 and "image" in r.json()["detail"]
