"""The window's "Serve on localhost" setting: `hearth serve`'s API inside the window's process,
sharing its engine and its loaded model, so a chat message and an API request queue at the
same engine, one after the other.

Owns starting and stopping the server on the window's loop (app.server.running), telling the
Settings window and the status line what it is doing (`changed`) and what clients need while it
serves (`access_changed`: the address and the token, which app.server.token keeps in the keychain
or in a private file where there is none), and remembering the choice
(so the next start serves again). API conversations that ask to be kept are saved through the
window's own store. Must not: block the loop, or touch widgets other than through `changed`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from PySide6.QtCore import QObject, QSettings, Signal

from app.core.errors import ServeError
from engine.errors import HearthError

if TYPE_CHECKING:
    from app.core.chat_service import ChatService
    from app.core.models import ModelLibrary
    from app.core.providers import KeyStore, ProvidersFile
    from store import Store

__all__ = ["PORT", "Access", "HostedServer", "ServeControl", "StartServer"]


class HostedServer(Protocol):
    """What app.server.hosted.start_hosted returns (the window never imports app.server)."""

    url: str
    token: str
    token_kept: str  # where, in a person's words: "in your keychain", "in /path/serve-token"

    async def stop(self) -> None: ...


StartServer = Callable[..., Awaitable[HostedServer]]

log = logging.getLogger(__name__)

PORT = 8765
SERVE_KEY = "serve/on"


@dataclass(frozen=True)
class Access:
    """What a client needs while the window serves, and where the token is kept."""

    address: str
    token: str = field(repr=False)
    kept: str


class ServeControl(QObject):
    changed = Signal(bool, str, bool)  # serving, what to say, whether it is a problem
    access_changed = Signal(object)  # Access while serving, else None

    def __init__(
        self,
        start: StartServer,
        service: ChatService,
        store: Store,
        data_dir: Path,
        providers: ProvidersFile,
        keys: KeyStore,
        library: ModelLibrary | None,
        prefs: QSettings | None,
        parent: QObject | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = PORT,
    ) -> None:
        """`start`: app.server.hosted.start_hosted, handed in by app.main."""
        super().__init__(parent)
        self._start_server = start
        self._service, self._store, self._data_dir = service, store, data_dir
        self._providers, self._keys, self._library, self._prefs = providers, keys, library, prefs
        self.host, self.port = host, port
        self._server: HostedServer | None = None
        self.access: Access | None = None
        self._busy: asyncio.Task[None] | None = None
        self.state: tuple[bool, str, bool] = (False, f"Off. Turn it on to let other apps use {self.address}.", False)

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def serving(self) -> bool:
        return self._server is not None

    @property
    def wanted(self) -> bool:
        """Serving was on when the window last closed."""
        return self._prefs is not None and str(self._prefs.value(SERVE_KEY, "false")).lower() == "true"

    def toggle(self, on: bool) -> None:
        """Start or stop (on the running loop); `changed` tells how it went."""
        if on == self.serving or (self._busy is not None and not self._busy.done()):
            self._say(*self.state)
            return
        self._busy = asyncio.get_running_loop().create_task(self._start() if on else self._stop())

    def _local(self) -> tuple[str, int] | None:
        """The loaded model's id (the library's, else its file's name) and context, now."""
        info = self._service.model_info
        if info is None:
            return None
        entry = self._library.by_path(info.path) if self._library is not None else None
        return (entry.id if entry is not None else Path(info.path).stem.lower()), info.n_ctx

    async def _start(self) -> None:
        options: dict[str, Any] = {
            "engine": self._service.engine,
            "local": self._local,
            "store": self._store,
            "data_dir": self._data_dir,
            "providers": self._providers,
            "keys": self._keys,
            "host": self.host,
            "port": self.port,
        }
        try:
            server = await self._start_server(**options)
        except ServeError as e:
            port = e.code != "token_file"  # the token's file says its own fix
            hint = " Close it, or run `hearth serve --port N` on another port instead." if port else ""
            self._say(False, e.message + hint, True)
            return
        except HearthError as e:
            self._say(False, e.message, True)
            return
        self._server = server
        self._remember(True)
        self.access = Access(server.url, server.token, server.token_kept)
        self.access_changed.emit(self.access)
        self._say(True, f"Serving at {server.url}. Clients send the token shown in Settings → Other apps.", False)

    async def _stop(self) -> None:
        await self.shutdown()
        self._remember(False)
        self._say(False, "Stopped serving.", False)

    async def shutdown(self) -> None:
        """Stop serving (the window closes); the choice stays as it was."""
        if self._server is not None:
            await self._server.stop()
            self._server = None
            self.access = None
            self.access_changed.emit(None)

    def _remember(self, on: bool) -> None:
        if self._prefs is not None:
            self._prefs.setValue(SERVE_KEY, "true" if on else "false")
            self._prefs.sync()

    def _say(self, serving: bool, text: str, problem: bool) -> None:
        self.state = (serving, text, problem)
        self.changed.emit(serving, text, problem)
