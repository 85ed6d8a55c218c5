"""Which collections a chat searches, and the retrieval hook its turns get (issue 25, item 1: "per
chat, which collections it uses").

`DocumentRetrieval` is one per window: it holds the documents' embedding model for questions, loaded
once, lazily, in a child process of its own (engine.embed_process: the window runs no llama.cpp
code), started from a worker thread (asyncio.to_thread), and reused by every chat; if it cannot load,
retrieval works on full text alone and says so. The first question's retrieval does not wait for
the load: it races full-text search within the retrieval budget (app.core.documents.retrieval), and
the model serves the next questions. `ChatDocuments` is one per conversation: the collections it
uses (read with the conversation, saved with store.documents.set_conversation_collections; a new
chat keeps its choice until its first turn creates it, as its settings do) and `augment()`, the hook
ChatService.start_turn takes, or None when the chat uses no collection (no retrieval at all then).
Built as app/cli/ask.py `_documents` builds `hearth ask --docs`.

Must not: import Qt, embed on the loop's thread, or change a chat's collections other than by
`choose` (files dropped on a chat go through DocumentsService.attach_to_chat).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from store.documents import CollectionRow, Documents

if TYPE_CHECKING:
    from app.core.documents.retrieval import Augmented, Retriever

__all__ = ["ChatDocuments", "DocumentRetrieval"]

log = logging.getLogger(__name__)

Augment = Callable[[str, int], Awaitable["Augmented"]]


class DocumentRetrieval:
    """Retrieval over the store's documents for every chat of a window."""

    def __init__(
        self, documents: Documents, *, load_embedder: Callable[[], Any], choice: Callable[[], object] = lambda: None
    ) -> None:
        """`load_embedder`: the documents' embedding model, loaded (embedders.open_embedder, in a
        child process in the window); raises HearthError when it cannot. `choice`: a stamp of the
        data folder's choice of model (embedders.choice_stamp): when it changes (`hearth docs model`
        in a terminal), the next question loads the chosen model, since the vectors are its."""
        self.documents = documents
        self._load_embedder = load_embedder
        self._choice = choice
        self._stamp = choice()
        self._closing: set[asyncio.Future[None]] = set()  # models let go after another was chosen
        self._embedder: Any = None
        self._index: Any = None  # app.core.documents.vectors.VectorIndex, kept up with the store
        self._loading: asyncio.Task[None] | None = None
        self.unavailable: str | None = None  # why there is no embedding model (full text alone)
        self._embed_lock = threading.Lock()  # one embedding at a time: chats may retrieve at once

    def warm(self) -> None:
        """Start loading the embedding model in a worker thread, once (again after another was chosen)."""
        stamp = self._choice()
        if stamp != self._stamp:
            self._stamp = stamp
            old, self._embedder, self._index, self.unavailable = self._embedder, None, None, None
            if self._loading is not None and not self._loading.done():
                self._loading.cancel()
            self._loading = None
            if old is not None:
                closing = asyncio.ensure_future(asyncio.to_thread(old.close))
                self._closing.add(closing)
                closing.add_done_callback(self._closing.discard)
        if self._loading is None and self.unavailable is None:
            self._loading = asyncio.ensure_future(self._load())

    async def _load(self) -> None:
        from app.core.documents.vectors import VectorIndex

        try:
            embedder = await asyncio.to_thread(self._load_embedder)
            index = VectorIndex(embedder.model_name, embedder.dim)
        except Exception as e:  # noqa: BLE001 - any failure means full text alone, said once
            self.unavailable = getattr(e, "message", str(e))
            log.warning("the embedding model could not be loaded: %s; documents are found by their words", e)
            return
        self._embedder, self._index = embedder, index

    async def _embed(self, text: str) -> Any:
        embedder = self._embedder

        def run() -> Any:
            with self._embed_lock:
                return embedder.embed_query(text)

        return await asyncio.to_thread(run)

    def augment(self, collection_ids: Sequence[int]) -> Augment:
        """The hook for one turn over `collection_ids`: hybrid once the model is loaded, full text before."""
        ids = list(collection_ids)
        retriever = self.retriever()

        async def augment(text: str, max_chars: int) -> Augmented:
            return await retriever.augment(text, max_chars, ids)

        return augment

    def retriever(self) -> Retriever:
        """A retriever over the store's documents (the search_documents tool's, or a turn's):
        hybrid once the embedding model is loaded, full text before."""
        from app.core.documents.retrieval import Retriever
        from app.core.documents.search import DocumentSearch

        self.warm()
        loaded = self._embedder is not None
        return Retriever(DocumentSearch(self.documents, self._index), self._embed if loaded else None)

    async def close(self) -> None:
        """At quit: let the model go (in a worker thread: llama.cpp frees its memory)."""
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        embedder, self._embedder = self._embedder, None
        if embedder is not None:
            await asyncio.to_thread(embedder.close)


class ChatDocuments:
    """The collections one conversation searches; `conversation_id` None: a new chat."""

    def __init__(self, retrieval: DocumentRetrieval) -> None:
        self.retrieval = retrieval
        self.ids: tuple[int, ...] = ()  # its named collections and its own (files dropped on it)
        self._pending = False  # a new chat's choice, saved by its first turn

    async def load(self, conversation_id: int) -> None:
        rows = await self.retrieval.documents.conversation_collections(conversation_id)
        self.ids = tuple(r.id for r in rows)
        self._pending = False
        if self.ids:
            self.retrieval.warm()  # its first question should not wait for the model

    async def choose(self, conversation_id: int | None, named_ids: Sequence[int], own: CollectionRow | None) -> None:
        """Use these named collections (and the chat's own one, if it has one). Saved at once for a
        saved chat (StoreError: nothing changes); a new chat keeps them until its first turn."""
        ids = tuple(dict.fromkeys([*named_ids, *([own.id] if own else [])]))
        if conversation_id is not None:
            await self.retrieval.documents.set_conversation_collections(conversation_id, list(named_ids))
        self.ids, self._pending = ids, conversation_id is None
        if ids:
            self.retrieval.warm()

    async def created(self, conversation_id: int) -> None:
        """The first turn created the conversation: keep the collections it was sent with."""
        if self._pending:
            await self.retrieval.documents.set_conversation_collections(conversation_id, list(self.ids))
            self._pending = False

    def augment(self) -> Augment | None:
        """ChatService.start_turn's `augment`, or None: the chat uses no collection."""
        return self.retrieval.augment(self.ids) if self.ids else None
