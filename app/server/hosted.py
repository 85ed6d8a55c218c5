"""The API server hosted by another process's loop: the window's, sharing its engine, its
loaded model and its store. app.main hands `start_hosted` to the window (which never imports
app.server); app.ui.windows.serve_control calls it when the person turns serving on.
Must not: import Qt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from app.core.documents.embedders import chosen_embedding, open_embedder
from app.core.documents.embedding_model import EMBEDDING_MODEL_NAME
from app.core.providers import KeyStore, ProvidersFile
from app.server.embeddings import EmbeddingModel
from app.server.gateway import Gateway, LocalModelEntry
from app.server.guard import allowed_origins
from app.server.http import build_app
from app.server.metrics import Metrics
from app.server.running import RunningServer
from app.server.saving import ApiSaver
from app.server.token import ServeToken, server_token
from engine.client import AsyncEngine
from engine.errors import HearthError
from store import Store

__all__ = ["HostedServer", "start_hosted"]


class HostedServer:
    """`url` is where clients go; `token` what they send, kept where `token_kept` says (for the person)."""

    def __init__(
        self, server: RunningServer, gateway: Gateway, token: ServeToken, embedding: EmbeddingModel | None = None
    ) -> None:
        self._server, self._gateway, self._embedding = server, gateway, embedding
        self.url = server.url
        self.token, self.token_kept = token.value, token.kept

    async def stop(self) -> None:
        """Stop listening, then let the last answers' saves land."""
        await self._server.stop()
        await self._gateway.drain()
        if self._embedding is not None:
            self._embedding.close()


async def start_hosted(
    *,
    engine: AsyncEngine,
    local: Callable[[], tuple[str, int] | None],
    store: Store,
    data_dir: Path,
    providers: ProvidersFile,
    keys: KeyStore,
    host: str,
    port: int,
) -> HostedServer:
    """Serve on host:port until stopped. `local`: the loaded model's (id, context) now, or None.
    Web pages may use it only from the origins HEARTH_ALLOWED_ORIGINS names (app.server.guard).
    ServeError: the port is taken, the token's file is unsafe (app.server.token), or that variable
    holds something that is not an origin."""
    origins = allowed_origins()
    token = await asyncio.to_thread(server_token, data_dir)  # the keychain may take a moment

    def local_entry() -> LocalModelEntry | None:
        now = local()
        return LocalModelEntry(*now) if now is not None else None

    gateway = Gateway(engine, local_entry, providers, keys, Metrics())
    # The documents' embedding model, in a child process (the window runs no native code itself),
    # loaded on the first request that needs it. A broken choice leaves the chat endpoints serving.
    try:
        choice = chosen_embedding(data_dir)
    except HearthError:
        embedding = None
    else:
        embedding = EmbeddingModel(
            lambda: open_embedder(data_dir, in_child=True),
            choice.model_id or EMBEDDING_MODEL_NAME,
            query_prefix=choice.query_prefix,
        )
    app = build_app(
        gateway,
        token=token.value,
        host=host,
        origins=origins,
        saver=ApiSaver(data_dir, store),
        embedding=embedding,
    )
    server = RunningServer(app, host, port)
    try:
        await server.start()
    except BaseException:
        if embedding is not None:
            embedding.close()
        raise
    return HostedServer(server, gateway, token, embedding)
