"""Hosting this process's engine for the other Hearth processes of this user (issue 26).

`host_engine` serves the same OpenAI-compatible API as `hearth serve` on the Unix socket that
app.core.engine_share names, backed by this process's engine and its loaded model: requests from
every front-end go to the one engine, which answers local generations one at a time in the
order they arrive. No token: the socket is 0600 in a 0700 folder, so only this user reaches it;
the Host and Origin guard stays (a browser cannot reach a Unix socket anyway). Attached
processes save their own conversations, so the host saves nothing for them.

It hosts only while it holds the lock: a second window or `hearth serve` finds a live host and
does not start (returns None). `hearth ask` wins the lock before it loads its model (so that asks
started together load it once) and hands it in; when its answer is done it `finish`es: no new
clients, the attached ones' answers run to their end, then it stops. `stop()` (at quit) removes
the socket and the description first, so a new client never connects to a host that is going away.
Must not: import Qt, or save anything.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from app.core.engine_share import (
    FrontEnd,
    HostInfo,
    HostLock,
    clear,
    endpoint,
    live_host,
    share_dir,
    withdraw,
    write_info,
)
from app.core.providers import KeyStore, ProvidersFile
from app.server.gateway import Gateway, LocalModelEntry
from app.server.http import build_app
from app.server.metrics import Metrics
from app.server.running import RunningServer
from engine.client import AsyncEngine

__all__ = ["SharedHost", "host_engine"]


class SharedHost:
    def __init__(self, server: RunningServer, gateway: Gateway, lock: HostLock, folder: str) -> None:
        self._server, self._gateway, self._lock, self._folder = server, gateway, lock, folder
        self.socket = server.uds or ""

    async def stop(self) -> None:
        from pathlib import Path

        clear(Path(self._folder))  # new clients go elsewhere from now on
        await self._server.stop()
        await self._gateway.drain()
        self._lock.release()

    async def finish(self, say: Callable[[int], None], limit_s: float = 600.0) -> None:
        """Stop hosting without cutting anyone off (`hearth ask`, its own answer done). Its
        description goes first, so a process starting now waits for the lock instead of attaching
        (it hosts next); a process attached already holds a connection open while it answers
        (app.core.engine_share.Attachment): the host serves until those close (`say(n)` once,
        when there are some: n answers running or waiting for them), at most `limit_s`, then stops."""
        from pathlib import Path

        withdraw(Path(self._folder))
        await asyncio.sleep(0.3)  # one that read the description a moment ago connects now
        deadline = time.monotonic() + limit_s
        if self._server.connections:
            say(self._gateway.running)  # 0: attached, its request not sent yet
        while (self._server.connections or self._gateway.running) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self.stop()


async def host_engine(
    *,
    engine: AsyncEngine,
    local: Callable[[], tuple[str, str, int] | None],
    providers: ProvidersFile,
    keys: KeyStore,
    front_end: FrontEnd,
    lock: HostLock | None = None,
) -> SharedHost | None:
    """Host `engine` on the shared socket; None when another process hosts already. `local`: the
    loaded model's (id, path, context) now, or None. `lock`: already won (app.core.engine_share.
    attach_or_claim); it is let go if hosting fails. ServeError when the share folder is unsafe."""
    try:
        folder = await asyncio.to_thread(share_dir)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if lock is None:
        lock = HostLock(folder)
        if not await asyncio.to_thread(lock.acquire):
            return None
    try:
        await asyncio.to_thread(live_host, folder)  # a dead host's leftovers go

        def local_entry() -> LocalModelEntry | None:
            now = local()
            return LocalModelEntry(now[0], now[2]) if now is not None else None

        gateway = Gateway(engine, local_entry, providers, keys, Metrics())
        app = build_app(gateway, token=None, host="127.0.0.1")
        server = RunningServer(app, "127.0.0.1", 0, uds=endpoint(folder))  # a named pipe on Windows
        now = local()
        # Described before the socket appears: whoever finds the socket finds who is behind it.
        write_info(
            folder,
            HostInfo(
                pid=os.getpid(),
                front_end=front_end,
                model_id=now[0] if now else "",
                model_path=now[1] if now else "",
                n_ctx=now[2] if now else 0,
                started_at=time.time(),
            ),
        )
        await server.start()
    except BaseException:
        clear(folder)
        lock.release()
        raise
    return SharedHost(server, gateway, lock, str(folder))
