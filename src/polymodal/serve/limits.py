"""The server's limits (all on by default) and the ASGI middleware that enforces the body limit.

A body over ``max_body_bytes`` is answered 413 from its ``Content-Length`` before a byte of it
is read; a chunked body without a length is counted as it streams in and cut off at the limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server, and how the server batches and queues work."""

    max_body_bytes: int = 8 * 1024 * 1024      # request body (an upload, base64 JSON)
    max_pixels: int = 16_000_000               # decoded image size (decompression bombs)
    max_text_chars: int = 2_000                # one text query
    max_labels: int = 64                       # candidate labels of one /classify
    max_k: int = 100                           # results of one /search
    max_batch: int = 32                        # items per model call
    batch_window_ms: float = 5.0               # how long the first item of a batch waits for others
    max_queue: int = 64                        # requests waiting or running per modality; more -> 503
    # connections + requests the HTTP server holds at once; past it a new one is 503 before it is parsed,
    # so open connections (and the bodies they carry) stay bounded when clients hold many of them open
    max_connections: int = 128
    timeout_s: float = 30.0                    # per request; over it -> 504
    retry_after_s: int = 1                     # the Retry-After of a 503

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_pixels", "max_text_chars", "max_labels", "max_k", "max_batch",
                     "max_queue", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.batch_window_ms < 0 or self.timeout_s <= 0:
            raise ValueError("batch_window_ms must be >= 0 and timeout_s > 0")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over the limit of {limit} bytes")


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body over the limit of {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """413 for a request body over ``max_bytes``: by its Content-Length before reading, else while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_bytes
            except ValueError:
                too_big = True
            if too_big:
                await _send_413(send, self.max_bytes)
                return
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if started:
                raise
            await _send_413(send, self.max_bytes)


SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'"),
]


class SecurityHeadersMiddleware:
    """Headers that keep the page and the served media from being framed, sniffed or scripted from elsewhere."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra: list[Any] = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def server_config(app: Any, *, host: str, port: int, limits: Limits, drain_seconds: int = 30) -> Any:
    """The uvicorn config ``polymodal serve`` runs ``app`` under: the connection limit, a graceful drain,
    no Server header (tests start their servers with it too)."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=drain_seconds,
                          server_header=False, limit_concurrency=limits.max_connections)
