"""The window's "one engine for this computer" setting (issue 26): once its model is loaded, the
window hosts its engine for this user's other Hearth processes (`hearth ask`, `hearth serve`),
so they answer from the model already in memory instead of loading a copy each. When another
window or `hearth serve` hosts that model already, the window attaches to it instead of loading
a copy (`try_attach`), and loads its own if that host goes away (`watch_attached`).

Owns starting and stopping the host (app.server.shared_host.host_engine, handed in by app.main:
the window never imports app.server), saying what it is doing (`changed`: sharing, words, problem)
for Settings → Other apps, and the choice itself (`settings.json`'s `share_engine`, which
`hearth ask` and `hearth serve` honour too; HEARTH_NO_SHARE turns it off for a run).
Must not: load models, or touch widgets.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.chat_service import ChatService
from app.core.engine_share import HostInfo, attach, host_gone, host_route, live_host
from app.core.models import ModelLibrary, display_name
from app.core.providers import KeyStore, ProvidersFile
from engine.errors import HearthError

__all__ = ["ShareControl", "ShareEngine"]

log = logging.getLogger(__name__)

ShareEngine = Callable[..., Awaitable[Any]]

_NAMES = {"window": "another Hearth window", "serve": "hearth serve", "ask": "hearth ask"}
ON = "On: hearth ask and hearth serve answer from this window's model (one copy in memory)."
OFF = "Off: hearth ask and hearth serve load a copy of the model each."


class ShareControl(QObject):
    changed = Signal(bool, str, bool)  # sharing, what to say, whether it is a problem
    notice = Signal(str)  # for the status line: attached to another process's engine, or it went away

    def __init__(
        self,
        share_engine: ShareEngine,
        service: ChatService,
        library: ModelLibrary,
        providers: ProvidersFile,
        keys: KeyStore,
        *,
        wanted: Callable[[], bool],
        remember: Callable[[bool], Awaitable[None]],
        parent: QObject | None = None,
    ) -> None:
        """`wanted`: the saved choice (reads a file: called in a thread); `remember`: save a new one
        (the model manager's settings, the one writer of settings.json in the window)."""
        super().__init__(parent)
        self._share_engine = share_engine
        self._service, self._library, self._providers, self._keys = service, library, providers, keys
        self._wanted, self._remember = wanted, remember
        self._host: Any = None
        self._attached: tuple[HostInfo, str] | None = None  # the host this window answers through, its model id
        self._busy: asyncio.Task[None] | None = None
        self._saving: asyncio.Future[None] | None = None
        self.state: tuple[bool, str, bool] = (False, OFF, False)

    @property
    def sharing(self) -> bool:
        return self._host is not None

    async def try_attach(self, model_path: Path) -> bool:
        """At start-up, before loading: when a window or `hearth serve` runs this model and
        sharing is on, answer through it (no model loaded here). `hearth ask` hosts only while it
        answers: never attached to."""
        if os.environ.get("HEARTH_NO_SHARE"):
            return False
        try:
            if not await asyncio.to_thread(self._wanted):
                return False
            entry = self._library.by_path(model_path)
            model_id = entry.id if entry is not None else model_path.stem.lower()
            attached = await asyncio.to_thread(attach, model_id)
        except Exception:  # the window loads its own, as without sharing
            log.exception("looking for a shared engine failed")
            return False
        if attached is None:
            return False
        attached.close()  # a window stays attached for hours: it holds no connection open
        info = attached.info
        if info.front_end == "ask":
            return False
        self._attached = (info, model_id)
        self._service.attach(host_route(info, model_id), display_name(str(model_path)))
        who = f"{_NAMES[info.front_end]} (pid {info.pid})"
        self._say(False, f"This window answers from the model {who} has loaded (one copy in memory).", False)
        self.notice.emit(f"Using the model {who} has loaded: no second copy in memory.")
        return True

    async def watch_attached(self, reload: Callable[[], Awaitable[None]]) -> None:
        """While attached: when that host goes away, say so and `reload` (load this window's own
        model, and host it)."""
        if self._attached is None:
            return
        info, model_id = self._attached
        reason = await host_gone(info, model_id)
        if self._service.attached is None:  # a model of its own was loaded meanwhile
            return
        self._attached = None
        self._service.attach(None)
        self.notice.emit(f"{reason[0].upper()}{reason[1:]}: loading the model in this window.")
        await reload()

    async def start_when_loaded(self, loading: asyncio.Future[None]) -> None:
        """At start-up: once the model is loaded, host, if the person wants it."""
        if os.environ.get("HEARTH_NO_SHARE"):
            self._say(False, "Off for this run (HEARTH_NO_SHARE is set).", False)
            return
        try:
            wanted = await asyncio.to_thread(self._wanted)
        except Exception:  # an unreadable settings file: the default holds
            log.exception("reading whether to share the engine failed")
            wanted = True
        if not wanted:
            self._say(False, OFF, False)
            return
        await asyncio.shield(loading)
        await self._start()

    def toggle(self, on: bool) -> None:
        """The person's choice: saved, and applied at once (on the running loop)."""
        self._saving = asyncio.ensure_future(self._remember(on))
        if on == self.sharing or (self._busy is not None and not self._busy.done()):
            self._say(*self.state)
            return
        self._busy = asyncio.get_running_loop().create_task(self._start() if on else self.shutdown(said=OFF))

    def _local(self) -> tuple[str, str, int] | None:
        info = self._service.model_info
        if info is None:
            return None
        entry = self._library.by_path(info.path)
        return (entry.id if entry is not None else Path(info.path).stem.lower(), info.path, info.n_ctx)

    async def _start(self) -> None:
        try:
            host = await self._share_engine(
                engine=self._service.engine,
                local=self._local,
                providers=self._providers,
                keys=self._keys,
                front_end="window",
            )
        except HearthError as e:  # an unsafe share folder: its message says what to do
            self._say(False, e.message, True)
            return
        except Exception as e:  # the window works without it
            log.exception("sharing the engine with other Hearth processes failed")
            self._say(False, f"Could not share this window's model: {e}", True)
            return
        if host is None:
            other = await asyncio.to_thread(live_host)
            who = f"{_NAMES[other.front_end]} (pid {other.pid})" if other is not None else "Another Hearth process"
            who = who[0].upper() + who[1:]
            self._say(False, f"{who} already shares its engine: this window keeps its own.", False)
            return
        self._host = host
        self._say(True, ON, False)

    async def shutdown(self, said: str | None = None) -> None:
        """Stop hosting (the window closes, or the person turned it off); attached answers end."""
        host, self._host = self._host, None
        if host is not None:
            await host.stop()
        if said is not None:
            self._say(False, said, False)

    def _say(self, sharing: bool, text: str, problem: bool) -> None:
        self.state = (sharing, text, problem)
        self.changed.emit(sharing, text, problem)
