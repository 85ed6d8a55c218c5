"""The API server on the running asyncio loop, started and stopped at will: `hearth serve` runs
it until Ctrl-C, the window runs it while its "Serve" setting is on (sharing its engine).

The socket is bound here, before uvicorn sees it: a port already in use is a ServeError with a
message a person can act on, where uvicorn would log and call sys.exit inside the loop (which
would take a window down with it). uvicorn's own signal handling is left out: the process that
hosts the server (the CLI, the window) owns Ctrl-C.
Must not: import Qt.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

from app.core.errors import ServeError
from engine.pipe_transport import is_pipe_path

__all__ = ["RunningServer"]


class RunningServer:
    """On host:port, or on a Unix socket at `uds` (made 0600: this user only; a file there is
    replaced, so the caller must hold the right to it: app.core.engine_share's lock), or, when
    `uds` is a Windows pipe's path, on that named pipe (app.server.pipe_server: this user only)."""

    def __init__(self, app: Any, host: str, port: int, *, uds: str | None = None) -> None:
        self.host, self.port, self.uds = host, port, uds
        self._app = app
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        if self.uds:
            return f"pipe:{self.uds}" if is_pipe_path(self.uds) else f"unix:{self.uds}"
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        import uvicorn

        class _Hosted(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:  # the host process owns its signals
                yield

        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            # A process attached to a shared engine keeps a connection open while it answers: the
            # host sees it and does not go away under it (app.server.shared_host.SharedHost.finish).
            timeout_keep_alive=3600 if self.uds else 5,
        )
        if self.uds is not None and is_pipe_path(self.uds):  # Windows: a named pipe only this user opens
            from app.server.pipe_server import PipeUvicornServer, open_listener

            self._server = PipeUvicornServer(config, open_listener(self.uds))
            self._task = asyncio.ensure_future(self._server.serve())
            sock = None
        else:
            sock = self._bind_unix() if self.uds else self._bind_tcp()
            sock.setblocking(False)
            self._server = _Hosted(config)
            self._task = asyncio.ensure_future(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                if sock is not None:
                    sock.close()
                error = self._task.exception()
                raise ServeError("cannot_serve", f"The server stopped while starting: {error}")
            await asyncio.sleep(0.01)

    def _bind_tcp(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as e:
            sock.close()
            raise ServeError(
                "cannot_serve",
                f"Cannot listen on {self.host}:{self.port}: {e.strerror or e}. Is another program (or "
                "another Hearth) using that port?",
            ) from None
        return sock

    def _bind_unix(self) -> socket.socket:
        assert self.uds is not None
        if sys.platform == "win32":  # no Unix sockets: a Windows host serves a named pipe
            raise ServeError(
                "cannot_serve", f"Cannot listen on {self.uds}: Windows serves named pipes (\\\\.\\pipe\\...)."
            )
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.uds)
            sock.bind(self.uds)
            # 0600 at once (its folder is 0700 too, so no other user reaches it even before this).
            os.chmod(self.uds, 0o600)
            sock.listen(128)
        except OSError as e:
            sock.close()
            raise ServeError("cannot_serve", f"Cannot listen on {self.uds}: {e.strerror or e}.") from None
        return sock

    @property
    def connections(self) -> int:
        """Client connections open now (idle kept-alive ones too)."""
        return len(self._server.server_state.connections) if self._server is not None else 0

    async def wait(self) -> None:
        """Until it stops (stop(), or the task ends)."""
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = self._task = None
