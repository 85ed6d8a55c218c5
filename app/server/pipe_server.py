"""Serving the API on a Windows named pipe that only this user can open (issue 26: the shared
engine on Windows; app.server.running picks it when the address is a pipe's).

Owns:
- the pipe's security: a security descriptor whose owner is this user and whose DACL grants this
  user's SID alone, protected from inherited entries (`sddl_for`); remote clients are rejected
  (PIPE_REJECT_REMOTE_CLIENTS); the first instance is made with FILE_FLAG_FIRST_PIPE_INSTANCE, so
  a pipe that someone else made first under the name is a ServeError here, never shared;
- the accept loop on the proactor event loop (asyncio's on Windows, qasync's too): one instance
  always waits for the next client, each connected one goes to uvicorn's HTTP protocol as a
  duplex pipe transport. While it serves, an instance of the name always exists, so the name is
  never free for another user to take. asyncio's own `loop.start_serving_pipe` is not used: its
  PipeServer makes every instance with the default security descriptor (and in message mode);
- `PipeUvicornServer`: uvicorn's Server, its listening sockets replaced by a `Listener`.

Checked where: `sddl_for`, `http_protocol_factory` and `PipeUvicornServer` are platform-neutral
and run on Linux in tests/project/test_windows_pipe.py (the server with a Unix-socket listener).
Everything that calls Win32 (`PipeListener`, `current_user_sid`, the security descriptor) runs only
on Windows and is checked only statically (`mypy --strict --platform win32`), never run here.
Must not: import Qt, or serve anything but the app it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any, Protocol, cast

import uvicorn
from uvicorn.server import ServerState

from app.core.errors import ServeError

__all__ = ["Listener", "PipeUvicornServer", "http_protocol_factory", "open_listener", "sddl_for"]

ProtocolFactory = Callable[[], asyncio.Protocol]


def sddl_for(sid: str) -> str:
    """The pipe's security descriptor in SDDL: owner `sid`, and a protected DACL (no inherited
    entries) with one entry: full access for `sid`. Everyone else, other users and services alike, is
    denied by having no entry."""
    if not sid.startswith("S-1-") or any(c not in "S0123456789-" for c in sid):
        raise ValueError(f"{sid!r} is not a SID in string form (S-1-...).")
    return f"O:{sid}D:P(A;;GA;;;{sid})"


def http_protocol_factory(
    config: uvicorn.Config, server_state: ServerState, app_state: dict[str, Any]
) -> ProtocolFactory:
    """uvicorn's HTTP protocol for one connection, as uvicorn's own startup makes it."""
    if not config.loaded:
        config.load()
    make = cast(Callable[..., asyncio.Protocol], config.http_protocol_class)
    return lambda: make(config=config, server_state=server_state, app_state=app_state)


class Listener(Protocol):
    """Where connections come from: gives each one, as a transport, to a new protocol."""

    async def start(self, loop: asyncio.AbstractEventLoop, factory: ProtocolFactory) -> None: ...

    def close(self) -> None:
        """No new connections; the ones open go on until uvicorn closes them."""
        ...


class PipeUvicornServer(uvicorn.Server):
    """uvicorn's Server on a Listener instead of sockets: its connections, keep-alive, graceful
    shutdown and `should_exit` stay uvicorn's. Signals are left to the host process (as
    app.server.running's server does)."""

    def __init__(self, config: uvicorn.Config, listener: Listener) -> None:
        super().__init__(config)
        self._listener = listener

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            raise ServeError("cannot_serve", "The server's application failed to start.")
        factory = http_protocol_factory(self.config, self.server_state, self.lifespan.state)
        self.servers = []
        await self._listener.start(asyncio.get_running_loop(), factory)
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._listener.close()
        await super().shutdown(sockets)


if sys.platform == "win32":
    import _winapi
    import ctypes
    from asyncio import windows_utils
    from ctypes import wintypes

    _TOKEN_QUERY = 0x0008
    _TOKEN_USER = 1
    _SDDL_REVISION_1 = 1
    _PIPE_BYTE_MODE = 0  # PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT: HTTP is a byte stream
    _PIPE_REJECT_REMOTE_CLIENTS = 0x00000008
    _BUFSIZE = 64 * 1024

    _advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)
    _kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    _kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    _kernel32.GetCurrentProcess.argtypes = []
    _kernel32.CloseHandle.argtypes = [wintypes.HANDLE]
    _kernel32.LocalFree.argtypes = [ctypes.c_void_p]
    _kernel32.LocalFree.restype = ctypes.c_void_p
    _advapi32.OpenProcessToken.argtypes = [wintypes.HANDLE, wintypes.DWORD, ctypes.POINTER(wintypes.HANDLE)]
    _advapi32.OpenProcessToken.restype = wintypes.BOOL
    _advapi32.GetTokenInformation.argtypes = [
        wintypes.HANDLE,
        ctypes.c_int,
        ctypes.c_void_p,
        wintypes.DWORD,
        ctypes.POINTER(wintypes.DWORD),
    ]
    _advapi32.GetTokenInformation.restype = wintypes.BOOL
    _advapi32.ConvertSidToStringSidW.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    _advapi32.ConvertSidToStringSidW.restype = wintypes.BOOL
    _advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW.argtypes = [
        wintypes.LPCWSTR,
        wintypes.DWORD,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.POINTER(wintypes.ULONG),
    ]
    _advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW.restype = wintypes.BOOL

    class _SidAndAttributes(ctypes.Structure):
        _fields_ = [("Sid", ctypes.c_void_p), ("Attributes", wintypes.DWORD)]

    class _SecurityAttributes(ctypes.Structure):
        _fields_ = [
            ("nLength", wintypes.DWORD),
            ("lpSecurityDescriptor", ctypes.c_void_p),
            ("bInheritHandle", wintypes.BOOL),
        ]

    def _check(ok: object) -> None:
        if not ok:
            raise ctypes.WinError(ctypes.get_last_error())

    def current_user_sid() -> str:
        """This process's user as a string SID (S-1-5-21-...), from its access token."""
        token = wintypes.HANDLE()
        _check(_advapi32.OpenProcessToken(_kernel32.GetCurrentProcess(), _TOKEN_QUERY, ctypes.byref(token)))
        try:
            size = wintypes.DWORD()
            _advapi32.GetTokenInformation(token, _TOKEN_USER, None, 0, ctypes.byref(size))  # asks the size
            buffer = ctypes.create_string_buffer(size.value)
            _check(_advapi32.GetTokenInformation(token, _TOKEN_USER, buffer, size, ctypes.byref(size)))
            user = _SidAndAttributes.from_buffer(buffer)
            text = ctypes.c_void_p()
            _check(_advapi32.ConvertSidToStringSidW(user.Sid, ctypes.byref(text)))
            try:
                return ctypes.wstring_at(text.value or 0)
            finally:
                _kernel32.LocalFree(text)
        finally:
            _kernel32.CloseHandle(token)

    class _PipeSecurity:
        """SECURITY_ATTRIBUTES for CreateNamedPipe, kept alive (and freed) with the listener."""

        def __init__(self, sddl: str) -> None:
            self._descriptor = ctypes.c_void_p()
            _check(
                _advapi32.ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    sddl, _SDDL_REVISION_1, ctypes.byref(self._descriptor), None
                )
            )
            self._attributes = _SecurityAttributes(ctypes.sizeof(_SecurityAttributes), self._descriptor, False)

        @property
        def address(self) -> int:
            return ctypes.addressof(self._attributes)

        def free(self) -> None:
            if self._descriptor.value:
                _kernel32.LocalFree(self._descriptor)
                self._descriptor = ctypes.c_void_p()

    class PipeListener:
        """Instances of the named pipe `name`, each connected one served by the factory's protocol.
        ServeError at once when the name is taken (another host, or a program that took it first)."""

        def __init__(self, name: str) -> None:
            self.name = name
            self._closed = False
            self._accepting: asyncio.Future[Any] | None = None
            self._security = _PipeSecurity(sddl_for(current_user_sid()))
            try:
                self._waiting: windows_utils.PipeHandle | None = self._instance(first=True)
            except OSError as e:
                self._security.free()
                raise ServeError(
                    "cannot_serve",
                    f"Cannot listen on {name}: {e.strerror or e}. Another program holds this pipe name: "
                    "quit the other Hearth, or restart Windows if none runs.",
                ) from None

        def _instance(self, *, first: bool) -> windows_utils.PipeHandle:
            mode = _winapi.PIPE_ACCESS_DUPLEX | _winapi.FILE_FLAG_OVERLAPPED
            if first:
                mode |= _winapi.FILE_FLAG_FIRST_PIPE_INSTANCE
            handle = _winapi.CreateNamedPipe(
                self.name,
                mode,
                _PIPE_BYTE_MODE | _PIPE_REJECT_REMOTE_CLIENTS,
                _winapi.PIPE_UNLIMITED_INSTANCES,
                _BUFSIZE,
                _BUFSIZE,
                0,  # WaitNamedPipe's default wait: clients pass their own timeout
                self._security.address,
            )
            return windows_utils.PipeHandle(handle)

        async def start(self, loop: asyncio.AbstractEventLoop, factory: ProtocolFactory) -> None:
            # The proactor's ConnectNamedPipe and its pipe transport: what loop.start_serving_pipe uses.
            host = cast(Any, loop)
            proactor = vars(host).get("_proactor")
            if proactor is None:
                raise ServeError(
                    "cannot_serve", "Serving a named pipe needs the proactor event loop (asyncio's default on Windows)."
                )

            def accept(done: asyncio.Future[Any] | None = None) -> None:
                pipe: windows_utils.PipeHandle | None = None
                try:
                    if done is not None:
                        pipe = cast(windows_utils.PipeHandle, done.result())
                        self._waiting = None
                        if self._closed:
                            pipe.close()
                            return
                        host._make_duplex_pipe_transport(pipe, factory(), extra={"addr": self.name})
                        pipe = None
                    if self._closed:
                        return
                    if self._waiting is None:
                        self._waiting = self._instance(first=False)
                    pipe = self._waiting
                    future = cast(asyncio.Future[Any], proactor.accept_pipe(pipe))
                except (asyncio.CancelledError, OSError) as e:
                    # Closed (cancelled), or a client that left before it was served: that instance
                    # goes. A new one is made first, so the name is never free for someone else.
                    failed = [h for h in (pipe, self._waiting) if h is not None]
                    self._waiting = None
                    if isinstance(e, OSError) and not self._closed:
                        with contextlib.suppress(OSError):
                            self._waiting = self._instance(first=False)
                        loop.call_soon(accept)
                    for handle in failed:
                        handle.close()
                else:
                    self._accepting = future
                    future.add_done_callback(accept)

            accept()

        def close(self) -> None:
            self._closed = True
            if self._accepting is not None:
                self._accepting.cancel()
                self._accepting = None
            if self._waiting is not None:
                self._waiting.close()
                self._waiting = None
            self._security.free()


def open_listener(name: str) -> Listener:
    """The listener on the named pipe `name` (Windows only), its first instance made now:
    ServeError when the name is taken."""
    if sys.platform == "win32":
        return PipeListener(name)
    raise ServeError("cannot_serve", f"{name} is a Windows named pipe: Hearth serves one on Windows only.")
