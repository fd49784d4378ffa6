"""The FastAPI app: ``create_app(model, index=None, limits=Limits())``.

Endpoints: ``POST /embed``, ``POST /classify``, ``POST /search``, ``GET /items/{id}``,
``GET /healthz``, ``GET /readyz``, the search page at ``/`` (``static/``), the OpenAPI schema
at ``/openapi.json`` and a reader for it at ``/docs`` (served from the package: no CDN).
"""

from __future__ import annotations

import asyncio
import mimetypes
import threading
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, TypeVar

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from polymodal.serve.batcher import QueueFull, Stopped
from polymodal.serve.inputs import (
    ClassifyRequest,
    EmbedRequest,
    Query,
    SearchRequest,
    body_schema,
    read_query,
)
from polymodal.serve.limits import BodyLimitMiddleware, Limits, SecurityHeadersMiddleware
from polymodal.serve.service import Service

T = TypeVar("T")
IMAGE_FIELD = {"type": "string", "format": "binary", "description": "an image file"}
MEDIA_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}


class Busy(Exception):
    def __init__(self, detail: str) -> None:
        self.detail = detail


def create_app(model: Any, *, index: Any = None, limits: Limits | None = None, model_name: str = "",
               warm_up: bool = True) -> FastAPI:
    limits = limits or Limits()
    service = Service(model, index=index, limits=limits, model_name=model_name)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if warm_up:
            threading.Thread(target=service.warm_up, name="polymodal-warm-up", daemon=True).start()
        else:
            service.ready.set()
        try:
            yield
        finally:  # uvicorn has drained the open requests; finish anything still queued
            await run_in_threadpool(service.stop)

    app = FastAPI(title="polymodal", summary=f"embed, classify and search with {model_name or 'a model'}",
                  lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)

    @app.exception_handler(Busy)
    async def _busy(_request: Request, exc: Busy) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=503, headers={"Retry-After": str(limits.retry_after_s)})

    async def guarded(work: Awaitable[T]) -> T:
        """Not ready / queue full -> 503 with Retry-After; over the per-request timeout -> 504."""
        if not service.ready.is_set():
            if asyncio.iscoroutine(work):
                work.close()
            raise Busy(f"warming up{': ' + service.warmup_error if service.warmup_error else ''}")
        try:
            return await asyncio.wait_for(work, timeout=limits.timeout_s)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"request took over {limits.timeout_s:g}s") from None

    async def encode(modality: str, item: Any) -> np.ndarray:
        batcher = service.batchers.get(modality)
        if batcher is None:
            raise HTTPException(400, f"this model has no {modality} tower (it takes {', '.join(service.modalities)})")
        try:
            fut = batcher.submit(item)
        except QueueFull:
            raise Busy(f"{modality} queue full ({limits.max_queue} requests waiting); retry later") from None
        except Stopped:
            raise Busy("shutting down") from None
        return await asyncio.wrap_future(fut)

    async def decode_image(data: bytes) -> Any:
        from polymodal.data.image import load_image
        from polymodal.errors import DataError

        try:
            return await run_in_threadpool(load_image, data, max_pixels=limits.max_pixels)
        except DataError as exc:
            reason = str(exc).partition(": ")[2] or str(exc)
            raise HTTPException(413 if "bomb" in reason else 400, f"image: {reason}") from None

    async def query_vector(q: Query) -> tuple[str, np.ndarray]:
        if q.image is not None:
            return "image", await encode("image", await decode_image(q.image))
        if q.text is not None:
            return "text", await encode("text", q.text)
        raise HTTPException(422, "send text or an image")

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up (it may still be warming up; see /readyz)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """200 once the model has run a warm-up request; 503 before."""
        if service.ready.is_set():
            return JSONResponse({"ready": True, "model": model_name, "index": len(index) if index is not None else None})
        return JSONResponse({"ready": False, "error": service.warmup_error}, status_code=503,
                            headers={"Retry-After": str(limits.retry_after_s)})

    @app.get("/stats", tags=["ops"])
    async def stats() -> dict[str, Any]:
        """Model calls and requests per batcher so far, and how many wait now."""
        return {"batchers": {m: {"batches": b.batches, "items": b.items, "pending": b.pending}
                             for m, b in service.batchers.items()}}

    @app.post("/embed", tags=["model"],
              openapi_extra=body_schema(EmbedRequest, {"text": {"type": "string"}, "image": IMAGE_FIELD}))
    async def embed(request: Request) -> dict[str, Any]:
        """The embedding of one text or one image (L2-normalised)."""
        async def work() -> dict[str, Any]:
            q = await read_query(request, limits, EmbedRequest)
            modality, vec = await query_vector(q)
            return {"modality": modality, "dim": int(vec.shape[0]), "embedding": vec.tolist()}

        return await guarded(work())

    @app.post("/classify", tags=["model"], openapi_extra=body_schema(ClassifyRequest, {
        "image": IMAGE_FIELD, "labels": {"type": "array", "items": {"type": "string"}}}))
    async def classify(request: Request) -> dict[str, Any]:
        """Zero-shot: an image and candidate labels -> the labels ranked, with probabilities."""
        async def work() -> dict[str, Any]:
            q = await read_query(request, limits, ClassifyRequest)
            if q.image is None:
                raise HTTPException(422, "image: required")
            labels = list(dict.fromkeys(q.labels))
            if len(labels) < 2 or len(labels) > limits.max_labels:
                raise HTTPException(422, f"labels: between 2 and {limits.max_labels} distinct labels")
            if any(len(x) > 200 for x in labels):
                raise HTTPException(413, "labels: each at most 200 characters")
            image_vec = await encode("image", await decode_image(q.image))
            vecs = await asyncio.gather(*(label_vector(x) for x in labels))
            return {"labels": service.rank_labels(image_vec, labels, list(vecs))}

        return await guarded(work())

    async def label_vector(label: str) -> np.ndarray:
        cached = service.cached_label(label)
        if cached is not None:
            return cached
        rows = await asyncio.gather(*(encode("text", p) for p in service.prompts(label)))
        mean = np.mean(np.stack(rows), axis=0)
        vec = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
        service.store_label(label, vec)
        return vec

    @app.post("/search", tags=["index"], openapi_extra=body_schema(SearchRequest, {
        "text": {"type": "string"}, "image": IMAGE_FIELD, "k": {"type": "integer"}}))
    async def search(request: Request) -> dict[str, Any]:
        """A text or image query -> the top-k items of the index, with scores (cosine similarity)."""
        if index is None:
            raise HTTPException(404, "no index loaded; start the server with --index INDEX")

        async def work() -> dict[str, Any]:
            q = await read_query(request, limits, SearchRequest)
            modality, vec = await query_vector(q)
            hits = (await run_in_threadpool(index.search, vec[None, :], q.k))[0]
            return {"query": modality, "results": [
                {"id": h.id, "score": h.score, "caption": h.caption, "label": h.label,
                 "url": f"/items/{h.id}" if h.has_media else None} for h in hits]}

        return await guarded(work())

    @app.get("/items/{item_id:path}", tags=["index"])
    async def item(item_id: str) -> Response:
        """The stored media of an indexed item (by id only; files outside the index's root are never sent)."""
        path = index.media_path(item_id) if index is not None else None
        if path is None or path.suffix.lower() not in MEDIA_TYPES:
            raise HTTPException(404, f"no media for item {item_id!r}")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})

    static = resources.files("polymodal.serve") / "static"

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return Response((static / "index.html").read_bytes(), media_type="text/html; charset=utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return Response((static / "docs.html").read_bytes(), media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app
