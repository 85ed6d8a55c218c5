"""HTTP over a Windows named pipe: how a Hearth process attaches to the shared engine on Windows
(app.core.engine_share names the pipe, app.server.pipe_server serves it; on Linux and macOS the
same requests go over a Unix socket: UnixTransport, httpx's own but for a failed connect, which
closes its socket at once).

Owns: telling a pipe path (`\\\\.\\pipe\\...`) from a socket path (`is_pipe_path`), the httpx
transport for either (`transport_for`), and the byte stream under httpcore for a pipe:
- connect within the connect timeout: a busy pipe (every instance taken) is waited for with
  WaitNamedPipe until the timeout, a pipe that does not exist fails at once; both come out as
  httpx's ConnectTimeout / ConnectError, as a refused or silent socket does;
- reads and writes with their timeouts (overlapped I/O, cancelled when the time is up: ReadTimeout);
- cancel from another thread: engine.remote's watcher takes `get_extra_info("socket")` and calls
  its `shutdown()`, which here cancels the pending read, as shutting a socket down does;
- "is_readable", so that httpcore drops a kept-alive connection the server has closed.
The client asks for identification-level impersonation only (SECURITY_SQOS_PRESENT): a process
that made the pipe first cannot act as this user with the client's token.

Checked where: PipeStream, PipeBackend and PipeTransport are platform-neutral and tested on Linux
over a socket pair against the real server (tests/project/test_windows_pipe.py). The Win32 part
(`Win32Pipe`, `open_pipe`) runs only on Windows: it is checked only statically here
(`mypy --strict --platform win32`), never run.
Must not: import app/ or store/, or connect to anything but the pipe it is given.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import httpcore
import httpx

__all__ = [
    "PipeBackend",
    "PipeIo",
    "PipeStream",
    "PipeTransport",
    "UnixBackend",
    "UnixTransport",
    "is_pipe_path",
    "transport_for",
]

_PIPE_PREFIX = "\\\\.\\pipe\\"


class PipeIo(Protocol):
    """A connected byte channel: what PipeStream needs from a pipe (on Windows: Win32Pipe)."""

    def recv(self, max_bytes: int, timeout: float | None) -> bytes:
        """Up to `max_bytes`; b"" once the other end has closed. TimeoutError past `timeout`."""
        ...

    def send(self, data: bytes, timeout: float | None) -> None:
        """All of `data`. TimeoutError past `timeout`, OSError when the other end is gone."""
        ...

    def readable(self) -> bool:
        """True when a recv would not wait: bytes are there, or the other end has closed."""
        ...

    def abort(self) -> None:
        """From another thread: a recv or send that waits now, or starts later, fails (OSError)."""
        ...

    def close(self) -> None: ...


Opener = Callable[[str, float | None], PipeIo]
"""Opens the pipe at a path within a timeout: TimeoutError when it stays busy, OSError otherwise."""


def is_pipe_path(path: str) -> bool:
    """A Windows named pipe's path (`\\\\.\\pipe\\name`, either slash), not a Unix socket's."""
    return path.replace("/", "\\").lower().startswith(_PIPE_PREFIX)


class _Shutter:
    """What `get_extra_info("socket")` gives for a pipe: engine.remote's watcher shuts a stalled
    socket down to wake a blocked read; here that cancels the pipe's pending I/O instead."""

    def __init__(self, io: PipeIo) -> None:
        self._io = io

    def shutdown(self, how: int = 2) -> None:
        self._io.abort()


class PipeStream(httpcore.NetworkStream):
    """httpcore's stream over a pipe: timeouts and errors mapped as its socket stream maps them."""

    def __init__(self, io: PipeIo) -> None:
        self._io = io
        self._closed = False

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self._io.recv(max_bytes, timeout)
        except TimeoutError as e:
            raise httpcore.ReadTimeout(str(e) or "timed out reading the pipe") from e
        except OSError as e:
            raise httpcore.ReadError(str(e)) from e

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._io.send(buffer, timeout)
        except TimeoutError as e:
            raise httpcore.WriteTimeout(str(e) or "timed out writing to the pipe") from e
        except OSError as e:
            raise httpcore.WriteError(str(e)) from e

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._io.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("TLS is not spoken over a local pipe: use an http:// URL.")

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return _Shutter(self._io)
        if info == "is_readable":
            return self._io.readable()
        return None


class PipeBackend(httpcore.NetworkBackend):
    """Connects httpcore's "Unix socket" path to a pipe, through `opener` (on Windows: open_pipe)."""

    def __init__(self, opener: Opener) -> None:
        self._open = opener

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        try:
            return PipeStream(self._open(path, timeout))
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(str(e) or f"{path} stayed busy") from e
        except OSError as e:
            raise httpcore.ConnectError(str(e)) from e

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("A pipe transport reaches its pipe only, never host:port.")


def _pool(path: str, backend: httpcore.NetworkBackend) -> httpcore.ConnectionPool:
    """The connection pool httpx.HTTPTransport makes for `path`, on `backend` (httpx takes no
    backend of its own): its default limits, which a pool made without them would not get."""
    return httpcore.ConnectionPool(
        uds=path, network_backend=backend, max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0
    )


class PipeTransport(httpx.HTTPTransport):
    """httpx's transport, its connection pool on a pipe: httpx keeps mapping httpcore's errors
    (ConnectError, ReadTimeout, ...) to its own, so callers handle a pipe as they handle a socket."""

    def __init__(self, path: str, *, opener: Opener | None = None) -> None:
        super().__init__(uds=path)
        if opener is None:
            if sys.platform == "win32":
                opener = open_pipe
            else:
                raise ValueError(f"{path} is a Windows named pipe: it can be opened on Windows only.")
        self._pool = _pool(path, PipeBackend(opener))


class UnixBackend(httpcore.SyncBackend):
    """httpcore's own backend, except that a connect that fails closes its socket.

    httpcore 1.0 leaves that socket to the garbage collector (it is held by the ConnectError's
    traceback, in a reference cycle): a process that keeps asking a dead host's socket (a window
    watching the host it is attached to) holds one more open file per try until a collection,
    which then warns of each. TCP connects are not affected (socket.create_connection closes)."""

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        if sys.platform == "win32":  # never reached: transport_for gives Windows a PipeTransport
            raise httpcore.ConnectError("Windows has no Unix sockets here: Hearth attaches over a named pipe.")
        import socket

        # Private, but a plain wrapper of a connected socket since httpcore 0.14; the tests that
        # attach over a socket fail at once if it moves.
        from httpcore._backends.sync import SyncStream

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(path)
        except TimeoutError as e:
            sock.close()
            raise httpcore.ConnectTimeout(str(e) or f"{path} did not answer in time") from None
        except OSError as e:
            sock.close()
            raise httpcore.ConnectError(str(e)) from None
        return SyncStream(sock)


class UnixTransport(httpx.HTTPTransport):
    """httpx's transport to a Unix socket, through UnixBackend (httpx's defaults otherwise)."""

    def __init__(self, path: str) -> None:
        super().__init__(uds=path)
        self._pool = _pool(path, UnixBackend())


def transport_for(path: str) -> httpx.HTTPTransport:
    """The transport to a local server at `path`: a named pipe on Windows, a Unix socket elsewhere."""
    return PipeTransport(path) if is_pipe_path(path) else UnixTransport(path)


if sys.platform == "win32":
    import _winapi

    _ERROR_FILE_NOT_FOUND = 2
    # CreateFile's flags for a pipe client: the server may identify this client, never act as it.
    _SECURITY_SQOS_PRESENT = 0x00100000
    _SECURITY_IDENTIFICATION = 0x00010000

    class Win32Pipe:
        """A connected client end of a named pipe, opened for overlapped I/O: each read or write
        is started, then waited for with its timeout, and cancelled (CancelIoEx) when the time is
        up or `abort()` is called from another thread."""

        def __init__(self, handle: int) -> None:
            self._handle = handle
            self._lock = threading.Lock()
            self._pending: _winapi.Overlapped | None = None
            self._aborted = False
            self._closed = False

        def recv(self, max_bytes: int, timeout: float | None) -> bytes:
            try:
                with self._lock:
                    self._check()
                    ov, err = _winapi.ReadFile(self._handle, max_bytes, overlapped=True)
                    self._pending = ov
                self._finish(ov, err, timeout)
            except OSError as e:
                if getattr(e, "winerror", None) in (_winapi.ERROR_BROKEN_PIPE, _winapi.ERROR_NO_DATA):
                    return b""  # the server closed its end: the end of the stream, as a socket says
                raise
            return bytes(ov.getbuffer() or b"")

        def send(self, data: bytes, timeout: float | None) -> None:
            with self._lock:
                self._check()
                ov, err = _winapi.WriteFile(self._handle, data, overlapped=True)
                self._pending = ov
            written = self._finish(ov, err, timeout)
            if written != len(data):
                raise BrokenPipeError(f"The pipe took {written} of {len(data)} bytes.")

        def readable(self) -> bool:
            try:
                peeked = _winapi.PeekNamedPipe(self._handle, 0)
            except OSError:
                return True  # closed by the server: a read would return at once
            available = peeked[0]
            return not isinstance(available, int) or available > 0

        def abort(self) -> None:
            with self._lock:
                self._aborted = True
                if self._pending is not None:
                    self._pending.cancel()

        def close(self) -> None:
            with self._lock:
                if self._closed:
                    return
                self._closed = True
                if self._pending is not None:
                    self._pending.cancel()
            _winapi.CloseHandle(self._handle)

        def _check(self) -> None:
            if self._closed or self._aborted:
                raise ConnectionAbortedError("The pipe was closed or its request cancelled.")

        def _finish(self, ov: _winapi.Overlapped, err: int, timeout: float | None) -> int:
            """Waits for the started I/O; the bytes it moved. TimeoutError past `timeout`."""
            try:
                if err == _winapi.ERROR_IO_PENDING:
                    ms = _winapi.INFINITE if timeout is None else max(0, int(timeout * 1000))
                    if _winapi.WaitForSingleObject(ov.event, ms) != _winapi.WAIT_OBJECT_0:
                        ov.cancel()
                        try:
                            ov.GetOverlappedResult(True)  # the cancel has landed: the buffer is free
                        except OSError:
                            pass
                        raise TimeoutError(f"No answer on the pipe within {timeout or 0:.1f} s.")
                moved, err = ov.GetOverlappedResult(True)
            finally:
                with self._lock:
                    self._pending = None
            if err == _winapi.ERROR_OPERATION_ABORTED:
                raise ConnectionAbortedError("The request on the pipe was cancelled.")
            return moved

    def open_pipe(path: str, timeout: float | None) -> PipeIo:
        """The client end of the pipe at `path`. A busy pipe is waited for (WaitNamedPipe) until
        `timeout` (TimeoutError); a pipe nobody serves is ConnectionRefusedError, at once."""
        deadline = None if timeout is None else time.monotonic() + timeout
        flags = _winapi.FILE_FLAG_OVERLAPPED | _SECURITY_SQOS_PRESENT | _SECURITY_IDENTIFICATION
        while True:
            try:
                handle = _winapi.CreateFile(
                    path,
                    _winapi.GENERIC_READ | _winapi.GENERIC_WRITE,
                    0,
                    _winapi.NULL,
                    _winapi.OPEN_EXISTING,
                    flags,
                    _winapi.NULL,
                )
            except OSError as e:
                if e.winerror == _ERROR_FILE_NOT_FOUND:
                    raise ConnectionRefusedError(f"Nothing serves {path} (no Hearth host runs).") from None
                if e.winerror != _winapi.ERROR_PIPE_BUSY:
                    raise
            else:
                return Win32Pipe(handle)
            if deadline is None:
                wait_ms = _winapi.NMPWAIT_WAIT_FOREVER
            else:
                wait_ms = int((deadline - time.monotonic()) * 1000)
                if wait_ms <= 0:
                    raise TimeoutError(f"{path} stayed busy for {timeout or 0:.1f} s.")
            try:
                _winapi.WaitNamedPipe(path, max(1, wait_ms))  # 0 would mean the server's default wait
            except OSError as e:
                if e.winerror == _winapi.ERROR_SEM_TIMEOUT:
                    raise TimeoutError(f"{path} stayed busy for {timeout or 0:.1f} s.") from None
                if e.winerror == _ERROR_FILE_NOT_FOUND:
                    raise ConnectionRefusedError(f"Nothing serves {path} (no Hearth host runs).") from None
                raise
