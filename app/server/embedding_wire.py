"""The OpenAI embeddings API's shapes: a `POST /v1/embeddings` body checked into an
EmbeddingRequest, and the bytes of its answer.

Owns what a client sends and gets, field by field: `model`, `input` (a string or a list of
strings; token arrays are refused: Hearth's embedding model has its own tokenizer), optional
`encoding_format` ("float", or "base64": little-endian float32, which the official `openai`
client asks for by default and decodes itself), optional `dimensions` (only the model's own:
checked once the model is loaded, app.server.embeddings) and `user` (ignored, as a label).
At most MAX_INPUTS texts a request; the body's size is bounded by app.server.http.MAX_BODY.
Must not: run the model, or import Starlette.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from app.server.wire import ApiError, parse_json_object

__all__ = ["MAX_INPUTS", "EmbeddingRequest", "embedding_response", "parse_embedding_request"]

MAX_INPUTS = 256  # texts a request: 256 passages of ~200 tokens take a core tens of seconds

Encoding = Literal["float", "base64"]
_KNOWN = {"model", "input", "encoding_format", "dimensions", "user"}


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    encoding_format: Encoding = "float"
    dimensions: int | None = None


def parse_embedding_request(raw: bytes) -> EmbeddingRequest:
    """The body, checked; ApiError(400) naming the first field that is wrong."""
    body = parse_json_object(raw)
    if unknown := sorted(set(body) - _KNOWN):
        raise _bad(
            f"`{unknown[0][:40]}` is not supported by Hearth's embeddings.", unknown[0][:40], "unsupported_parameter"
        )
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("`model` is required: the embedding model's id GET /v1/models lists.", "model")
    fmt: Encoding = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise _bad('`encoding_format` must be "float" or "base64".', "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
        raise _bad("`dimensions` must be a whole number above 0.", "dimensions")
    return EmbeddingRequest(model.strip(), _inputs(body.get("input")), fmt, dimensions)


def _bad(message: str, param: str, code: str | None = None) -> ApiError:
    return ApiError(code, message, status=400, param=param)


def _inputs(raw: object) -> tuple[str, ...]:
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise _bad("`input` must be a string or a non-empty list of strings.", "input")
    if len(texts) > MAX_INPUTS:
        raise _bad(
            f"`input` holds {len(texts)} texts; at most {MAX_INPUTS} are embedded per request: send them in parts.",
            "input",
            "too_many_inputs",
        )
    for i, text in enumerate(texts):
        where = "input" if isinstance(raw, str) else f"input[{i}]"
        if isinstance(text, int | list) and not isinstance(text, bool):
            raise _bad(
                "`input` holds token ids: Hearth's embedding model reads text only (it tokenizes it itself). "
                "Send the text as a string or a list of strings.",
                "input",
            )
        if not isinstance(text, str):
            raise _bad(f"`{where}` must be a string.", where)
        if not text.strip():
            raise _bad(f"`{where}` is empty: there is nothing to embed.", where)
    return tuple(texts)


def embedding_response(model: str, vectors: npt.NDArray[np.float32], tokens: int, encoding: Encoding) -> bytes:
    """`{"object": "list", "data": [...], "model", "usage"}`, one entry per text in order."""

    def encoded(row: npt.NDArray[np.float32]) -> Any:
        if encoding == "base64":
            return base64.b64encode(row.astype("<f4").tobytes()).decode("ascii")
        return row.tolist()

    data = [{"object": "embedding", "index": i, "embedding": encoded(v)} for i, v in enumerate(vectors)]
    body = {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return json.dumps(body, separators=(",", ":")).encode()
