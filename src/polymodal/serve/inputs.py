"""Request bodies: JSON (text / base64 image) or multipart (an uploaded image file + form fields).

Only bytes and text come in: no field names a URL or a path, and unknown JSON fields are refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import UploadFile

from polymodal.serve.limits import Limits


class EmbedRequest(BaseModel):
    """Exactly one of ``text`` or ``image_base64`` (a data: URL prefix is allowed)."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    image_base64: str | None = None


class SearchRequest(EmbedRequest):
    k: int = Field(10, ge=1)


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image_base64: str
    labels: list[str]


@dataclass
class Query:
    text: str | None = None
    image: bytes | None = None
    k: int = 10
    labels: list[str] = field(default_factory=list)


def _b64(value: str) -> bytes:
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPException(400, "image_base64: not valid base64") from None


def _labels(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:  # repeated fields, or one comma-separated field
        out += [p.strip() for p in v.split(",")] if len(values) == 1 else [v.strip()]
    return [x for x in out if x]


async def read_query(request: Request, limits: Limits, model: type[BaseModel]) -> Query:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        raw = await request.body()
        try:
            parsed = model.model_validate(json.loads(raw or b"null"))
        except json.JSONDecodeError as exc:
            raise HTTPException(400, f"body is not valid JSON ({exc.msg})") from None
        except ValidationError as exc:
            raise HTTPException(422, exc.errors(include_url=False, include_context=False)) from None
        data: dict[str, Any] = parsed.model_dump()
        image = data.get("image_base64")
        q = Query(text=data.get("text"), image=_b64(image) if image else None, k=int(data.get("k", 10)),
                  labels=[x.strip() for x in data.get("labels") or [] if x.strip()])
    elif ctype == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=limits.max_labels + 8,
                                  max_part_size=limits.max_body_bytes)
        allowed = {"text", "image", "k", "labels"}
        unknown = sorted(set(form.keys()) - allowed)
        if unknown:
            raise HTTPException(422, f"unknown form fields: {', '.join(unknown)} (allowed: image file, text, k, labels)")
        upload = form.get("image")
        image = None
        if isinstance(upload, UploadFile):
            image = await upload.read()
        elif upload is not None:
            raise HTTPException(422, "image: send the image as a file part")
        text = form.get("text")
        try:
            k = int(str(form.get("k") or 10))
        except ValueError:
            raise HTTPException(422, "k: not a whole number") from None
        q = Query(text=str(text) if text is not None else None, image=image, k=k,
                  labels=_labels([str(v) for v in form.getlist("labels")]))
    else:
        raise HTTPException(415, "send application/json or multipart/form-data")
    if q.text is not None and q.image is not None:
        raise HTTPException(422, "send text or an image, not both")
    if q.text is not None:
        if not q.text.strip():
            raise HTTPException(422, "text: empty")
        if len(q.text) > limits.max_text_chars:
            raise HTTPException(413, f"text: over {limits.max_text_chars} characters")
    if q.image is not None and not q.image:
        raise HTTPException(422, "image: empty file")
    if q.k < 1 or q.k > limits.max_k:
        raise HTTPException(422, f"k: between 1 and {limits.max_k}")
    return q


def body_schema(model: type[BaseModel], form: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI requestBody for an endpoint that takes JSON or multipart."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()},
        "multipart/form-data": {"schema": {"type": "object", "properties": form}},
    }}}
