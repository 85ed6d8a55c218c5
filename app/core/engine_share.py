"""One engine per machine: where a host's socket is, who hosts, and whether a host is alive.

The first Hearth process that loads the local model with sharing on (the window, `hearth serve`)
hosts its engine: it serves the OpenAI-compatible API on a Unix socket in this user's runtime
folder (`<runtime>/hearth/engine.sock`, folder 0700, socket 0600: no other user can connect),
holds `engine.lock` (an OS file lock: it goes with the process, also by kill -9) and describes
itself in `engine.json` (pid, model, front-end). A later process (`hearth ask`) attaches when
the host runs the model it wants, instead of loading a second copy.

Stale files (a host killed with kill -9 leaves its socket and its description) are told by the
lock: a socket nobody holds the lock for is dead, and the next host replaces it. Two processes
starting at once race for the lock, so there is one host, never two.

Where: $HEARTH_SHARE_DIR (tests), else $XDG_RUNTIME_DIR/hearth, else a folder of this user's in
the temporary folder. A folder another user owns, or one others may write, is refused: a socket
there could be someone else's. On Windows the folder (lock and description) is this user's runtime
folder (platformdirs: under the profile, which only this user opens), and the host listens on a
named pipe, `\\\\.\\pipe\\hearth-engine-<hash of that folder>` (one per user), whose DACL grants this
user alone (app.server.pipe_server; clients: engine.pipe_transport). The Windows branches here
are checked statically only (`mypy --platform win32`, tests/project/test_windows_pipe.py).
Must not: import Qt or app.server (the host's server is app.server.shared_host), or connect to
anything but the socket it names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import platformdirs

from app.core.errors import ServeError
from app.core.process_lock import ProcessLock
from engine.commands import RemoteSpec

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Attach",
    "Attachment",
    "Claimed",
    "HostInfo",
    "HostLock",
    "attach",
    "attach_or_claim",
    "attachable",
    "endpoint",
    "host_gone",
    "host_route",
    "live_host",
    "pipe_name",
    "share_dir",
    "sharing_supported",
    "withdraw",
]

SOCKET = "engine.sock"
LOCK = "engine.lock"
INFO = "engine.json"
_CONNECT_TIMEOUT_S = 0.5

FrontEnd = Literal["window", "serve", "ask"]


@dataclass(frozen=True, slots=True)
class HostInfo:
    """What a host says about itself: its process, the model its engine runs, and where."""

    pid: int
    front_end: FrontEnd
    model_id: str
    model_path: str
    n_ctx: int
    started_at: float
    socket: str = ""


def sharing_supported() -> bool:
    return sys.platform == "win32" or hasattr(socket, "AF_UNIX")


def pipe_name(folder: Path) -> str:
    """The Windows host's named pipe for the share folder `folder`: per user, since the folder is."""
    digest = hashlib.sha256(str(folder).lower().encode()).hexdigest()[:16]
    return f"\\\\.\\pipe\\hearth-engine-{digest}"


def endpoint(folder: Path) -> str:
    """Where the host listens: a named pipe on Windows, the socket in `folder` elsewhere."""
    return pipe_name(folder) if sys.platform == "win32" else str(folder / SOCKET)


def share_dir() -> Path:
    """This user's folder for the shared engine, made 0700 if need be. ServeError when it is not
    safe (owned by another user, or open to others)."""
    given = os.environ.get("HEARTH_SHARE_DIR")
    if given:
        folder = Path(given)
    elif sys.platform == "win32":
        folder = platformdirs.user_runtime_path("hearth", appauthor=False)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "hearth"
    else:
        folder = Path(tempfile.gettempdir()) / f"hearth-{os.getuid()}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.lstat()
    except OSError as e:
        raise ServeError("share_dir", f"Cannot use {folder} for the shared engine: {e.strerror or e}.") from None
    if sys.platform == "win32":  # no owner or mode bits: the profile's ACL keeps others out
        return folder
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ServeError(
            "share_dir",
            f"{folder} is not a private folder of yours (owner, or permissions {stat.filemode(st.st_mode)}): "
            "Hearth will not share its engine through it. Remove it, or set HEARTH_SHARE_DIR to a folder only "
            "you can open.",
        )
    return folder


class HostLock(ProcessLock):
    """The host's lock: held for as long as it hosts; freed by the OS when it dies."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder / LOCK, mode=0o600)


def write_info(folder: Path, info: HostInfo) -> None:
    """The host's description, written whole (0600)."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".engine-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(info), f)
        os.replace(tmp, folder / INFO)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def clear(folder: Path) -> None:
    """A host that stops (or the next one, over a dead host's files): socket and description go."""
    for name in (SOCKET, INFO):
        with contextlib.suppress(OSError):
            (folder / name).unlink()


def withdraw(folder: Path) -> None:
    """A host about to stop: its description goes, so no new client attaches (one that comes
    now finds the lock held and no live host, and waits to host next); its socket stays for
    the clients attached already."""
    with contextlib.suppress(OSError):
        (folder / INFO).unlink()


def read_info(folder: Path) -> HostInfo | None:
    try:
        raw = json.loads((folder / INFO).read_text(encoding="utf-8"))
        return HostInfo(**raw)
    except (OSError, ValueError, TypeError):
        return None


def _answers(path: str) -> bool:
    if sys.platform == "win32":
        from engine.pipe_transport import open_pipe

        try:
            open_pipe(path, _CONNECT_TIMEOUT_S).close()
        except OSError:
            return False
        return True
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(_CONNECT_TIMEOUT_S)
        try:
            s.connect(path)
        except OSError:
            return False
    return True


def _usable(folder: Path | None) -> Path | None:
    """`folder`, or this user's share folder; None where sharing cannot work (no Unix sockets or
    named pipes, an unsafe folder: `hearth doctor` says why)."""
    if not sharing_supported():
        return None
    try:
        return folder or share_dir()
    except ServeError:
        return None


def live_host(folder: Path | None = None) -> HostInfo | None:
    """The host running now, if any, with its socket's path; a dead host's files are removed."""
    folder = _usable(folder)
    if folder is None:
        return None
    where = endpoint(folder)
    if not (folder / INFO if sys.platform == "win32" else Path(where)).exists():
        return None
    info = read_info(folder)
    if info is not None and _answers(where):
        return HostInfo(**{**asdict(info), "socket": where})
    if not HostLock(folder).held_elsewhere():  # nobody hosts: what is there is a dead host's
        clear(folder)
    return None


def uptime(info: HostInfo) -> float:
    return max(0.0, time.time() - info.started_at)


class Attachment:
    """Attached to a host: its description, and the connection that asked it (kept open until
    `close`, so that a host finishing its own work sees this process and serves it first)."""

    def __init__(self, info: HostInfo, client: httpx.Client) -> None:
        self.info = info
        self._client = client

    def close(self) -> None:
        self._client.close()


def attach(model_id: str, folder: Path | None = None) -> Attachment | None:
    """The live host, when its engine has the model `model_id` loaded now (asked over its socket:
    the window may have switched models since it started hosting); None otherwise."""
    info = live_host(folder)
    if info is None:
        return None
    import httpx

    from engine.pipe_transport import transport_for

    client = httpx.Client(transport=transport_for(info.socket), timeout=2.0)
    try:
        served = client.get("http://localhost/v1/models").json()
        ids = {m.get("id") for m in served.get("data", []) if isinstance(m, dict)}
    except (httpx.HTTPError, ValueError, AttributeError):
        ids = set()
    if f"local/{model_id}" not in ids:
        client.close()
        return None
    return Attachment(info, client)


def attachable(model_id: str, folder: Path | None = None) -> HostInfo | None:
    """`attach`'s host, without staying attached (`hearth doctor`, tests)."""
    attached = attach(model_id, folder)
    if attached is None:
        return None
    attached.close()
    return attached.info


@dataclass(frozen=True, slots=True)
class Attach:
    """A host runs the model: answer through it (and `close` the attachment after)."""

    attachment: Attachment

    @property
    def info(self) -> HostInfo:
        return self.attachment.info


@dataclass(frozen=True, slots=True)
class Claimed:
    """This process won the election: it holds the lock, loads the model and hosts it
    (app.server.shared_host.host_engine with `lock=`), or lets the lock go."""

    lock: HostLock


def attach_or_claim(
    model_id: str,
    *,
    folder: Path | None = None,
    wait_s: float = 120.0,
    waiting: Callable[[], None] | None = None,
) -> Attach | Claimed | None:
    """What a process that needs `model_id` does (`hearth ask`): attach to a host that runs it;
    or, with no host, claim the lock and host it itself; or None: load a private copy (a host
    runs another model, or sharing is not possible here). A host that holds the lock but does not
    answer yet is loading its model: wait for it (at most `wait_s`, calling `waiting` once after
    a moment), so that processes started together load the model once, not once each."""
    folder = _usable(folder)
    if folder is None:
        return None
    deadline = time.monotonic() + wait_s
    said = time.monotonic() + 0.5
    while True:
        attached = attach(model_id, folder)
        if attached is not None:
            return Attach(attached)
        lock = HostLock(folder)
        if lock.acquire():
            live_host(folder)  # a dead host's files go
            return Claimed(lock)
        if live_host(folder) is not None:  # a host answers, with another model
            return None
        if time.monotonic() > deadline:
            return None
        if waiting is not None and time.monotonic() > said:
            waiting()
            waiting = None
        time.sleep(0.05)


async def host_gone(info: HostInfo, model_id: str, *, every_s: float = 2.0) -> str:
    """Return (with why, for a person) once the host `info` no longer runs `model_id`: it exited
    or was killed, or it switched models. A window or server attached to it then loads its own."""
    import asyncio

    while True:
        await asyncio.sleep(every_s)
        now = await asyncio.to_thread(attachable, model_id)
        if now is None or now.pid != info.pid:
            still = await asyncio.to_thread(live_host)
            if still is not None and still.pid == info.pid:
                return f"the Hearth process whose engine was answering here (pid {info.pid}) switched models"
            return f"the Hearth process whose engine was answering here (pid {info.pid}) has stopped"


def host_route(info: HostInfo, model_id: str) -> RemoteSpec:
    """How to reach the host's model: its API over its socket, named as the model itself (the
    answer's record says the model, not a provider). No retries: a host that is gone is said at once."""
    return RemoteSpec(
        name=model_id,
        wire="openai",
        base_url="http://localhost/v1",
        model=f"local/{model_id}",
        uds=info.socket,
        max_retries=0,
        first_token_timeout_s=600.0,  # waiting in the host's queue behind other answers
    )
