"""The app's side of the engine: spawn the engine process, send commands, route events.

`EngineProcess` is thread-based and loop-agnostic: a reader thread receives events.
`AsyncEngine` is its asyncio face: events are handed to the event loop with
`call_soon_threadsafe`, one queue per generation, so the UI thread never blocks on the
engine and never gets called from another thread.

A native crash in llama.cpp kills only the engine process: open streams end with
Failed("engine_crashed"), and the next load starts a fresh process. The engine process ends
with the app, however the app ends (engine.parent_watch).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from engine.actor import run_engine
from engine.codes import CancelReason
from engine.commands import (
    Cancel,
    ChatMessage,
    Generate,
    LoadModel,
    Measure,
    Sampling,
    Shutdown,
    Summary,
    ToolSpec,
    UnloadModel,
)
from engine.engine_thread import ActorPipes, EngineThread
from engine.errors import EngineUnavailable, ModelLoadError
from engine.events import (
    Cancelled,
    EngineEvent,
    Failed,
    Final,
    GenerationStats,
    Measured,
    ModelFailed,
    ModelInfo,
    ModelLoading,
    ModelReady,
    ModelUnloaded,
    Queued,
    StreamEvent,
)

__all__ = ["AsyncEngine", "EngineDied", "EngineProcess", "GenerationStream", "start_from_lasting_thread"]

# How long an engine may be silent after a Stop before it counts as stuck and is killed, and how
# long one that keeps talking (streaming on, under load) may take to stop at most.
_STUCK_AFTER_S = 1.0
_STOP_AT_MOST_S = 15.0
_NO_STATS = GenerationStats(0, 0, 0, 0.0, 0.0, 0.0, 0.0)

# Exit codes of a native crash: segfault, illegal instruction, bus error, abort, FP trap
# (POSIX: minus the signal), and Windows' access violation and illegal instruction.
_NATIVE_CRASH = {
    -getattr(signal, name) for name in ("SIGSEGV", "SIGILL", "SIGBUS", "SIGABRT", "SIGFPE") if hasattr(signal, name)
} | {0xC0000005, 0xC000001D}


_spawn_lock = threading.Lock()
_spawn_jobs: queue.SimpleQueue[tuple[mp.process.BaseProcess, Future[None]]] = queue.SimpleQueue()
_spawner: threading.Thread | None = None


def start_from_lasting_thread(proc: mp.process.BaseProcess) -> None:
    """Start `proc` from one thread that lasts as long as this process.

    The engine asks Linux to kill it when its parent ends (engine.parent_watch), and Linux
    counts the *thread* that started a process as its parent: an engine started from a
    worker thread (asyncio.to_thread, an executor) would be killed when that thread ends.
    """
    global _spawner
    with _spawn_lock:
        if _spawner is None or not _spawner.is_alive():
            _spawner = threading.Thread(target=_spawn_forever, name="engine-spawner", daemon=True)
            _spawner.start()
    done: Future[None] = Future()
    _spawn_jobs.put((proc, done))
    done.result()


def _spawn_forever() -> None:
    while True:
        proc, done = _spawn_jobs.get()
        try:
            proc.start()
        except BaseException as e:  # noqa: BLE001 - handed to the caller, which re-raises it
            done.set_exception(e)
        else:
            done.set_result(None)


@dataclass(frozen=True, slots=True)
class EngineDied:
    """The engine process exited without being asked to."""

    exitcode: int | None


class EngineProcess(ActorPipes):
    """The spawned engine process and the two pipes to it."""

    _gone = "The engine process has stopped."

    def __init__(self, on_event: Callable[[object], None]) -> None:
        super().__init__(on_event)
        self._proc: mp.process.BaseProcess | None = None
        self._stopping = False

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        # spawn, not fork: a forked child would inherit Qt and the store's threads.
        ctx = mp.get_context("spawn")
        cmd_recv, cmd_send = ctx.Pipe(duplex=False)
        ev_recv, ev_send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=run_engine, args=(cmd_recv, ev_send, os.getpid()), name="hearth-engine", daemon=True
        )
        self._stopping = False
        start_from_lasting_thread(self._proc)
        cmd_recv.close()
        ev_send.close()
        self._commands = cmd_send
        threading.Thread(
            target=self._read_events, args=(ev_recv, self._proc), name="engine-events", daemon=True
        ).start()

    def kill(self) -> None:
        """Kill a stuck engine at once (SIGKILL works on a stopped process too); its death is
        reported as usual, as EngineDied, by the events thread."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc is None:
            return
        self._stopping = True
        with contextlib.suppress(EngineUnavailable):
            self.send(Shutdown())
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout)
        if self._commands is not None:
            self._commands.close()
            self._commands = None

    def _read_events(self, conn: Connection, proc: mp.process.BaseProcess) -> None:
        self._pump(conn)
        proc.join(5)
        if not self._stopping:
            self._on_event(EngineDied(proc.exitcode))


class GenerationStream:
    """Async iterator over one generation's events; ends after the terminal event."""

    def __init__(self, engine: AsyncEngine, generation_id: int) -> None:
        self.generation_id = generation_id
        self._engine = engine
        self._queue: asyncio.Queue[StreamEvent] = asyncio.Queue()
        self._done = False
        self.last_event_at = time.monotonic()
        self.gap_s = 0.0  # the typical time between its events (an average), for the cancel deadline

    def _put(self, event: StreamEvent) -> None:
        if not isinstance(event, Queued):  # a place in the queue says nothing of the engine's pace
            now = time.monotonic()
            gap = now - self.last_event_at
            self.gap_s = 0.8 * self.gap_s + 0.2 * gap if self.gap_s else gap
            self.last_event_at = now
        self._queue.put_nowait(event)

    def cancel(self, reason: CancelReason = "user", *, force: bool = False) -> None:
        """Ask the engine to stop. If it does not answer in time (or `force`: a second Ctrl-C),
        it is stuck: the engine process is killed and the stream ends as cancelled at once."""
        if not self._done:
            self._engine.cancel(self.generation_id, reason, force=force)

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        while not self._done:
            event = await self._queue.get()
            if isinstance(event, Final | Cancelled | Failed):
                self._done = True
            yield event


class AsyncEngine:
    """asyncio face of the engine process. Create and use it on the event loop's thread."""

    def __init__(
        self, *, on_model_event: Callable[[EngineEvent], None] | None = None, in_process: bool = False
    ) -> None:
        """`in_process`: the actor runs in a thread here (engine.engine_thread), for remote replies
        only: a process attached to another Hearth's shared engine needs no model of its own."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_process = in_process
        self._proc: EngineProcess | EngineThread | None = None
        self._streams: dict[int, GenerationStream] = {}
        self._loads: list[tuple[str, asyncio.Future[ModelInfo]]] = []  # (path, future), in send order
        self._unloads: list[asyncio.Future[None]] = []
        self._measures: dict[int, asyncio.Future[Measured]] = {}
        self._next_measure = 0
        self._listeners: list[Callable[[EngineEvent], None]] = [on_model_event] if on_model_event else []
        self.model: ModelInfo | None = None
        self.model_error: ModelFailed | None = None
        # A native crash before the first local answer after a load usually means the llama.cpp
        # build does not run on this CPU; `hearth doctor` tells, so the message points there.
        self._local_gids: set[int] = set()
        self._local_answered = False
        self._stuck = False  # the engine was killed because it did not answer a cancel
        self._heard_at = time.monotonic()  # the engine's last event, stamped by the reader thread

    def add_listener(self, fn: Callable[[EngineEvent], None]) -> None:
        self._listeners.append(fn)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        """The engine process runs (its death may not have been dispatched yet: `model` lags)."""
        return self._proc is not None and self._proc.alive

    def start(self) -> None:
        self._loop = asyncio.get_running_loop() if self._loop is None else self._loop
        if self._proc is None or not self._proc.alive:
            self._proc = EngineThread(self._from_thread) if self._in_process else EngineProcess(self._from_thread)
            self._proc.start()

    async def load(self, cmd: LoadModel) -> ModelInfo:
        """Load (or switch to) a model; raises ModelLoadError with a message for a person."""
        if self._in_process:
            raise EngineUnavailable("no_local_model", "This process answers through another Hearth's engine only.")
        self._loop = asyncio.get_running_loop()
        self.start()
        assert self._proc is not None
        fut: asyncio.Future[ModelInfo] = self._loop.create_future()
        self._loads.append((cmd.path, fut))
        self._proc.send(cmd)
        return await fut

    async def unload(self) -> None:
        """Free the loaded model in the engine process (its memory goes back to the system)."""
        if self._proc is None or not self._proc.alive:
            self.model = None
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unloads.append(done)
        self._proc.send(UnloadModel())
        await done

    async def measure(
        self,
        messages: tuple[ChatMessage, ...],
        sampling: Sampling,
        summary: Summary | None = None,
        *,
        tools: tuple[ToolSpec, ...] = (),
    ) -> Measured:
        """How much of the loaded model's context this prompt takes, with the tools it would offer
        (see engine.commands.Measure)."""
        if self._proc is None or not self._proc.alive:
            return Measured(-1, error="The engine is not running.")
        self._next_measure += 1
        request_id = self._next_measure
        fut: asyncio.Future[Measured] = asyncio.get_running_loop().create_future()
        self._measures[request_id] = fut
        try:
            self._proc.send(Measure(request_id, messages, sampling, summary, tools=tools))
            return await fut
        finally:
            self._measures.pop(request_id, None)

    def generate(self, cmd: Generate) -> GenerationStream:
        if self._proc is None or not self._proc.alive:
            raise EngineUnavailable("engine_stopped", "The engine is not running.")
        stream = GenerationStream(self, cmd.generation_id)
        self._streams[cmd.generation_id] = stream
        if cmd.remote is None:
            self._local_gids.add(cmd.generation_id)
        self._proc.send(cmd)
        return stream

    def cancel(self, generation_id: int, reason: CancelReason = "user", *, force: bool = False) -> None:
        """Stop a generation; an engine that does not stop it in time is killed.

        The engine stops within a token (or a prompt chunk) once asked. One that has then
        said nothing at all for `_STUCK_AFTER_S`, or twice its own usual pace between tokens
        for a very slow model, is stuck (stopped by a debugger or SIGSTOP, hung in native
        code): Stop must still work, so its process is killed and the stream ends as cancelled
        with what arrived. The model reloads in a fresh process. An engine still sending
        events is alive, only late (a loaded machine: the Stop waits in its pipe behind
        tokens already made), and is given until `_STOP_AT_MOST_S`: killing it would cost a
        reload and end the answers queued behind it.
        """
        if self._proc is not None and self._proc.alive:
            try:
                self._proc.send(Cancel(generation_id, reason))
            except EngineUnavailable:
                pass  # the death notice will end the stream
        stream = self._streams.get(generation_id)
        if stream is None or self._loop is None:
            return
        if force:
            self._force_stop(generation_id, reason)
        else:
            grace = max(_STUCK_AFTER_S, 2 * stream.gap_s)
            self._loop.call_later(grace, self._check_stopped, generation_id, reason, grace, time.monotonic())

    def _check_stopped(self, generation_id: int, reason: CancelReason, grace: float, asked_at: float) -> None:
        if generation_id not in self._streams:
            return  # it ended in time
        now = time.monotonic()
        silent_for = now - self._heard_at
        if silent_for < grace and now - asked_at < _STOP_AT_MOST_S and self._loop is not None:
            self._loop.call_later(grace - silent_for, self._check_stopped, generation_id, reason, grace, asked_at)
        else:
            self._force_stop(generation_id, reason)

    def _force_stop(self, generation_id: int, reason: CancelReason) -> None:
        stream = self._streams.pop(generation_id, None)
        if stream is None:
            return  # it ended in time
        self._local_gids.discard(generation_id)
        stream._put(Cancelled(generation_id, reason, _NO_STATS))
        if self._proc is not None:
            self._stuck = True
            self._proc.kill()  # its death notice ends the other streams and clears the model

    def detach(self) -> EngineProcess | EngineThread | None:
        """On the loop's thread: forget the engine process and hand it back for `stop()`,
        which blocks (it joins the process) and so belongs in a worker thread."""
        proc, self._proc = self._proc, None
        return proc

    async def aclose(self) -> None:
        """Shut the engine process down without blocking the loop: detach here, join in a thread."""
        proc = self.detach()
        if proc is not None:
            await asyncio.to_thread(proc.stop)

    def close(self) -> None:
        """Blocking shutdown, for code with no running loop (scripts, tests)."""
        proc = self.detach()
        if proc is not None:
            proc.stop()

    # -- events, on the loop's thread -------------------------------------------------

    def _from_thread(self, event: object) -> None:
        self._heard_at = time.monotonic()  # here, not on the loop: a busy loop must not make the engine look silent
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._dispatch, event)
            except RuntimeError:  # loop closed between the check and the call
                pass

    def _dispatch(self, event: object) -> None:
        if isinstance(event, Measured):
            measured = self._measures.get(event.request_id)
            if measured is not None and not measured.done():
                measured.set_result(event)
            return
        gid = getattr(event, "generation_id", None)
        if gid is not None:
            stream = self._streams.get(gid)
            if stream is not None:
                stream._put(event)  # type: ignore[arg-type]
                if isinstance(event, Final | Cancelled | Failed):
                    del self._streams[gid]
            if gid in self._local_gids and isinstance(event, Final | Cancelled | Failed):
                self._local_gids.discard(gid)
                self._local_answered = True
            return
        if isinstance(event, EngineDied):
            self._engine_died(event)
            return
        if isinstance(event, ModelReady):
            self.model, self.model_error = event.info, None
            self._local_answered = False
            self._settle_load(result=event.info)
        elif isinstance(event, ModelFailed):
            self.model, self.model_error = None, event
            self._settle_load(error=ModelLoadError(event.code, event.message))
        elif isinstance(event, ModelLoading):
            self.model = None
        elif isinstance(event, ModelUnloaded):
            self.model = None
            if self._unloads:
                fut = self._unloads.pop(0)
                if not fut.done():
                    fut.set_result(None)
        for fn in list(self._listeners):
            fn(event)  # type: ignore[arg-type]

    def _settle_load(self, *, result: ModelInfo | None = None, error: Exception | None = None) -> None:
        if self._loads:
            _, fut = self._loads.pop(0)
            if not fut.done():
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(result)  # type: ignore[arg-type]

    def _engine_died(self, event: EngineDied) -> None:
        message = (
            f"The engine process stopped unexpectedly (exit code {event.exitcode}). "
            "Your conversation is safe; the text written so far is kept."
        )
        if self._stuck:
            self._stuck = False
            message = (
                "The engine did not respond to Stop, so Hearth restarted it. Your conversation is safe; "
                "the text written so far is kept."
            )
        elif (
            event.exitcode in _NATIVE_CRASH
            and self.model is not None
            and not self._local_answered
            and self._local_gids & self._streams.keys()
        ):
            message = (
                f"The engine process stopped unexpectedly (exit code {event.exitcode}) on the first answer after "
                f"loading {Path(self.model.path).name}: the llama.cpp build may not run on this CPU. "
                "Run `hearth doctor` to check it and for how to fix it. Your conversation is safe."
            )
        self._local_gids.clear()
        for request_id, measured in list(self._measures.items()):
            if not measured.done():
                measured.set_result(Measured(request_id, error="The engine stopped."))
        for gid, stream in list(self._streams.items()):
            stream._put(Failed(gid, "engine_crashed", message))
        self._streams.clear()
        path = self.model.path if self.model else ""
        if self._loads:  # the first pending load is the one the engine was working on
            path = self._loads[0][0]
            message = (
                f"The engine crashed while loading {Path(path).name}: llama.cpp crashed while reading it; "
                f"the file is probably damaged or not a model (exit code {event.exitcode})."
            )
            if event.exitcode == -getattr(signal, "SIGKILL", 9):  # not the file's doing
                message = (
                    f"The engine was killed while loading {Path(path).name} (exit code {event.exitcode}): "
                    "the system ran out of memory, or another program stopped it."
                )
        self.model = None
        self.model_error = ModelFailed(path, "engine_crashed", message)
        for i, (load_path, fut) in enumerate(self._loads):
            if not fut.done():
                fut.set_exception(
                    ModelLoadError(
                        "engine_crashed",
                        message if i == 0 else f"The engine stopped before it could load {Path(load_path).name}.",
                    )
                )
        self._loads.clear()
        for unloaded in self._unloads:  # a dead engine holds no model: the unload is done
            if not unloaded.done():
                unloaded.set_result(None)
        self._unloads.clear()
        for fn in list(self._listeners):
            fn(self.model_error)
