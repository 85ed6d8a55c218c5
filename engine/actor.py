"""The engine actor: the entry point of the spawned engine process.

Local and remote answers run side by side. A remote reply is I/O, not the model: each runs in
a thread of its own as soon as it arrives, so a chat answered by a provider never waits for
the local model or a load, nor they for it. A local answer stopped while it waits its turn
behind another is answered at once by the reader thread.

Local answers are one FIFO, whoever sent them (a window hosting its engine for `hearth ask` and
`hearth serve` sends theirs here too): each that waits is told its place (`Queued`: how many come
before it) when it arrives, when that count drops, and with 0 when its turn comes.

Owns the loaded model. A reader thread takes commands off the pipe so that Cancel is seen
while a generation runs; the main thread runs loads and local generations one at a time, in
order. Every event goes back over the event pipe. Nothing here knows about the store or Qt.

When the app is gone (its pipe closed, its pid gone, engine.parent_watch) the actor cancels
what runs and stops; if the main thread has not ended the process a few seconds later (stuck
in native code), the process ends anyway: an engine never outlives its app.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from engine.coalesce import DeltaCoalescer
from engine.codes import CancelReason
from engine.commands import Cancel, Generate, LoadModel, Measure, RemoteSpec, Shutdown, UnloadModel
from engine.errors import ModelLoadError
from engine.events import (
    Cancelled,
    Failed,
    Final,
    GenerationStats,
    Measured,
    ModelFailed,
    ModelLoading,
    ModelReady,
    ModelUnloaded,
    Queued,
    StreamEvent,
)
from engine.parent_watch import die_with_parent

if TYPE_CHECKING:
    from engine.local import LocalModel
    from engine.remote import RemoteProvider

__all__ = ["run_engine"]

_IDLE_REMOTES = 4  # providers kept open between replies (their connections stay warm)
_NO_STATS = GenerationStats(0, 0, 0, 0.0, 0.0, 0.0, 0.0)
_ORPHAN_GRACE_S = 3.0  # how long an engine whose app is gone may take to stop on its own


class _Actor:
    def __init__(self, events: Connection, *, owns_process: bool) -> None:
        self._events = events
        # In its own process the actor may end that process when the app is gone; in a thread
        # (engine.engine_thread: `hearth ask` attached to another Hearth's engine) the process is
        # the app's, and ending it would end the app, its unsaved answer with it.
        self._owns_process = owns_process
        self._send_lock = threading.Lock()
        self._inbox: queue.Queue[tuple[float, LoadModel | UnloadModel | Generate | Shutdown]] = queue.Queue()
        self._cancels: dict[int, threading.Event] = {}
        self._cancel_reasons: dict[int, CancelReason] = {}
        self._lock = threading.Lock()
        self._model: LocalModel | None = None  # imported lazily (native code), hence the TYPE_CHECKING import
        self._idle_remotes: dict[RemoteSpec, RemoteProvider] = {}  # not streaming now, by spec, oldest first
        # Local generations received and not started yet, in arrival order (a dict keeps it),
        # each with the place it was last told (None: not told, it came to an idle engine).
        self._waiting: dict[int, int | None] = {}
        self._running: int | None = None  # the local generation answering now
        self._abandoned = False

    def emit(self, event: object) -> None:
        places: list[Queued] = []
        if isinstance(event, Final | Cancelled | Failed):
            # The answer running ends here, before its end is sent: a client that sends the next
            # one as soon as it reads this one's end must not be told it waits behind it.
            with self._lock:
                if self._running == event.generation_id:
                    self._running = None
                    places = self._places()
        with self._send_lock:
            try:
                self._events.send(event)
            except OSError:  # the app is gone (killed): stop working for nobody
                self._abandon()
        for place in places:
            self.emit(place)

    def _abandon(self) -> None:
        """The app died: cancel everything so the running generation ends within a token, and
        end the process in any case if that has not ended it soon (its own process only)."""
        with self._lock:
            if self._abandoned:
                return
            self._abandoned = True
            for event in self._cancels.values():
                event.set()
        self._inbox.put((time.perf_counter(), Shutdown()))
        if not self._owns_process:
            return
        deadline = threading.Timer(_ORPHAN_GRACE_S, os._exit, args=(0,))
        deadline.daemon = True
        deadline.start()

    def read_commands(self, commands: Connection) -> None:
        """Reader thread: route Cancel at once, queue everything else in order."""
        while True:
            try:
                cmd = commands.recv()
            except (EOFError, OSError):  # the app went away (even by SIGKILL): shut down now
                self._abandon()
                return
            now = time.perf_counter()
            if isinstance(cmd, Measure):
                self.emit(self._measure(cmd))
                continue
            if isinstance(cmd, Cancel):
                with self._lock:
                    self._cancel_reasons[cmd.generation_id] = cmd.reason
                    self._cancels.setdefault(cmd.generation_id, threading.Event()).set()
                    waiting = self._waiting.pop(cmd.generation_id, -1) != -1
                    places = self._places() if waiting else []
                if waiting:  # queued behind another answer: it ends now, not when its turn comes
                    self.emit(Cancelled(cmd.generation_id, cmd.reason, _NO_STATS))
                for event in places:
                    self.emit(event)
                continue
            if isinstance(cmd, Generate):
                with self._lock:
                    self._cancels.setdefault(cmd.generation_id, threading.Event())
                    ahead = len(self._waiting) + (self._running is not None)
                    if cmd.remote is None:
                        self._waiting[cmd.generation_id] = ahead or None
                if cmd.remote is None and ahead:
                    self.emit(Queued(cmd.generation_id, ahead))
                if cmd.remote is not None:
                    threading.Thread(
                        target=self._generate, args=(cmd, now), name=f"remote-{cmd.generation_id}", daemon=True
                    ).start()
                    continue
            self._inbox.put((now, cmd))
            if isinstance(cmd, Shutdown):
                return

    def _measure(self, cmd: Measure) -> Measured:
        model = self._model
        if model is None:
            return Measured(cmd.request_id, error="No model is loaded.")
        from engine.template import too_costly_message
        from engine.template_limits import TemplateTooCostly, render_budget

        try:
            with render_budget():  # all the renders of one measure, together
                return model.measure(cmd)
        except TemplateTooCostly as e:
            return Measured(cmd.request_id, error=too_costly_message(model.info.path, e))
        except Exception as e:  # noqa: BLE001 - a model swapped out meanwhile, an untrusted template
            return Measured(cmd.request_id, error=str(e) or type(e).__name__)

    def run(self) -> None:
        while True:
            received_at, cmd = self._inbox.get()
            if isinstance(cmd, Shutdown) or self._abandoned:
                break
            if isinstance(cmd, LoadModel):
                self._load(cmd)
            elif isinstance(cmd, UnloadModel):
                self._unload()
            elif isinstance(cmd, Generate):
                self._generate(cmd, received_at)
        if self._model is not None:
            self._model.close()
        with self._lock:
            idle, self._idle_remotes = list(self._idle_remotes.values()), {}
        for provider in idle:
            provider.close()

    def _load(self, cmd: LoadModel) -> None:
        from engine.local import LocalModel

        self.emit(ModelLoading(cmd.path))
        self._free()  # the old model's memory is freed before the new one is mapped
        try:
            model = LocalModel(cmd)
        except ModelLoadError as e:
            self.emit(ModelFailed(cmd.path, e.code, e.message))
        except Exception as e:  # noqa: BLE001 - llama.cpp may raise anything on a hostile file
            self.emit(ModelFailed(cmd.path, "load_failed", f"Could not load {cmd.path}: {e}"))
        else:
            self._model = model
            self.emit(ModelReady(model.info))

    def _free(self) -> None:
        model, self._model = self._model, None
        if model is None:
            return
        model.close()
        del model
        # close() frees llama.cpp's buffers; collecting now also drops the Python side (the
        # Llama object and its token and logit arrays) before another model is mapped.
        gc.collect()

    def _unload(self) -> None:
        path = self._model.info.path if self._model is not None else ""
        self._free()
        self.emit(ModelUnloaded(path))

    def _take_remote(self, spec: RemoteSpec) -> RemoteProvider:
        """A provider for one reply: the idle one of this spec (its connections still open), or
        a new one. A provider streams one reply at a time; replies at once get one each."""
        from engine.remote import RemoteProvider

        with self._lock:
            idle = self._idle_remotes.pop(spec, None)
        return idle if idle is not None else RemoteProvider(spec)

    def _give_back_remote(self, provider: RemoteProvider) -> None:
        """Kept for the next reply of its spec; the oldest idle one beyond a few is closed."""
        with self._lock:
            spare = self._idle_remotes.pop(provider.spec, None)
            self._idle_remotes[provider.spec] = provider
            stale = list(self._idle_remotes.values())[:-_IDLE_REMOTES]
            for old in stale:
                del self._idle_remotes[old.spec]
        for old in [*stale, *([spare] if spare is not None else [])]:
            old.close()

    def _with_reason(self, gid: int) -> Callable[[StreamEvent], None]:
        """A provider stopped by a Cancel command does not know why; the command does.

        A provider that stopped for its own reason (a timeout) says so, and keeps it.
        """

        def emit(event: StreamEvent) -> None:
            if isinstance(event, Cancelled) and gid in self._cancel_reasons:
                event = Cancelled(gid, self._cancel_reasons[gid], event.stats)
            self.emit(event)

        return emit

    def _generate(self, cmd: Generate, received_at: float) -> None:
        gid = cmd.generation_id
        with self._lock:
            if cmd.remote is None and gid not in self._waiting:  # stopped while waiting: answered then
                self._cancels.pop(gid, None)
                self._cancel_reasons.pop(gid, None)
                return
            places: list[Queued] = []
            if cmd.remote is None:
                if self._waiting.pop(gid):  # it was told it waits: its turn has come
                    places.append(Queued(gid, 0))
                self._running = gid
                places += self._places()
            cancel = self._cancels[gid]
        for event in places:
            self.emit(event)
        # A local model's tokens can come faster than a frame: joined per frame (engine.coalesce).
        joined = DeltaCoalescer(self._with_reason(gid)) if cmd.remote is None else None
        try:
            emit = joined.emit if joined is not None else self._with_reason(gid)
            if cmd.filters is not None:
                from engine.filter_stage import FilterStage

                config = cmd.filters
                if cmd.continue_text.strip() and not config.answer_started:
                    config = dataclasses.replace(config, answer_started=True)
                emit = FilterStage(config, emit, cancel).emit
            if cancel.is_set():  # cancelled while still queued
                self.emit(Cancelled(gid, self._cancel_reasons.get(gid, "user"), _NO_STATS))
            elif cmd.remote is not None:
                provider = self._take_remote(cmd.remote)
                try:
                    provider.generate(cmd, cancel, emit, received_at)
                finally:
                    self._give_back_remote(provider)
            elif self._model is None:
                self.emit(Failed(gid, "no_model", "No model is loaded. Choose a model and try again."))
            else:
                from engine.template_limits import render_budget

                with render_budget():  # all the renders of this turn's prompt (fitting a long chat), together
                    self._model.generate(cmd, cancel, emit, received_at)
        except Exception as e:  # noqa: BLE001 - a bug or a llama.cpp error must end the stream, not the engine
            if joined is not None:
                joined.flush()  # the text sent before the failure stays in order ahead of it
            self.emit(Failed(gid, "engine_error", f"The engine failed while generating: {e}"))
        finally:
            places = []
            with self._lock:
                self._cancels.pop(gid, None)
                self._cancel_reasons.pop(gid, None)
                if self._running == gid:
                    self._running = None
                    places = self._places()
            for event in places:
                self.emit(event)

    def _places(self) -> list[Queued]:
        """With the lock held: the new place of each waiting generation whose place changed (to be
        sent after the lock is let go: a failed send takes the lock to cancel everything)."""
        busy = self._running is not None
        out = []
        for i, (gid, told) in enumerate(list(self._waiting.items())):
            ahead = i + busy
            if told is not None and ahead != told and ahead > 0:
                self._waiting[gid] = ahead
                out.append(Queued(gid, ahead))
        return out


def run_engine(commands: Connection, events: Connection, parent_pid: int | None = None) -> None:
    """Process entry point (spawned by the process `parent_pid`, which it does not outlive)."""
    actor = _Actor(events, owns_process=parent_pid is not None)
    if parent_pid is not None:
        die_with_parent(parent_pid, actor._abandon)
    reader = threading.Thread(target=actor.read_commands, args=(commands,), name="engine-commands", daemon=True)
    reader.start()
    actor.run()
    events.close()
