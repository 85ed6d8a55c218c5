"""The API server hosted by another process's loop: the window's, sharing its engine, its
loaded model and its store. app.main hands `start_hosted` to the window (which never imports
app.server); app.ui.windows.serve_control calls it when the person turns serving on.
Must not: import Qt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from app.core.providers import KeyStore, ProvidersFile
from app.server.gateway import Gateway, LocalModelEntry
from app.server.guard import allowed_origins
from app.server.http import build_app
from app.server.metrics import Metrics
from app.server.running import RunningServer
from app.server.saving import ApiSaver
from app.server.token import ServeToken, server_token
from engine.client import AsyncEngine
from store import Store

__all__ = ["HostedServer", "start_hosted"]


class HostedServer:
    """`url` is where clients go; `token` what they send, kept where `token_kept` says (for the person)."""

    def __init__(self, server: RunningServer, gateway: Gateway, token: ServeToken) -> None:
        self._server, self._gateway = server, gateway
        self.url = server.url
        self.token, self.token_kept = token.value, token.kept

    async def stop(self) -> None:
        """Stop listening, then let the last answers' saves land."""
        await self._server.stop()
        await self._gateway.drain()


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
    app = build_app(gateway, token=token.value, host=host, origins=origins, saver=ApiSaver(data_dir, store))
    server = RunningServer(app, host, port)
    await server.start()
    return HostedServer(server, gateway, token)
