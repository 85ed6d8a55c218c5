"""The shared engine on Windows (issue 26): a named pipe only this user opens.

What runs here, on Linux: the platform-neutral parts, for real. The client's transport
(engine.pipe_transport: PipeTransport, PipeBackend, PipeStream) speaks HTTP to the real app
(app.server.http.build_app) served by uvicorn through app.server.pipe_server's PipeUvicornServer;
only the byte channel under both differs: a Unix socket here (`_SocketPipe`, `_UnixListener`)
where Windows has the pipe. Also the SDDL and pipe name, and the pipe-path detection.

What is checked only statically: everything that calls Win32 (engine.pipe_transport's
Win32Pipe and open_pipe: overlapped reads and writes, WaitNamedPipe on a busy pipe;
app.server.pipe_server's PipeListener: the DACL, FILE_FLAG_FIRST_PIPE_INSTANCE,
PIPE_REJECT_REMOTE_CLIENTS, the proactor accept loop; app.core.engine_share's Windows branches).
`mypy --strict --platform win32` type-checks them against the Windows stubs; nothing here
runs them, and nothing here says they work on Windows.
"""

from __future__ import annotations

import asyncio
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from app.core.engine_share import pipe_name
from app.server.pipe_server import PipeUvicornServer, ProtocolFactory, sddl_for
from engine.pipe_transport import PipeIo, PipeTransport, UnixTransport, is_pipe_path, transport_for

ROOT = Path(__file__).resolve().parents[2]
WINDOWS_FILES = (
    "engine/pipe_transport.py",
    "app/server/pipe_server.py",
    "app/core/engine_share.py",
    "engine/remote.py",
    "app/server/running.py",
    "app/server/shared_host.py",
)


class _SocketPipe:
    """The byte channel a Windows pipe gives PipeStream, over a Unix socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, max_bytes: int, timeout: float | None) -> bytes:
        self._sock.settimeout(timeout)
        return self._sock.recv(max_bytes)

    def send(self, data: bytes, timeout: float | None) -> None:
        self._sock.settimeout(timeout)
        self._sock.sendall(data)

    def readable(self) -> bool:
        return bool(select.select([self._sock], [], [], 0)[0])

    def abort(self) -> None:
        self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._sock.close()


def _open_socket(path: str, timeout: float | None) -> PipeIo:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return _SocketPipe(sock)


class _UnixListener:
    """The Listener PipeUvicornServer serves from, on a Unix socket (Windows: PipeListener)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._server: asyncio.Server | None = None

    async def start(self, loop: asyncio.AbstractEventLoop, factory: ProtocolFactory) -> None:
        self._server = await loop.create_unix_server(factory, path=self.path)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hp-", dir="/tmp") as d:  # a socket path has ~100 bytes
        yield Path(d)


@pytest.fixture
def served(tmp_path: Path, short_dir: Path) -> Iterator[str]:
    """The real API app (no model loaded), served by PipeUvicornServer; yields its socket's path."""
    from app.core.providers import KeyStore, ProvidersFile
    from app.server.gateway import Gateway
    from app.server.http import build_app
    from app.server.metrics import Metrics

    app = build_app(Gateway(None, None, ProvidersFile(tmp_path), KeyStore(), Metrics()), token=None, host="127.0.0.1")
    path = str(short_dir / "engine.sock")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1)
    server = PipeUvicornServer(config, _UnixListener(path))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.005)
    yield path
    server.should_exit = True
    thread.join(5)
    loop.close()
    assert not thread.is_alive(), "the server did not stop"


def test_requests_over_the_pipe_transport_reach_the_real_app(served: str) -> None:
    with httpx.Client(transport=PipeTransport(served, opener=_open_socket), timeout=5) as client:
        models = client.get("http://localhost/v1/models")
        metrics = client.get("http://localhost/metrics")  # the same kept-alive connection
        unknown = client.post(
            "http://localhost/v1/chat/completions",
            json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert models.status_code == 200 and models.json()["object"] == "list"
    assert metrics.status_code == 200 and "running" in metrics.json()
    assert 400 <= unknown.status_code < 500 and "no-such-model" in unknown.text


def test_a_pipe_nobody_serves_is_a_connect_error(short_dir: Path) -> None:
    transport = PipeTransport(str(short_dir / "none.sock"), opener=_open_socket)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.get("http://localhost/v1/models")


def test_a_silent_server_is_a_read_timeout(short_dir: Path) -> None:
    path = str(short_dir / "silent.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.bind(path)
        silent.listen(4)  # connections wait in the backlog: nobody ever answers
        with httpx.Client(transport=PipeTransport(path, opener=_open_socket)) as client:
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                client.get("http://localhost/v1/models", timeout=httpx.Timeout(5, read=0.2))
            assert time.monotonic() - started < 2


def test_shutting_the_stream_down_from_another_thread_ends_a_read_at_once(short_dir: Path) -> None:
    """What engine.remote's watcher does on Stop: shut the stream's "socket" from another thread."""
    import httpcore

    from engine.pipe_transport import PipeBackend

    path = str(short_dir / "stalled.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stalled:
        stalled.bind(path)
        stalled.listen(4)
        stream = PipeBackend(_open_socket).connect_unix_socket(path, timeout=1)
        threading.Timer(0.1, lambda: stream.get_extra_info("socket").shutdown(socket.SHUT_RDWR)).start()
        started = time.monotonic()
        data = stream.read(1024, timeout=30)
        stream.close()
    assert data == b"" and time.monotonic() - started < 2  # woken, as a stalled socket is
    assert isinstance(stream, httpcore.NetworkStream)


def test_pipe_paths_are_told_from_socket_paths() -> None:
    assert is_pipe_path("\\\\.\\pipe\\hearth-engine-1234") and is_pipe_path("//./PIPE/hearth")
    assert not is_pipe_path("/run/user/1000/hearth/engine.sock") and not is_pipe_path("C:\\pipe\\x")
    assert type(transport_for("/tmp/engine.sock")) is UnixTransport
    if sys.platform != "win32":  # a pipe path is chosen for the pipe transport, which opens only on Windows
        with pytest.raises(ValueError, match="Windows"):
            transport_for("\\\\.\\pipe\\hearth-engine-1234")


def test_a_remote_spec_on_a_pipe_path_takes_the_pipe_transport() -> None:
    from engine.commands import RemoteSpec
    from engine.remote import RemoteProvider

    spec = RemoteSpec(name="m", wire="openai", base_url="http://localhost/v1", uds="\\\\.\\pipe\\hearth-engine-x")
    if sys.platform != "win32":
        with pytest.raises(ValueError, match="Windows"):
            RemoteProvider(spec)


def test_each_user_folder_has_its_own_pipe_and_the_dacl_names_only_that_user() -> None:
    mine, theirs = pipe_name(Path("C:/Users/ann/AppData/Local/Temp/hearth")), pipe_name(Path("C:/Users/bob/x"))
    assert is_pipe_path(mine) and mine.startswith("\\\\.\\pipe\\hearth-engine-") and mine != theirs
    sid = "S-1-5-21-1004336348-1177238915-682003330-512"
    assert sddl_for(sid) == f"O:{sid}D:P(A;;GA;;;{sid})"
    with pytest.raises(ValueError, match="SID"):
        sddl_for("S-1-1-0)(A;;GA;;;WD")  # text that would add an entry for Everyone


@pytest.mark.timeout(660)  # its process may take 600 s: a clean failure, not a killed worker
@pytest.mark.slow
def test_the_windows_code_type_checks_for_win32() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--platform", "win32", "--follow-imports=silent", *WINDOWS_FILES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
