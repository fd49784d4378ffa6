"""The plain way to serve a model, for comparison: FastAPI calling ``model.encode`` once per request.

No batching, no queue bound, no timeout: FastAPI runs each sync endpoint in its thread pool.
Usage: python benchmarks/serve/plain_app.py MODEL INDEX --port 8001
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

import polymodal
from polymodal.index import open_index


class Query(BaseModel):
    text: str
    k: int = 10


def make_app(model_name: str, index_path: str) -> FastAPI:
    model = polymodal.load(model_name)
    index = open_index(index_path)
    app = FastAPI()

    @app.get("/readyz")
    def readyz() -> dict[str, bool]:
        return {"ready": True}

    @app.post("/embed")
    def embed(q: Query) -> dict[str, Any]:
        return {"embedding": model.encode("text", q.text).tolist()}

    @app.post("/search")
    def search(q: Query) -> dict[str, Any]:
        vec = model.encode("text", [q.text], convert_to_numpy=True)
        return {"results": [{"id": h.id, "score": h.score} for h in index.search(vec, q.k)[0]]}

    model.encode("text", "warm-up")
    return app


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("index")
    ap.add_argument("--port", type=int, default=8001)
    args = ap.parse_args()
    uvicorn.run(make_app(args.model, args.index), host="127.0.0.1", port=args.port, log_level="warning")
