"""The chat service: the command path, shared by the CLI, the window and the benchmark. No Qt here.

Command path: validate, create the user message and a pending assistant message in one
small store transaction, send a `Generate` to the engine; every way of starting a turn (a new
message, an edit, a regeneration, a continuation) goes through the one skeleton `_start`. The
stream path and the product state are the started turn's (app.core.turn.Turn).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.core.chat_settings import ChatSettings
from app.core.errors import InputError
from app.core.fallback import FallbackStream
from app.core.model_state import ModelState, check_model_transition
from app.core.models.library import display_name
from app.core.routes import Route
from app.core.turn import CHECKPOINT_INTERVAL_S, Turn
from engine.client import AsyncEngine, GenerationStream
from engine.commands import ChatMessage, Generate, LoadModel, RemoteSpec, Sampling, Summary, ToolChoice, ToolSpec
from engine.errors import EngineError, EngineUnavailable
from engine.events import (
    EngineEvent,
    Measured,
    ModelFailed,
    ModelInfo,
    ModelLoading,
    ModelReady,
    ModelUnloaded,
)
from engine.filters import FilterConfig
from engine.states import GenerationState
from store.continuation import Continuation
from store.limits import too_long_message
from store.rows import Answerer

if TYPE_CHECKING:
    from app.core.documents.retrieval import Augmented
    from store import ConversationChange, Store, ToolReply, TurnIds, TurnStart
    from store.sources import Source

    # The retrieval flow's hook: (the person's message, the characters passages may take) -> the
    # message the model reads and what it found (app.core.documents.retrieval.Retriever.augment).
    Augment = Callable[[str, int], Awaitable[Augmented]]

__all__ = ["ChatService"]

log = logging.getLogger(__name__)


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

    def __init__(
        self,
        store: Store,
        engine: AsyncEngine,
        *,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        templates: Callable[[str], str | None] | None = None,
    ) -> None:
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
        # Answering through another Hearth process's engine (app.core.engine_share): this
        # computer's model is that one, reached over its socket; None: this process's own engine.
        self.attached: RemoteSpec | None = None
        engine.add_listener(self._on_engine_event)
        if engine.model is not None:  # a service made after the model loaded starts ready
            self.model_info, self.model_name = engine.model, display_name(engine.model.path)
            self._idle = self.model_state = ModelState.READY

    def set_background(self, background: Background) -> None:
        """Background jobs yield to every turn (`preempt`, before its command reaches the engine)
        and hear when a turn completed (`wake`: a title may be due)."""
        self._background = background

    def attach(self, spec: RemoteSpec | None, name: str = "") -> None:
        """Answer this computer's chats through another Hearth process's engine (`spec`: its
        socket, app.core.engine_share.host_route), shown as `name`; None: no longer (its host went
        away, or a model of this process's own is loaded: `load` detaches)."""
        self.attached = spec
        if spec is not None:
            self.model_info, self.model_name, self.model_error = None, name or spec.name, None
            self._set_idle(ModelState.LOADING)  # attaching is this process's load: none -> ready is refused
            self._set_idle(ModelState.READY)
        elif self._idle is ModelState.READY and self.model_info is None:
            self._set_idle(ModelState.NONE)

    def add_listener(self, fn: Callable[[ModelState], None]) -> None:
        """`fn(state)` is called on the loop's thread whenever the model state changes."""
        self._listeners.append(fn)

    async def load(
        self,
        path: str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        flash_attn: bool | None = False,
        chat_template: str | None = None,
    ) -> ModelInfo:
        """Load (or switch to) a model in the engine process; the old one is freed first.

        Raises ModelLoadError with a message for a person.
        """
        if self._active:
            raise EngineUnavailable("busy", "Wait for the answer to finish, or stop it, before switching models.")
        self.attached = None  # a model of its own from now on
        self.model_name = display_name(path)
        self.model_error = None
        self._set_idle(ModelState.LOADING)
        if chat_template is None and self._templates is not None:
            chat_template = self._templates(str(path))
        cmd = LoadModel(
            path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            flash_attn=flash_attn,
            chat_template=chat_template,
        )
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

    async def start_turn(
        self,
        conversation_id: int | None,
        text: str,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
        after: int | None = None,
        augment: Augment | None = None,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice = "auto",
    ) -> Turn:
        """Save the message and a pending answer at the end of the branch shown (or after the
        message `after`, the last one the caller shows), then stream the answer from the local
        model, or from the route's remote provider. The route's filters (stop strings, <think>,
        redaction) default to splitting reasoning only. `augment`: the retrieval flow (the chat
        uses collections of documents): once the rows are saved, the message the model reads
        becomes what it returns (the person's words, then passages in at most the given number of
        characters); the stored message stays the person's words. `tools`: what the model may
        call (app.core.tool_loop runs the calls and starts the next step, `start_tool_step`)."""
        return await self._start(
            lambda model: self.store.begin_turn(conversation_id, text, model, after=after),
            sampling,
            route,
            settings,
            text=text,
            augment=augment,
            tools=tools,
            tool_choice=tool_choice,
        )

    async def start_tool_step(
        self,
        message_id: int,
        replies: Sequence[ToolReply],
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice = "auto",
    ) -> Turn:
        """The tool loop's next model step: the results of the answer `message_id`'s calls saved
        under it, and a new answer after them that reads them (store.tool_writes), streamed like
        any turn."""
        return await self._start(
            lambda model: self.store.begin_tool_step(message_id, replies, model),
            sampling,
            route,
            settings,
            tools=tools,
            tool_choice=tool_choice,
        )

    async def start_edit(
        self,
        message_id: int,
        text: str,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
        augment: Augment | None = None,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice = "auto",
    ) -> Turn:
        """Send `text` in place of the user message `message_id`: a new branch beside it with a
        new answer; the old branch stays (store.branches). `augment`: as for start_turn."""
        return await self._start(
            lambda model: self.store.begin_edit(message_id, text, model),
            sampling,
            route,
            settings,
            text=text,
            augment=augment,
            tools=tools,
            tool_choice=tool_choice,
        )

    async def start_regenerate(
        self,
        message_id: int,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
        augment: Augment | None = None,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice = "auto",
    ) -> Turn:
        """A new answer beside the answer `message_id`, with a fresh seed so it differs; the old
        answer stays as a sibling branch. `augment`: passages for the question it answers, found
        again (the files may have changed)."""
        return await self._start(
            lambda model: self.store.begin_regenerate(message_id, model),
            sampling,
            route,
            settings,
            fresh_seed=True,
            augment=augment,
            tools=tools,
            tool_choice=tool_choice,
        )

    async def continue_message(
        self,
        message_id: int,
        *,
        sampling: Sampling | None = None,
        route: Route | None = None,
        settings: ChatSettings | None = None,
    ) -> Turn:
        """Resume an interrupted, stopped or failed answer in the same message.

        The stream yields only the new text; `Turn.prefix` is the text it continues. An answer that
        was given passages reads the same ones again, numbered as before (the stored question holds
        only the person's words, and the text so far may cite [1]); its sources stay as stored.
        """
        sources = await self.store.sources(message_id)
        return await self._start(
            lambda model: self.store.begin_continue(message_id, model),
            sampling,
            route,
            settings,
            augment=_given_again(sources) if sources else None,
        )

    async def _start(
        self,
        begin: Callable[[Answerer], Awaitable[TurnStart | Continuation]],
        sampling: Sampling | None,
        route: Route | None,
        settings: ChatSettings | None,
        *,
        text: str | None = None,
        fresh_seed: bool = False,
        augment: Augment | None = None,
        tools: Sequence[ToolSpec] = (),
        tool_choice: ToolChoice = "auto",
    ) -> Turn:
        """Every turn's command path: timed from here (command latency), `text` checked, the local
        model or the route's remote chosen (local-first: its fallback when no local model can answer),
        the rows saved by `begin(who answers: model label, route, why)` in one store transaction,
        then launched. `fresh_seed`: a regeneration, which must differ."""
        started_at = time.perf_counter()
        if text is not None:
            _check_text(text)
        route = self._local_or_fallback(route)
        remote = self._remote(route)
        start = await begin(self._answerer(route, remote))
        if fresh_seed:
            sampling = dataclasses.replace(_sampling(sampling, settings), seed=secrets.randbits(31))
        continue_text = start.text if isinstance(start, Continuation) else ""
        history, augmented = start.history, None
        # The question the answer is for: the last user message (the one sent, edited, or before
        # the answer regenerated or continued). Its passages go with it in the prompt only.
        asked = next((i for i in range(len(history) - 1, -1, -1) if history[i].role == "user"), None)
        if augment is not None and asked is not None:
            question = text if text is not None else history[asked].content
            augmented = await augment(question, self._passage_chars(remote))
            history = [*history[:asked], ChatMessage("user", augmented.prompt_text), *history[asked + 1 :]]
            started_at += augmented.retrieval_ms / 1000  # command latency leaves retrieval out: it has its own
        turn = self._launch(
            start.ids,
            history,
            start.changed,
            sampling,
            route,
            started_at,
            continue_text=continue_text,
            settings=settings,
            summary=start.summary,
            tools=tuple(tools),
            tool_choice=tool_choice,
        )
        # A continuation's passages are the ones it had: its sources and figures stay as stored.
        turn.augmented = None if isinstance(start, Continuation) else augmented
        if turn.augmented is not None:
            self._keep_sources(start.ids, turn.augmented)
        return turn

    def _keep_sources(self, ids: TurnIds, augmented: Augmented) -> None:
        """The answer's sources and retrieval figures, saved beside it (not awaited: the writer
        saves them before the answer's checkpoints, off the stream path)."""
        from app.core.documents.retrieval import stored_sources

        sources = stored_sources(augmented)
        note = augmented.note[:500] if augmented.note else None
        saved = self.store.set_sources(
            ids.assistant_message_id,
            ids.generation_id,
            sources,
            retrieval_ms=augmented.retrieval_ms,
            retrieval_note=note,
        )
        saved.add_done_callback(_log_failure)

    def _passage_chars(self, remote: RemoteSpec | None) -> int:
        """The characters of passages a turn may carry: about a quarter of the local model's context
        (3 characters a token, a low guess for prose), so the conversation keeps the rest; a
        remote model's context is not known here, and gets 12,000 (4,000 tokens or so)."""
        if remote is None and self.model_info is not None:
            return max(1_000, int(self.model_info.n_ctx * 0.25 * 3))
        return 12_000

    def _local_or_fallback(self, route: Route | None) -> Route | None:
        """local-first's route (app.core.policies): the local model, or its fallback when this
        computer has no model that can answer (none loaded, or it failed to load)."""
        if route is None or route.remote is not None or route.fallback is None or self.attached is not None:
            return route
        if self._idle is ModelState.NONE:
            why = "no local model is loaded"
        elif self._idle is ModelState.ERROR:
            error = " ".join((self.model_error or "").split()).split(". ")[0].rstrip(".")  # its first sentence
            why = f"the local model failed to load ({error[:200]})" if error else "the local model failed to load"
        else:
            return route
        return dataclasses.replace(route.fallback, reason=f"local-first: fell back because {why}")

    def _answerer(self, route: Route | None, remote: RemoteSpec | None) -> Answerer:
        """Who answers, as the generation row records it: the model label, the route and why."""
        if route is None:
            return Answerer(self.label(remote), "local", "fixed")
        return Answerer(self.label(remote), dataclasses.replace(route, remote=remote).name, route.reason)

    def _remote(self, route: Route | None) -> RemoteSpec | None:
        """The route's remote server, or None for this computer's model (which must be there;
        attached: the other process's engine that runs it)."""
        remote = route.remote if route is not None else None
        if remote is None and self.attached is not None:
            return self.attached
        if remote is None:
            self._require_model()
        return remote

    def _launch(
        self,
        ids: TurnIds,
        history: list[ChatMessage],
        changed: ConversationChange,
        sampling: Sampling | None,
        route: Route | None,
        started_at: float,
        *,
        continue_text: str = "",
        settings: ChatSettings | None = None,
        summary: Summary | None = None,
        tools: tuple[ToolSpec, ...] = (),
        tool_choice: ToolChoice = "auto",
    ) -> Turn:
        """Hand the engine the saved turn's prompt (the path to the new answer) and start its Turn.

        `settings`: the conversation's (app.core.chat_settings), which its caller read when it
        opened the conversation, so the command path makes no extra read; None: the built-in
        defaults. Their system prompt opens the prompt; `sampling`, when given, replaces theirs.
        """
        remote, filters = (route.remote, route.filters) if route is not None else (None, None)
        if remote is None and self.attached is not None:  # another process's engine: its queue is fair
            remote = self.attached
        self._require_engine()
        if self._background is not None and remote is None:
            self._background.preempt()  # a job's answer stops within a token; this one is queued behind it
        chat = settings or ChatSettings()
        messages, positions = _chat_positions(history, chat.system_prompt)
        chosen = _sampling(sampling, chat)
        command = Generate(
            ids.generation_id,
            messages,
            chosen,
            continue_text=continue_text,
            remote=remote,
            filters=filters or FilterConfig(),
            cache_key=ids.conversation_id,
            summary=summary,
            tools=tools,
            tool_choice=tool_choice if tools else "auto",
        )
        stream = self.engine.generate(command)
        fallback = route.fallback if route is not None and (remote is None or remote.uds) else None
        if fallback is not None and route is not None:  # local-first: the local model may still refuse it
            stream = FallbackStream(
                self.engine, stream, command, fallback, queue_limit_s=route.queue_limit_s, started_at=started_at
            )
        turn = self._started(ids, changed, stream, started_at, prefix=continue_text)
        turn.positions = positions
        turn.answerer = self._answerer(route, remote)
        if isinstance(stream, FallbackStream) and fallback is not None:
            stream.on_switch = functools.partial(self._fell_back, turn, fallback)
        if chosen.overflow == "summarize" and remote is None and self.model_info is not None:
            # Summarize before it is needed: once the turn fills half the context (_turn_ended).
            limit = chosen.context_limit if 0 < chosen.context_limit < self.model_info.n_ctx else self.model_info.n_ctx
            turn.summarize_at = limit // 2
        return turn

    def _fell_back(self, turn: Turn, fallback: Route, why: str) -> None:
        """local-first's fallback answers the turn instead (app.core.fallback): the answer's
        generation records it (queued on the writer: it lands before the answer's saves)."""
        turn.answerer = Answerer(self.label(fallback.remote), fallback.name, why)
        saved = self.store.set_route(turn.ids.generation_id, turn.answerer)
        saved.add_done_callback(_log_failure)

    async def measure(
        self,
        history: Sequence[ChatMessage],
        draft: str,
        settings: ChatSettings | None = None,
        summary: Summary | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> ContextUse:
        """The context meter: how much of the local model's context the next turn would take
        (the path shown, then `draft` as the new message), and which places in the path the
        chat's overflow policy would leave out. Nothing is saved."""
        chat = settings or ChatSettings()
        messages, positions = _chat_positions([*history, ChatMessage("user", draft)], chat.system_prompt)
        if self.attached is not None:
            return ContextUse(
                Measured(-1, error="The model runs in another Hearth process: its context is not measured here.")
            )
        if self.engine.pid is None:
            return ContextUse(Measured(-1, error="No model is loaded."))
        measured = await self.engine.measure(messages, chat.to_sampling(), summary, tools=tuple(tools))
        places = frozenset(
            positions[i] for i in measured.left_out if 0 <= i < len(positions) and 0 <= positions[i] < len(history)
        )
        return ContextUse(measured, places)

    def label(self, remote: RemoteSpec | None) -> str:
        """What the generation record names as its model."""
        if remote is None:
            return self.model_name
        if remote.uds is not None:  # another Hearth's engine (app.core.engine_share): the model itself
            return remote.name
        return f"{remote.name}: {remote.model}" if remote.model else remote.name

    def _require_engine(self) -> None:
        """Remote replies run in the engine process too: start it if nothing has yet."""
        if self.engine.pid is None:
            self.engine.start()

    def _require_model(self) -> None:
        """A turn may queue behind a load in progress, but not start with no model at all."""
        if self._idle in (ModelState.ERROR, ModelState.NONE):
            raise EngineUnavailable("no_model", self.model_error or "No model is loaded.")

    def _started(
        self,
        ids: TurnIds,
        changed: ConversationChange,
        stream: GenerationStream,
        started_at: float,
        *,
        prefix: str = "",
    ) -> Turn:
        command_latency_ms = (time.perf_counter() - started_at) * 1000
        self._active.add(ids.generation_id)
        self._publish()
        return Turn(
            ids=ids,
            changed=changed,
            stream=stream,
            store=self.store,
            started_at=started_at,
            command_latency_ms=command_latency_ms,
            on_end=self._turn_ended,
            checkpoint_interval_s=self._interval,
            prefix=prefix,
        )

    def _turn_ended(self, turn: Turn) -> None:
        self._active.discard(turn.ids.generation_id)
        self._publish()
        if turn.outcome is not None and turn.outcome.state is GenerationState.COMPLETED:
            # Its first completed answer: a title from the model, later, off the stream path.
            self._queue(self.store.jobs.enqueue_title(turn.ids.conversation_id))
            used = (turn.started.prompt_tokens if turn.started else 0) + int(
                turn.outcome.metrics.get("completion_tokens") or 0
            )
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


def _log_failure(saved: concurrent.futures.Future[None]) -> None:
    if not saved.cancelled() and saved.exception() is not None:
        log.error("an answer's sources or route could not be saved: %s", saved.exception())


def _chat(history: Sequence[ChatMessage], system_prompt: str = "") -> tuple[ChatMessage, ...]:
    """The prompt's messages: the chat's system prompt first (a template renders it as its
    system turn; its content is tokenized as text, like every message's), then the path. A
    system message saved in the path (an imported chat's) gives way to the chat's own."""
    return _chat_positions(history, system_prompt)[0]


def _chat_positions(
    history: Sequence[ChatMessage], system_prompt: str = ""
) -> tuple[tuple[ChatMessage, ...], tuple[int, ...]]:
    """`_chat`'s messages, and for each its place in `history` (-1: the chat's system prompt)."""
    if not system_prompt.strip():
        return tuple(history), tuple(range(len(history)))
    kept = [i for i, message in enumerate(history) if message.role != "system"]
    return ((ChatMessage("system", system_prompt), *(history[i] for i in kept)), (-1, *kept))


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


def _given_again(sources: Sequence[Source]) -> Augment:
    """The passages an answer was given (store.sources), for the prompt of its continuation."""

    async def augment(question: str, max_chars: int) -> Augmented:
        from app.core.documents.retrieval import Augmented, as_found, with_passages

        text, used = with_passages(question, as_found(sources), max_chars=max_chars)
        return Augmented(text, used, 0.0, None)

    return augment
