"""The embedding model in the server's process: loaded on first use, run on one worker thread.

`hearth serve` embeds for `POST /v1/embeddings` and for the questions of chat completions that
name collections (retrieval's query vector). engine.embedder.Embedder is not thread-safe, so
every call into it (the load included) runs on this object's single thread, one llama_decode
at a time: a request's texts are embedded batch by batch, each batch a job of its own on that
thread's queue, so a retrieval's one-line question waits for at most one batch of a large
request, never for the whole of it. The event loop only awaits: chat streams go on meanwhile.
A client that goes away stops its request between two batches.

When the model cannot be loaded (its wheel missing, a cache that cannot be written), each
request gets 503 saying why, and the next one tries again.
Must not: block the event loop, or touch the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from app.server.wire import ApiError
from engine.embedder import EmbeddedBatch
from engine.errors import HearthError

__all__ = ["Embedded", "EmbeddingModel", "LoadedEmbedder"]


class LoadedEmbedder(Protocol):
    """What the server uses of engine.embedder.Embedder."""

    dim: int
    model_name: str

    def embed_batches(self, texts: list[str]) -> Iterator[EmbeddedBatch]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Embedded:
    vectors: npt.NDArray[np.float32]  # (n, dim), each row of length 1
    tokens: int  # decoded, [CLS] and [SEP] included
    truncated: int  # texts cut to the model's context


class EmbeddingModel:
    """`load()`: makes the embedder (called once, on the worker thread; HearthError when it
    cannot). `name`: the model's id in /v1/models and in requests."""

    def __init__(self, load: Callable[[], LoadedEmbedder], name: str, *, query_prefix: str = "") -> None:
        self.name = name
        self._query_prefix = query_prefix  # the model's own, before a retrieval question (not /v1/embeddings')
        self._load = load
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="hearth-embed")
        self._embedder: LoadedEmbedder | None = None
        self._loading: asyncio.Future[LoadedEmbedder] | None = None

    def serves(self, model: str) -> bool:
        """A request's `model` names this one (also as local/<name>, the chat models' form)."""
        wanted = model.strip().lower().removeprefix("local/")
        return wanted == self.name.lower()

    async def loaded(self) -> LoadedEmbedder:
        """The embedder, loaded on the worker thread on first use; ApiError(503) when it cannot be."""
        if self._embedder is not None:
            return self._embedder
        if self._loading is None or self._loading.done():
            loop = asyncio.get_running_loop()
            self._loading = asyncio.ensure_future(asyncio.wrap_future(self._thread.submit(self._load), loop=loop))
        try:
            self._embedder = await asyncio.shield(self._loading)
        except (HearthError, OSError) as e:
            why = e.message if isinstance(e, HearthError) else str(e)
            raise ApiError(
                "embedding_model_unavailable",
                f"The embedding model {self.name} is not available: {why}",
                status=503,
                type_="server_error",
            ) from None
        return self._embedder

    async def embed(self, texts: list[str]) -> Embedded:
        """The texts' vectors, in order (ApiError 503 when the model cannot be loaded)."""
        embedder = await self.loaded()
        batches = embedder.embed_batches(texts)  # a generator: nothing runs until it is advanced
        out = np.empty((len(texts), embedder.dim), dtype=np.float32)
        tokens = truncated = 0
        loop = asyncio.get_running_loop()
        try:
            while (batch := await loop.run_in_executor(self._thread, next, batches, None)) is not None:
                out[batch.first : batch.first + len(batch.vectors)] = batch.vectors
                tokens += batch.tokens
                truncated += batch.truncated
        except HearthError as e:
            raise ApiError(
                "embed_failed", f"{self.name} could not embed the text: {e.message}", status=500, type_="server_error"
            ) from None
        finally:
            close = getattr(batches, "close", None)  # a generator's: frees its tokens at once
            if close is not None:
                with contextlib.suppress(RuntimeError):  # RuntimeError: closed at shutdown
                    self._thread.submit(close)  # on its thread, after any batch still running
        return Embedded(out, tokens, truncated)

    async def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        """One text's vector (retrieval's question)."""
        vectors = (await self.embed([self._query_prefix + text])).vectors
        return np.asarray(vectors[0], dtype=np.float32)

    def close(self) -> None:
        """Free the model (after the batch in hand) and the thread."""

        def free() -> None:
            if self._embedder is not None:
                self._embedder.close()

        self._thread.submit(free)
        self._thread.shutdown(wait=False, cancel_futures=False)
