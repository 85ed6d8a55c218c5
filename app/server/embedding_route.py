"""`POST /v1/embeddings`: a checked request (app.server.embedding_wire) embedded by the server's
embedding model (app.server.embeddings), counted in /metrics whatever the outcome (completed,
refused with a 4xx, failed with a 5xx, or cancelled when the client went away).
Must not: block the event loop (the model runs on its own thread), or touch the store.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable

from app.server.embedding_wire import embedding_response, parse_embedding_request
from app.server.embeddings import EmbeddingModel
from app.server.metrics import EmbeddingRecord, Metrics
from app.server.wire import ApiError

__all__ = ["answer_embeddings"]


async def answer_embeddings(
    embedding: EmbeddingModel | None, metrics: Metrics, body: Awaitable[bytes], received: float
) -> bytes:
    """The response's body for the request `body` will give; ApiError for the client otherwise."""
    record = EmbeddingRecord("cancelled")
    try:
        if embedding is None:
            raise ApiError(
                "embedding_model_unavailable",
                "This server does not embed text: `hearth serve` does.",
                status=503,
                type_="server_error",
            )
        parsed = parse_embedding_request(await body)
        record = EmbeddingRecord("cancelled", inputs=len(parsed.inputs))
        if not embedding.serves(parsed.model):
            raise ApiError(
                "model_not_found",
                f"There is no embedding model {parsed.model[:80]!r} here. Served: {embedding.name}.",
                status=404,
                param="model",
            )
        if parsed.dimensions is not None and parsed.dimensions != (dim := (await embedding.loaded()).dim):
            raise ApiError(
                None,
                f"{embedding.name} gives {dim} dimensions only (`dimensions` asked for {parsed.dimensions}).",
                status=400,
                param="dimensions",
            )
        done = await embedding.embed(list(parsed.inputs))
        record = EmbeddingRecord("completed", len(parsed.inputs), done.tokens)
        return embedding_response(embedding.name, done.vectors, done.tokens, parsed.encoding_format)
    except ApiError as e:
        record = dataclasses.replace(record, state="refused" if e.status < 500 else "failed")
        raise
    finally:
        metrics.record_embedding(
            dataclasses.replace(record, total_ms=round((time.perf_counter() - received) * 1000, 3))
        )
