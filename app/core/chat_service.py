"""The chat service: the command path and the stream path, shared by the CLI, the window
and the benchmark. No Qt here.

Command path: validate, create the user message and a pending assistant message in one
small store transaction, send a `Generate` to the engine. Stream path: hand each engine
event straight to the consumer. Product state: checkpoints and the final save are
*submitted* to the store's single writer and never awaited by the stream; `Turn.saved`
resolves when the final save is durable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from app.core.chat_settings import ChatSettings
from app.core.errors import InputError
from app.core.model_state import ModelState, check_model_transition
from app.core.models.library import display_name
from app.core.routes import Route
from engine.client import AsyncEngine, GenerationStream
from engine.commands import ChatMessage, Generate, LoadModel, RemoteSpec, Sampling, Summary
from engine.errors import EngineError, EngineUnavailable
from engine.events import (
    Cancelled,
    Delta,
    EngineEvent,
    Failed,
    Final,
    Measured,
    ModelFailed,
    ModelInfo,
    ModelLoading,
    ModelReady,
    ModelUnloaded,
    ProviderSession,
    Started,
    StreamEvent,
)
from engine.filters import FilterConfig
from engine.states import GenerationState
from store.limits import too_long_message

if TYPE_CHECKING:
    from store import ConversationChange, Store, TurnIds

__all__ = ["ChatService"]

log = logging.getLogger(__name__)


# Coarse checkpoints: about once a second, never per token (docs/architecture.md#the-three-flows, product state).
CHECKPOINT_INTERVAL_S = 1.0


@dataclass(frozen=True)
class TurnOutcome:
    state: GenerationState
    text: str
    cancel_reason: str | None
    error_code: str | None
    error_message: str | None
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    reasoning: str = ""  # the model's <think> part, kept apart from the answer
    stop_reason: str | None = None  # a completed answer's: eog, stop, length (cut off: can be continued)


class Turn:
    """One user message and the reply streaming into its pending assistant message."""

    def __init__(self, *, ids: TurnIds, changed: ConversationChange, stream: GenerationStream, store: Store,
                 started_at: float, command_latency_ms: float, on_end: Callable[[Turn], None],
                 checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S, prefix: str = "") -> None:
        self.ids = ids
        self.changed = changed  # the conversation's row after the command path's write
        self.prefix = prefix  # text already in the message when this turn continues it
        # For each message of the prompt, its place in the conversation's path (-1: the chat's
        # system prompt): Started.omitted's indices become the messages the model did not see.
        self.positions: tuple[int, ...] = ()
        self.started: Started | None = None  # the engine's Started event, once the prompt is read
        self.summarize_at = 0  # tokens (prompt and answer) from which a running summary is queued
        self.command_latency_ms = command_latency_ms
        self.outcome: TurnOutcome | None = None
        self.reasoning: list[str] = []
        self._background: set[asyncio.Future[None]] = set()
        self.saved: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._stream = stream
        self._store = store
        self._started_at = started_at
        self._interval = checkpoint_interval_s
        self._on_end = on_end
        self._checkpoint: concurrent.futures.Future[None] | None = None

    def out_of_view(self, started: Started) -> frozenset[int]:
        """The places in the conversation's path of the messages this turn's prompt left out."""
        return frozenset(self.positions[i] for i in started.omitted
                         if 0 <= i < len(self.positions) and self.positions[i] >= 0)

    def cancel(self, *, force: bool = False) -> None:
        """Ask the engine to stop; the stream then ends with Cancelled(reason="user").

        An engine that does not stop within about a second is killed (engine.client); with
        `force` (a second Ctrl-C) at once.
        """
        self._stream.cancel("user", force=force)

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        """The turn's events; the answer is saved when the stream ends.

        A consumer that stops reading early (breaks out, is closed, fails) cancels the
        answer: it is saved as cancelled with the text it was shown, without that consumer.
        """
        parts: list[str] = [self.prefix] if self.prefix else []
        first_at: float | None = None
        try:
            async for event in self._events(parts):
                if isinstance(event, Delta) and first_at is None and event.text:
                    first_at = time.perf_counter()  # reasoning counts: it is shown as it streams
                if isinstance(event, Final | Cancelled | Failed):
                    self._finish(event, "".join(parts), first_at)
                yield event
        finally:
            if self.outcome is None:
                self._stream.cancel("user")
                shown = "".join(parts)
                task = asyncio.ensure_future(self._finish_unread(shown, first_at))
                self._background.add(task)
                task.add_done_callback(self._background.discard)

    async def _finish_unread(self, shown: str, first_at: float | None) -> None:
        """Wait for the cancelled stream's end (within a token, or the engine is killed) and save."""
        ignored: list[str] = []
        async for event in self._events(ignored, checkpoint=False):
            if isinstance(event, Final | Cancelled | Failed):
                self._finish(event, shown + ("".join(ignored) if isinstance(event, Final) else ""), first_at)

    async def _events(self, parts: list[str], *, checkpoint: bool = True) -> AsyncIterator[StreamEvent]:
        """The stream's events, with the answer's text gathered into `parts` (and checkpointed)."""
        # Checkpoints and the final save hold the whole message: prefix + new text.
        gid = self.ids.generation_id
        last_checkpoint = 0.0
        async for event in self._stream:
            if isinstance(event, Started):
                self.started = event
            if isinstance(event, ProviderSession):
                self._remember_session(event)
            if isinstance(event, Delta):
                if event.channel == "reasoning":
                    if event.replace:
                        self.reasoning.clear()
                    self.reasoning.append(event.text)
                else:
                    if event.replace:  # the provider rewrote its answer
                        parts[:] = [self.prefix] if self.prefix else []
                    parts.append(event.text)
                now = time.perf_counter()
                # The first checkpoint marks the generation streaming; then about once a
                # second, and only if the previous one is done (a slow disk coalesces them).
                if checkpoint and (now - last_checkpoint >= self._interval or last_checkpoint == 0.0) and (
                    self._checkpoint is None or self._checkpoint.done()
                ):
                    self._checkpoint = self._store.checkpoint(gid, "".join(parts), "".join(self.reasoning))
                    last_checkpoint = now
            yield event

    def _remember_session(self, event: ProviderSession) -> None:
        """Keep the provider's conversation id with the conversation, for its next turn."""
        from app.core.providers import session_key

        saving = asyncio.ensure_future(self._store.update_conversation_settings(
            self.ids.conversation_id, {session_key(event.provider): event.value}))
        self._background.add(saving)

        def done(f: asyncio.Future[None]) -> None:
            self._background.discard(f)
            if not f.cancelled() and f.exception() is not None:
                log.warning("could not keep %s's conversation id: %s", event.provider, f.exception())

        saving.add_done_callback(done)

    def _finish(self, event: Final | Cancelled | Failed, text: str, first_at: float | None) -> None:
        final_token_at = time.perf_counter()
        reasoning = "".join(self.reasoning)
        metrics: dict[str, float | int | None] = {
            "command_latency_ms": self.command_latency_ms,
            "ttft_ms": (first_at - self._started_at) * 1000 if first_at is not None else None,
        }
        if isinstance(event, Final | Cancelled):
            s = event.stats
            metrics.update(tokens_per_s=s.decode_tokens_per_s or None, completion_tokens=s.completion_tokens,
                           prompt_tokens=s.prompt_tokens, cached_tokens=s.cached_tokens, total_ms=s.total_ms,
                           threads=s.threads or None)
        if isinstance(event, Final):
            outcome = TurnOutcome(GenerationState.COMPLETED, text, None, None, None, metrics, reasoning,
                                  event.stop_reason)
        elif isinstance(event, Cancelled):
            outcome = TurnOutcome(GenerationState.CANCELLED, text, event.reason, None, None, metrics, reasoning)
        else:
            outcome = TurnOutcome(GenerationState.FAILED, text, None, event.code, event.message, metrics, reasoning)
        self.outcome = outcome
        self._on_end(self)
        future = self._store.finalize(
            self.ids.generation_id, text=text, state=outcome.state, cancel_reason=outcome.cancel_reason,
            error_code=outcome.error_code, error_message=outcome.error_message, metrics=metrics,
            final_token_at=final_token_at, reasoning=reasoning, stop_reason=outcome.stop_reason,
        )
        wrapped = asyncio.wrap_future(future)

        def settle(f: asyncio.Future[float]) -> None:
            if self.saved.done():
                return
            if f.cancelled():
                self.saved.cancel()
            elif f.exception() is not None:
                log.error("final save of generation %s failed: %s", self.ids.generation_id, f.exception())
                self.saved.set_exception(f.exception())  # type: ignore[arg-type]
            else:
                self.saved.set_result(f.result())

        wrapped.add_done_callback(settle)


@dataclass(frozen=True)
class ContextUse:
    """The context meter's reading: the engine's measurement, and the places in the path the
    next prompt would leave out (what the transcript marks "not in the model's view")."""

    measured: Measured
    out_of_view: frozenset[int] = frozenset()


class Background(Protocol):
    """What the chat service asks of the background jobs' worker (app.core.jobs.JobWorker)."""

    def preempt(self) -> None: ...

    def wake(self) -> None: ...


class ChatService:
    """Ties the store and the engine together for one app (window, CLI or benchmark)."""

    def __init__(self, store: Store, engine: AsyncEngine, *, checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
                 templates: Callable[[str], str | None] | None = None) -> None:
        """`templates(path)`: the chat template a person chose for that model file, if any
        (app.models.ModelLibrary.template_for); the file's own is used otherwise."""
        self.store = store
        self.engine = engine
        self._templates = templates
        self._interval = checkpoint_interval_s
        self._listeners: list[Callable[[ModelState], None]] = []
        self._background: Background | None = None  # app.core.jobs: preempted by every turn
        self._queued: set[asyncio.Future[bool]] = set()
        self._active: set[int] = set()
        self._last_load: LoadModel | None = None
        self._reload: asyncio.Task[None] | None = None
        # The local model's own state; what is shown is GENERATING over it while turns run.
        self._idle = ModelState.NONE
        self.model_state = ModelState.NONE
        self.model_name: str = ""
        self.model_error: str | None = None
        self.model_info: ModelInfo | None = None
        engine.add_listener(self._on_engine_event)
        if engine.model is not None:  # a service made after the model loaded starts ready
            self.model_info, self.model_name = engine.model, display_name(engine.model.path)
            self._idle = self.model_state = ModelState.READY

    def set_background(self, background: Background) -> None:
        """Background jobs yield to every turn (`preempt`, before its command reaches the engine)
        and hear when a turn completed (`wake`: a title may be due)."""
        self._background = background

    def add_listener(self, fn: Callable[[ModelState], None]) -> None:
        """`fn(state)` is called on the loop's thread whenever the model state changes."""
        self._listeners.append(fn)

    async def load(self, path: str, *, n_ctx: int = 4096, n_threads: int | None = None,
                   n_gpu_layers: int | None = None, flash_attn: bool = False,
                   chat_template: str | None = None) -> ModelInfo:
        """Load (or switch to) a model in the engine process; the old one is freed first.

        Raises ModelLoadError with a message for a person.
        """
        if self._active:
            raise EngineUnavailable("busy", "Wait for the answer to finish, or stop it, before switching models.")
        self.model_name = display_name(path)
        self.model_error = None
        self._set_idle(ModelState.LOADING)
        if chat_template is None and self._templates is not None:
            chat_template = self._templates(str(path))
        cmd = LoadModel(path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers,
                        flash_attn=flash_attn, chat_template=chat_template)
        self._last_load = cmd
        return await self.engine.load(cmd)

    async def unload(self) -> None:
        """Free the model's memory; chatting needs a load again."""
        if self._active:
            raise EngineUnavailable("busy", "Wait for the answer to finish, or stop it, before unloading the model.")
        self._last_load = None
        await self.engine.unload()

    async def _reload_after_crash(self) -> None:
        """The engine process died while the model was running: start a new one, reload."""
        if self._last_load is None:
            return
        log.warning("engine process died; reloading %s", self._last_load.path)
        try:
            await self.engine.load(self._last_load)
        except EngineError as e:  # reported through the ModelFailed event and model_error
            log.error("reloading the model after an engine crash failed: %s", e)

    async def start_turn(self, conversation_id: int | None, text: str, *, sampling: Sampling | None = None,
                         route: Route | None = None, settings: ChatSettings | None = None,
                         after: int | None = None) -> Turn:
        """Save the message and a pending answer at the end of the branch shown (or after the
        message `after`, the last one the caller shows), then stream the answer from the local
        model, or from the route's remote provider. The route's filters (stop strings, <think>,
        redaction) default to splitting reasoning only."""
        started_at = time.perf_counter()
        _check_text(text)
        remote = self._remote(route)
        start = await self.store.begin_turn(conversation_id, text, self.label(remote), after=after)
        return self._launch(start.ids, start.history, start.changed, sampling, route, started_at, settings=settings,
                            summary=start.summary)

    async def start_edit(self, message_id: int, text: str, *, sampling: Sampling | None = None,
                         route: Route | None = None, settings: ChatSettings | None = None) -> Turn:
        """Send `text` in place of the user message `message_id`: a new branch beside it with a
        new answer; the old branch stays (store.branches)."""
        started_at = time.perf_counter()
        _check_text(text)
        remote = self._remote(route)
        start = await self.store.begin_edit(message_id, text, self.label(remote))
        return self._launch(start.ids, start.history, start.changed, sampling, route, started_at, settings=settings,
                            summary=start.summary)

    async def start_regenerate(self, message_id: int, *, sampling: Sampling | None = None,
                               route: Route | None = None, settings: ChatSettings | None = None) -> Turn:
        """A new answer beside the answer `message_id`, with a fresh seed so it differs; the old
        answer stays as a sibling branch."""
        started_at = time.perf_counter()
        remote = self._remote(route)
        start = await self.store.begin_regenerate(message_id, self.label(remote))
        fresh = dataclasses.replace(_sampling(sampling, settings), seed=secrets.randbits(31))
        return self._launch(start.ids, start.history, start.changed, fresh, route, started_at, settings=settings,
                            summary=start.summary)

    async def continue_message(self, message_id: int, *, sampling: Sampling | None = None,
                               route: Route | None = None, settings: ChatSettings | None = None) -> Turn:
        """Resume an interrupted, stopped or failed answer in the same message.

        The stream yields only the new text; `Turn.prefix` is the text it continues.
        """
        started_at = time.perf_counter()
        remote = self._remote(route)
        c = await self.store.begin_continue(message_id, self.label(remote))
        return self._launch(c.ids, c.history, c.changed, sampling, route, started_at, continue_text=c.text,
                            settings=settings, summary=c.summary)

    def _remote(self, route: Route | None) -> RemoteSpec | None:
        """The route's remote server, or None for this computer's model (which must be there)."""
        remote = route.remote if route is not None else None
        if remote is None:
            self._require_model()
        return remote

    def _launch(self, ids: TurnIds, history: list[tuple[str, str]], changed: ConversationChange,
                sampling: Sampling | None, route: Route | None, started_at: float, *,
                continue_text: str = "", settings: ChatSettings | None = None,
                summary: Summary | None = None) -> Turn:
        """Hand the engine the saved turn's prompt (the path to the new answer) and start its Turn.

        `settings`: the conversation's (app.core.chat_settings), which its caller read when it
        opened the conversation, so the command path makes no extra read; None: the built-in
        defaults. Their system prompt opens the prompt; `sampling`, when given, replaces theirs.
        """
        remote, filters = (route.remote, route.filters) if route is not None else (None, None)
        self._require_engine()
        if self._background is not None and remote is None:
            self._background.preempt()  # a job's answer stops within a token; this one is queued behind it
        chat = settings or ChatSettings()
        messages, positions = _chat_positions(history, chat.system_prompt)
        chosen = _sampling(sampling, chat)
        stream = self.engine.generate(Generate(ids.generation_id, messages, chosen,
                                               continue_text=continue_text, remote=remote,
                                               filters=filters or FilterConfig(), cache_key=ids.conversation_id,
                                               summary=summary))
        turn = self._started(ids, changed, stream, started_at, prefix=continue_text)
        turn.positions = positions
        if chosen.overflow == "summarize" and remote is None and self.model_info is not None:
            # Summarize before it is needed: once the turn fills half the context (_turn_ended).
            limit = chosen.context_limit if 0 < chosen.context_limit < self.model_info.n_ctx else self.model_info.n_ctx
            turn.summarize_at = limit // 2
        return turn

    async def measure(self, history: list[tuple[str, str]], draft: str,
                      settings: ChatSettings | None = None, summary: Summary | None = None) -> ContextUse:
        """The context meter: how much of the local model's context the next turn would take
        (the path shown, then `draft` as the new message), and which places in the path the
        chat's overflow policy would leave out. Nothing is saved."""
        chat = settings or ChatSettings()
        messages, positions = _chat_positions([*history, ("user", draft)], chat.system_prompt)
        if self.engine.pid is None:
            return ContextUse(Measured(-1, error="No model is loaded."))
        measured = await self.engine.measure(messages, chat.to_sampling(), summary)
        places = frozenset(positions[i] for i in measured.left_out
                           if 0 <= i < len(positions) and 0 <= positions[i] < len(history))
        return ContextUse(measured, places)

    def label(self, remote: RemoteSpec | None) -> str:
        """What the generation record names as its model."""
        if remote is None:
            return self.model_name
        return f"{remote.name}: {remote.model}" if remote.model else remote.name

    def _require_engine(self) -> None:
        """Remote replies run in the engine process too: start it if nothing has yet."""
        if self.engine.pid is None:
            self.engine.start()

    def _require_model(self) -> None:
        """A turn may queue behind a load in progress, but not start with no model at all."""
        if self._idle in (ModelState.ERROR, ModelState.NONE):
            raise EngineUnavailable("no_model", self.model_error or "No model is loaded.")

    def _started(self, ids: TurnIds, changed: ConversationChange, stream: GenerationStream, started_at: float, *,
                 prefix: str = "") -> Turn:
        command_latency_ms = (time.perf_counter() - started_at) * 1000
        self._active.add(ids.generation_id)
        self._publish()
        return Turn(ids=ids, changed=changed, stream=stream, store=self.store, started_at=started_at,
                    command_latency_ms=command_latency_ms, on_end=self._turn_ended,
                    checkpoint_interval_s=self._interval, prefix=prefix)

    def _turn_ended(self, turn: Turn) -> None:
        self._active.discard(turn.ids.generation_id)
        self._publish()
        if turn.outcome is not None and turn.outcome.state is GenerationState.COMPLETED:
            # Its first completed answer: a title from the model, later, off the stream path.
            self._queue(self.store.jobs.enqueue_title(turn.ids.conversation_id))
            used = (turn.started.prompt_tokens if turn.started else 0) + int(
                turn.outcome.metrics.get("completion_tokens") or 0)
            if turn.summarize_at and used >= turn.summarize_at:
                self._queue(self.store.jobs.enqueue_summary(turn.ids.conversation_id))

    def _queue(self, enqueue: Awaitable[bool]) -> None:
        queued = asyncio.ensure_future(enqueue)
        self._queued.add(queued)
        queued.add_done_callback(self._job_queued)

    def _job_queued(self, queued: asyncio.Future[bool]) -> None:
        self._queued.discard(queued)
        if queued.cancelled():  # the process is ending (`hearth ask` done): the job can wait
            return
        if queued.exception() is not None:
            log.warning("queueing a background job failed: %s", queued.exception())
        elif self._background is not None:  # a title may be due, or a job put back may resume
            self._background.wake()

    def _on_engine_event(self, event: EngineEvent) -> None:
        if isinstance(event, ModelLoading):
            self._set_idle(ModelState.LOADING)
        elif isinstance(event, ModelReady):
            self.model_info = event.info
            self.model_name = display_name(event.info.path)
            self.model_error = None
            self._set_idle(ModelState.READY)
        elif isinstance(event, ModelUnloaded):
            self.model_info = None
            self.model_error = None
            self._set_idle(ModelState.NONE)
        elif isinstance(event, ModelFailed):
            was_running = self.model_info is not None
            self.model_info = None
            self.model_error = event.message
            self._set_idle(ModelState.ERROR)
            # Only a model that was running is reloaded: a file that crashes llama.cpp while
            # loading would otherwise crash it again, forever.
            if event.code == "engine_crashed" and was_running:
                self._reload = asyncio.ensure_future(self._reload_after_crash())

    def _set_idle(self, state: ModelState) -> None:
        self._idle = state
        self._publish()

    def _publish(self) -> None:
        """The one place model_state changes: checked, and listeners told of real changes only."""
        state = ModelState.GENERATING if self._active else self._idle
        if state != self.model_state:
            self.model_state = check_model_transition(self.model_state, state)
            for fn in list(self._listeners):
                fn(state)


def _chat(history: list[tuple[str, str]], system_prompt: str = "") -> tuple[ChatMessage, ...]:
    """The prompt's messages: the chat's system prompt first (a template renders it as its
    system turn; its content is tokenized as text, like every message's), then the path. A
    system message saved in the path (an imported chat's) gives way to the chat's own."""
    return _chat_positions(history, system_prompt)[0]


def _chat_positions(history: list[tuple[str, str]], system_prompt: str = ""
                    ) -> tuple[tuple[ChatMessage, ...], tuple[int, ...]]:
    """`_chat`'s messages, and for each its place in `history` (-1: the chat's system prompt)."""
    if not system_prompt.strip():
        return tuple(ChatMessage(role, content) for role, content in history), tuple(range(len(history)))
    kept = [i for i, (role, _) in enumerate(history) if role != "system"]
    return ((ChatMessage("system", system_prompt), *(ChatMessage(*history[i]) for i in kept)),
            (-1, *kept))


def _sampling(sampling: Sampling | None, settings: ChatSettings | None) -> Sampling:
    """An explicit `sampling` (a benchmark's, the CLI's seed), else the chat's settings."""
    if sampling is not None:
        return sampling
    return (settings or ChatSettings()).to_sampling()


def _check_text(text: str) -> None:
    """InputError for a message that cannot be sent (nothing is saved): empty, or over the size
    every door takes (store.limits)."""
    if not text.strip():
        raise InputError("bad_input", "Type a message first: an empty message cannot be sent.")
    if (problem := too_long_message(text)) is not None:
        raise InputError("message_too_long", problem)
