"""The shared engine's folder and election (issue 26), without a model: a folder others could
use is refused; the host's socket cannot be opened by another user; processes that look for a
host at once elect one (the lock), the others wait for it, and a dead host's files are replaced."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.engine_share import (
    Claimed,
    HostInfo,
    HostLock,
    attach_or_claim,
    live_host,
    share_dir,
    write_info,
)
from app.core.errors import ServeError


@pytest.fixture
def folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="hs-", dir="/tmp") as d:  # a socket's path must be short
        path = Path(d) / "share"
        monkeypatch.setenv("HEARTH_SHARE_DIR", str(path))
        yield path


def test_a_share_folder_others_may_open_is_refused_with_what_to_do(folder: Path) -> None:
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    with pytest.raises(ServeError) as e:
        share_dir()
    assert "is not a private folder of yours" in e.value.message and "HEARTH_SHARE_DIR" in e.value.message
    folder.chmod(0o700)
    assert share_dir() == folder


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not Path("/usr/bin/python3").exists(),
    reason="needs root (and setpriv, and a system python) to act as another user",
)
def test_another_user_cannot_open_the_hosts_socket(folder: Path) -> None:
    from app.server.running import RunningServer

    async def app(scope: dict[str, object], receive: object, send: object) -> None:  # never reached by them
        raise AssertionError("another user's request arrived")

    async def main() -> tuple[int, str]:
        sock = share_dir() / "engine.sock"
        server = RunningServer(app, "127.0.0.1", 0, uds=str(sock))
        await server.start()
        try:
            mode = sock.stat().st_mode & 0o777
            probe = (
                "import socket,sys\n"
                "s=socket.socket(socket.AF_UNIX)\n"
                f"try: s.connect({str(sock)!r})\n"
                "except OSError as e: print(type(e).__name__); sys.exit(0)\n"
                "print('connected')\n"
            )
            done = await asyncio.to_thread(
                subprocess.run,
                ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", probe],
                capture_output=True,
                text=True,
                timeout=30,
            )
            return mode, done.stdout.strip() or done.stderr
        finally:
            await server.stop()

    mode, said = asyncio.run(main())
    assert mode == 0o600
    assert said == "PermissionError", said  # nobody (uid 65534) is refused by the OS


@pytest.mark.slow
def test_processes_looking_at_once_elect_one_host_and_the_others_wait_for_it(folder: Path) -> None:
    results: list[object] = []
    waited: list[str] = []

    def look(i: int) -> None:
        results.append(attach_or_claim("smol", wait_s=3.0, waiting=lambda: waited.append(str(i))))

    threads = [threading.Thread(target=look, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # the winner is "loading": the others wait, they do not claim
    claimed = [r for r in results if isinstance(r, Claimed)]
    assert len(claimed) == 1 and len(results) == 1
    assert len(waited) == 2  # each said it waits for the one loading
    claimed[0].lock.release()  # the winner gave up without hosting: one of the others hosts next
    for t in threads:
        t.join(10)
    again = [r for r in results if isinstance(r, Claimed)]
    assert len(results) == 3 and len(again) == 2  # the last waited its 3 s for that one, then gave up: its own
    assert results.count(None) == 1
    for r in again:
        r.lock.release()


def test_a_dead_hosts_socket_and_description_are_replaced_by_the_next_host(folder: Path) -> None:
    share_dir()
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(folder / "engine.sock"))  # bound, never listening: what kill -9 leaves
    dead.close()
    write_info(folder, HostInfo(pid=999_999, front_end="serve", model_id="smol", model_path="x", n_ctx=1, started_at=0))
    assert live_host(folder) is None  # nobody holds the lock: the files were a dead host's
    assert not (folder / "engine.sock").exists() and not (folder / "engine.json").exists()
    lock = HostLock(folder)
    assert lock.acquire()
    try:
        assert not HostLock(folder).acquire()  # one host at a time
    finally:
        lock.release()
