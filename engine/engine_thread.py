"""The engine actor in a thread of this process, for a process that runs no model of its own.

A process that attaches to another Hearth's shared engine (app.core.engine_share: `hearth ask`
beside a running window) streams its answer from that engine over a Unix socket, as a remote
reply; that needs the actor's remote path (wire format, timeouts, cancel, filters) but neither a
model nor a process to keep native code apart, and spawning one costs a quarter of a second.
`EngineThread` has EngineProcess's face and runs the same `run_engine` on in-process pipes.
Must not: load a model (LoadModel would load it into this process: AsyncEngine(in_process=True)
is for remote replies only, and says so).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection

from engine.commands import Command, Shutdown
from engine.errors import EngineUnavailable

__all__ = ["ActorPipes", "EngineThread"]


class ActorPipes:
    """What an engine in a process and one in a thread share: the command pipe, written by one
    sender at a time, and the loop that hands each event from the event pipe to `on_event`."""

    _gone = "The engine has stopped."

    def __init__(self, on_event: Callable[[object], None]) -> None:
        self._on_event = on_event
        self._commands: Connection | None = None
        self._send_lock = threading.Lock()

    def send(self, cmd: Command) -> None:
        if self._commands is None:
            raise EngineUnavailable("engine_stopped", "The engine is not running.")
        try:
            with self._send_lock:
                self._commands.send(cmd)
        except (OSError, ValueError) as e:
            raise EngineUnavailable("engine_crashed", self._gone) from e

    def _pump(self, conn: Connection) -> None:
        """Until the pipe closes."""
        while True:
            try:
                event = conn.recv()
            except (EOFError, OSError):
                break
            self._on_event(event)
        conn.close()


class EngineThread(ActorPipes):
    """EngineProcess's face (start, send, alive, pid, kill, stop) over an actor in a thread."""

    _gone = "The engine thread has stopped."

    def __init__(self, on_event: Callable[[object], None]) -> None:
        super().__init__(on_event)
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def pid(self) -> int | None:
        return os.getpid() if self._thread is not None else None

    def start(self) -> None:
        from engine.actor import run_engine

        cmd_recv, cmd_send = mp.Pipe(duplex=False)
        ev_recv, ev_send = mp.Pipe(duplex=False)
        self._thread = threading.Thread(
            target=run_engine, args=(cmd_recv, ev_send), name="hearth-engine-thread", daemon=True
        )
        self._thread.start()
        self._commands = cmd_send
        threading.Thread(target=self._pump, args=(ev_recv,), name="engine-events", daemon=True).start()

    def kill(self) -> None:
        """A thread cannot be killed: the actor is asked to stop (a remote reply ends at its next read)."""
        self.stop(0.5)

    def stop(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(EngineUnavailable):
            self.send(Shutdown())
        if self._thread is not None:
            self._thread.join(timeout)
        if self._commands is not None:
            self._commands.close()
            self._commands = None
