"""The transport to a local host's Unix socket (engine.pipe_transport.UnixTransport): a window
attached to another process's engine asks that socket every two seconds, and a host that died
leaves a socket file nobody listens on. Each failed try must close what it opened at once:
httpcore's own transport leaves the socket open until a garbage collection (and then warns),
so a window watching a dead host held one more open file per try."""

from __future__ import annotations

import gc
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine.pipe_transport import UnixTransport, transport_for

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="Unix sockets; Windows attaches over a named pipe")


def _open_files() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ut-", dir="/tmp") as d:  # a socket's path must be short
        yield Path(d)


def _dead_socket(folder: Path) -> str:
    """What a killed host leaves: the socket file, nobody listening (connect: refused)."""
    path = str(folder / "engine.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    return path


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts open files in /proc")
@pytest.mark.parametrize("which", ["refused", "missing"])
def test_asking_a_dead_hosts_socket_again_and_again_leaves_no_file_open(short_dir: Path, which: str) -> None:
    path = _dead_socket(short_dir) if which == "refused" else str(short_dir / "gone.sock")
    gc.collect()
    gc.disable()  # what the collector would close later does not count: each try must close its own
    try:
        before = _open_files()
        for _ in range(20):
            with (
                httpx.Client(transport=transport_for(path), timeout=2.0) as client,
                pytest.raises(httpx.ConnectError) as caught,
            ):
                client.get("http://localhost/v1/models")
            expected = "refused" if which == "refused" else "No such file"
            assert expected in str(caught.value)
            del caught
        assert _open_files() == before
    finally:
        gc.enable()


def test_the_transport_still_talks_to_a_live_socket(short_dir: Path) -> None:
    """A plain HTTP answer over the socket, through UnixTransport (the attach path's requests)."""
    import threading

    path = str(short_dir / "live.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            body = b'{"data": [{"id": "local/m"}]}'
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            conn.sendall(head + body)

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    try:
        with httpx.Client(transport=UnixTransport(path), timeout=5.0) as client:
            assert client.get("http://localhost/v1/models").json()["data"][0]["id"] == "local/m"
    finally:
        server.join(5)
        listener.close()


@pytest.mark.skipif(not Path("/proc/self/fd").exists(), reason="counts open files in /proc")
def test_a_host_that_accepts_and_never_answers_times_out_and_leaves_no_file_open(short_dir: Path) -> None:
    """A stalled host (its socket listens, nothing answers): the read times out, and the closed
    client leaves nothing open."""
    path = str(short_dir / "stalled.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)  # connects complete in the backlog; nobody accepts or reads
    try:
        gc.collect()
        gc.disable()
        try:
            before = _open_files()
            for _ in range(3):
                with (
                    httpx.Client(transport=transport_for(path), timeout=0.3) as client,
                    pytest.raises(httpx.ReadTimeout),
                ):
                    client.get("http://localhost/v1/models")
            assert _open_files() == before
        finally:
            gc.enable()
    finally:
        listener.close()
