"""Retrieval for chat completions that name collections (`"hearth": {"collections": [...]}`):
the passages of a person's documents that best match the request's last message, put after it
as `hearth ask --docs` puts them (app.core.documents.retrieval: the same budget, the same
quoting), and the sources as the response's `hearth` extension.

The store is the server's own (app.server.saving.ApiSaver opens it on first need; the window's
server uses the window's), read only here; the question is embedded by the server's embedding
model (app.server.embeddings) when it loads, else passages are found by their words and the
note says so. An unknown collection is a 400 that names it.
Must not: write to the store, or hold the stream: it runs before the request takes its turn.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.documents.retrieval import Augmented, Retriever
from app.core.documents.search import DocumentSearch
from app.core.documents.vectors import VectorIndex
from app.server.embeddings import EmbeddingModel
from app.server.wire import ApiError, ChatRequest
from engine.commands import ChatMessage
from store import Store, StoreError

__all__ = ["ServedDocuments", "sources_extension"]


class ServedDocuments:
    """`store()`: the server's store (ApiError when it cannot be opened). `embedding`: the
    server's embedding model, or None (full text alone)."""

    def __init__(self, store: Callable[[], Awaitable[Store]], embedding: EmbeddingModel | None) -> None:
        self._store = store
        self._embedding = embedding
        self._retriever: Retriever | None = None

    async def augment(self, request: ChatRequest, max_chars: int) -> tuple[ChatRequest, Augmented]:
        """The request with passages after its last message (the person's), and what was found."""
        last = request.messages[-1]
        if last.role != "user":
            raise ApiError(
                None,
                "`hearth.collections` needs the last message to be the person's: passages are found for it.",
                status=400,
                param="hearth.collections",
            )
        store = await self._store()
        ids = []
        for name in request.collections:
            try:
                ids.append((await store.documents.collection_named(name)).id)
            except StoreError as e:
                if e.code != "no_such_collection":
                    raise
                raise ApiError(
                    "collection_not_found",
                    f"There is no collection {name[:80]!r} (`hearth docs list` shows them; `hearth docs add PATH "
                    "--collection NAME` makes one).",
                    status=400,
                    param="hearth.collections",
                ) from None
        augmented = await (await self._retriever_for(store)).augment(last.content, max_chars, ids)
        messages = (*request.messages[:-1], ChatMessage("user", augmented.prompt_text))
        return dataclasses.replace(request, messages=messages), augmented

    async def _retriever_for(self, store: Store) -> Retriever:
        if self._retriever is not None:
            return self._retriever
        index, embed_query = None, None
        if self._embedding is not None:
            try:
                embedder = await self._embedding.loaded()
            except ApiError:
                pass  # the Retriever's note says passages were found by their words alone
            else:
                index = VectorIndex(embedder.model_name, embedder.dim)
                embed_query = self._embedding.embed_query
        retriever = Retriever(DocumentSearch(store.documents, index), embed_query)
        if embed_query is not None or self._embedding is None:  # else the model may load next time
            self._retriever = retriever
        return retriever


def sources_extension(augmented: Augmented) -> dict[str, Any]:
    """The response's `hearth` field: the passages the model was given, as numbered in the
    prompt ([1], [2]), where each is (file, page or heading, character offsets), and the figures."""
    sources = [
        {
            "n": n,
            "path": f.path,
            "page": f.page,
            "heading": f.heading,
            "start": f.start,
            "end": f.end,
            "score": round(f.score, 6),
        }
        for n, f in enumerate(augmented.sources, start=1)
    ]
    return {"sources": sources, "retrieval_ms": round(augmented.retrieval_ms, 3), "note": augmented.note}
