"""The view-model of one conversation, a QObject with typed signals.

`ConversationViewModel` owns one conversation: its messages, the pending assistant message,
the stream feeding it, and its route (this computer's model, or a remote provider and
model). Deltas are coalesced and released at most once per frame, per channel (answer and
reasoning), so the view appends one chunk per frame however fast tokens arrive. The route
is resolved through the Router just before each turn, so a provider edited or a key stored
a moment ago is used at once.

Must not: create or touch widgets, block the event loop (the Router reads a file and the
keychain: it runs in a worker thread), or write to the store beyond the conversation's
route and chat settings (the ChatService persists turns).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.chat_settings import ChatSettings
from app.core.documents.chat_documents import ChatDocuments, DocumentRetrieval
from app.core.errors import InputError, describe
from app.core.message_view import MessageView, from_outcome, from_row, with_sources
from app.core.policies import Choice, Planner, Policy, choice_from_settings, choice_settings
from app.core.ports import ChatBackend, ConversationStore, TurnHandle
from app.core.routes import LOCAL, LOCAL_ROUTE, Route, RouteChoice, Router
from app.core.tool_steps import ToolStepView, attach_steps, prompt_messages
from engine.commands import ChatMessage
from engine.events import Cancelled, Delta, Failed, Final, Measured, Queued, Reading, Started
from engine.states import GenerationState

if TYPE_CHECKING:
    from app.ui.viewmodels.tool_session import ToolSession, ToolUse
    from engine.commands import ToolSpec
    from store.rows import MessageRow

__all__ = ["ConversationViewModel"]

log = logging.getLogger("hearth.ui")

FRAME_MS = 16
_T = TypeVar("_T")


class ConversationViewModel(QObject):
    """One conversation. Only one turn streams at a time; `send` refuses a second."""

    reset = Signal()  # the messages were replaced: render them all again
    message_added = Signal(object)  # a MessageView appended at the end
    text_appended = Signal(str)  # coalesced new text of the last (streaming) message
    message_finished = Signal(object)  # the last message's final MessageView (state, metrics)
    streaming_changed = Signal(bool)
    conversation_id_changed = Signal(object)  # int once the first turn created the conversation
    problem = Signal(str)  # something the person should know (a save failed, ...)
    reasoning_appended = Signal(str)  # coalesced new reasoning (<think>) text of the streaming message
    reasoning_replaced = Signal(str)  # the streaming message's whole reasoning, rewritten
    text_replaced = Signal(str)  # the streaming answer's whole text, rewritten (e.g. after moderation)
    reading = Signal(str)  # "reading your message… 45%" while a long prompt is read; "" once it is
    queue_place = Signal(int)  # the engine's word: this answer waits behind n others (0: its turn came)
    route_changed = Signal(object)  # RouteChoice: where this conversation's answers come from
    row_changed = Signal(object)  # ConversationChange: a turn created or moved this conversation's list row
    tool_steps_changed = Signal(object)  # the last message's MessageView: its tool calls changed (live)

    def __init__(
        self,
        service: ChatBackend,
        store: ConversationStore,
        conversation_id: int | None = None,
        parent: QObject | None = None,
        *,
        router: Router | None = None,
        route: RouteChoice = LOCAL,
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._store = store
        self._conversation_id = conversation_id
        self._router = router  # None: always this computer's model (no remote mode)
        # A saved conversation's route is read in `load`; a new chat's stays pending until
        # its first turn creates the conversation.
        self._route = route
        # A model policy instead of the fixed route (app.core.policies); `_route` is then LOCAL.
        self._policy: Policy | None = None
        self._planner: Planner | None = None  # made on the first turn under a policy (it caches figures)
        self._local = True  # the last turn started here was (or is) answered by this computer's model
        # Its settings (None: a new chat following the default preset); see the end of the class.
        self._chat: ChatSettings | None = None
        self._chat_defaults: Callable[[], ChatSettings] = ChatSettings
        self.documents: ChatDocuments | None = None  # the collections it searches (None: no documents)
        self._messages: list[MessageView] = []
        self._prefix = ""  # text the streaming message already had (Continue)
        self._streamed: list[str] = []  # flushed chunks of the streaming message
        self._pending: list[str] = []  # received, not yet released to the view
        self._reasoning: list[str] = []  # flushed reasoning chunks of the streaming message
        self._pending_reasoning: list[str] = []
        self._replacing: set[str] = set()  # channels whose pending text replaces what was shown
        self._streaming = False
        self.ahead: int | None = None  # the engine's last word on this answer's place in its queue
        # Memory is authoritative once loaded: this app is the store's only writer, and a
        # final save may still be queued (a slow disk) when the person comes back.
        self._loaded = conversation_id is None
        self._turn: TurnHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._saves: set[asyncio.Future[float]] = set()
        self._frame = QTimer(self)
        self._frame.setSingleShot(True)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._flush)
        # Tools (issue 27): where a message gets its tools (None: never any), the session of the
        # message answering now (Stop cancels its step under way), its servers closing.
        self.tool_use: ToolUse | None = None
        self._tools: ToolSession | None = None
        self._tool_route: Route | None = None
        self._closing: set[asyncio.Future[None]] = set()

    # -- state -------------------------------------------------------------------------
    @property
    def conversation_id(self) -> int | None:
        return self._conversation_id

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def route(self) -> RouteChoice:
        return self._route

    @property
    def policy(self) -> Policy | None:
        """The chat's model policy, or None: its fixed `route` answers."""
        return self._policy

    @property
    def messages(self) -> list[MessageView]:
        """A snapshot; the streaming message carries the text released so far."""
        out = list(self._messages)
        if self._streaming and out:
            out[-1] = dataclasses.replace(out[-1], text="".join(self._streamed), reasoning="".join(self._reasoning))
        return out

    def _set_streaming(self, value: bool) -> None:
        if value != self._streaming:
            self._streaming = value
            self.ahead = None
            self.streaming_changed.emit(value)

    def _set_conversation_id(self, value: int | None) -> None:
        if value != self._conversation_id:
            self._conversation_id = value
            self.conversation_id_changed.emit(value)

    # -- actions -----------------------------------------------------------------------
    async def load(self) -> None:
        """Read the saved messages, once; after that memory is never older than the store."""
        if self._loaded or self._conversation_id is None:
            return
        settings = await self._store.conversation_settings(self._conversation_id)
        rows = await self._store.messages(self._conversation_id)
        shown = await self._views(rows)
        self._loaded = True
        self._messages = shown
        self._set_choice(choice_from_settings(settings if self._router else {}))
        self._load_chat_settings(settings)
        if self.documents is not None:
            await self.documents.load(self._conversation_id)
        self.reset.emit()

    async def set_route(self, provider: str | None, model: str | None = None) -> None:
        """Answer this conversation's next turns from `provider` (None: this computer), with
        `model` instead of the provider's own. Saved at once for a saved conversation; a new
        chat keeps it until its first turn. Raises the store's error (the route is then
        back to what it was)."""
        await self.set_choice(RouteChoice.of(provider, model))

    async def set_choice(self, choice: Choice) -> None:
        """A fixed route or a model policy for the next turns, saved as `set_route` saves a route."""
        old: Choice = self._policy if self._policy is not None else self._route
        if choice != old:
            await self._save_or_roll_back(self._set_choice, choice, old, choice_settings(choice))

    def _set_choice(self, choice: Choice) -> None:
        policy, route = (choice, LOCAL) if isinstance(choice, Policy) else (None, choice)
        if policy != self._policy or route != self._route:
            self._policy, self._route = policy, route
            self.route_changed.emit(route)

    def _set_route(self, route: RouteChoice) -> None:
        self._set_choice(route)

    async def _resolve_route(self) -> Route:
        """The route of the next turn; raises ProviderError (a provider removed)."""
        if self._router is None:
            route = LOCAL_ROUTE
        elif self._policy is not None and isinstance(self._router, Router):
            if self._planner is None:
                self._planner = Planner(self._router, self._store.stats.report)  # type: ignore[attr-defined]
            route = await self._planner.route(self._store, self._conversation_id, self._policy)
        else:
            route = await self._router.for_conversation(self._store, self._conversation_id, self._route)
        self._local = route.remote is None  # no turn streams here now: each turn resolves first
        return route

    @property
    def answers_locally(self) -> bool:
        """The answer streaming here (or the last one) comes from this computer's model, which
        answers one chat at a time; a remote provider's never waits for it."""
        return self._local

    async def _save_or_roll_back(
        self, show: Callable[[_T], None], new: _T, old: _T, settings: Mapping[str, object]
    ) -> None:
        """A choice for this chat's next turns (its route, its settings): shown at once, and saved
        at once for a saved conversation (a new chat keeps it until its first turn). On a failed
        save `old` is shown again and the store's error is raised."""
        show(new)
        if self._conversation_id is None:
            return
        try:
            await self._store.update_conversation_settings(self._conversation_id, settings)
        except Exception:
            show(old)
            raise

    async def _save_pending(self, settings: Mapping[str, object], what: str) -> None:
        """The first turn created the conversation: keep the choice it was sent with. A failure
        is said, not raised: the turn is running, only `what` is lost for later turns."""
        if self._conversation_id is None:
            return
        try:
            await self._store.update_conversation_settings(self._conversation_id, settings)
        except Exception as e:
            log.exception("saving this %s failed", what)
            self.problem.emit(f"Could not save this {what}: {describe(e)}")

    async def send(self, text: str) -> None:
        """Command path: the service saves both rows and starts the engine; the stream then
        runs in its own task. Raises the service's InputError / EngineUnavailable, and the
        Router's ProviderError (nothing is sent then), unchanged."""
        if self._streaming:
            raise RuntimeError("a turn is already streaming in this conversation")
        route = await self._resolve_route()
        # The reply hangs from the last message shown: another process may have moved the
        # conversation's branch meanwhile, and the person answers what they see.
        shown = self._messages[-1].message_id if self._messages else None
        # Passages from the chat's collections, only when it uses some (app.core.documents.chat_documents).
        augment = self.documents.augment() if self.documents is not None else None
        session, tools = await self._begin_tools()
        try:
            turn = await self._service.start_turn(
                self._conversation_id,
                text,
                route=route,
                settings=self.chat_settings,
                after=shown,
                augment=augment,
                tools=tools,
            )
        except BaseException:
            if session is not None:
                self._close_later(session)
            raise
        self._tools, self._tool_route = session, route
        created = self._conversation_id is None

        def show() -> None:
            for message in (
                MessageView(role="user", text=text, message_id=turn.ids.user_message_id),
                MessageView(
                    role="assistant", text="", state=GenerationState.QUEUED, message_id=turn.ids.assistant_message_id
                ),
            ):
                self._messages.append(message)
                self.message_added.emit(message)

        self._stream(turn, show)
        if created:
            if self._policy is not None or not self._route.is_local:
                choice = self._policy if self._policy is not None else self._route
                await self._save_pending(choice_settings(choice), "conversation's provider")
            await self._save_pending(self.chat_settings.to_settings(), "chat's settings")
            if self.documents is not None and self._conversation_id is not None:
                try:
                    await self.documents.created(self._conversation_id)
                except Exception as e:
                    log.exception("saving this chat's collections failed")
                    self.problem.emit(f"Could not save which documents this chat uses: {describe(e)}")

    @property
    def can_continue(self) -> bool:
        """The last answer stopped before its end (crash, Stop, error) and can be resumed."""
        return not self._streaming and bool(self._messages) and self._messages[-1].continuable

    async def continue_last(self) -> None:
        """Resume the last answer in place: the transcript is rebuilt once, then streams."""
        if not self.can_continue:
            raise RuntimeError("there is no unfinished answer to continue")
        last = self._messages[-1]
        assert last.message_id is not None
        route = await self._resolve_route()
        turn = await self._service.continue_message(last.message_id, route=route, settings=self.chat_settings)
        self._messages[-1] = MessageView(
            role="assistant",
            text=turn.prefix,
            state=GenerationState.STREAMING,
            message_id=last.message_id,
            reasoning=last.reasoning,
            siblings=last.siblings,
            sources=last.sources,  # a continuation reads the same passages again (ChatService.continue_message)
            retrieval_ms=last.retrieval_ms,
            retrieval_note=last.retrieval_note,
        )
        self._stream(turn, self.reset.emit, turn.prefix, last.reasoning)  # drops the old footer: live again

    # -- branches: edit, regenerate, switch, delete (store.branches) ----------------------
    async def edit(self, message_id: int, text: str) -> None:
        """Send `text` in place of your message `message_id`: a new branch with a new answer is
        shown; the old branch stays, one ◀ away. Raises the service's errors unchanged."""
        i = self._index_of(message_id, "user")
        route = await self._resolve_route()
        augment = self.documents.augment() if self.documents is not None else None  # as for a new message
        session, tools = await self._begin_tools()
        try:
            turn = await self._service.start_edit(
                message_id, text, route=route, settings=self.chat_settings, augment=augment, tools=tools
            )
        except BaseException:
            if session is not None:
                self._close_later(session)
            raise
        self._tools, self._tool_route = session, route
        self._messages[i:] = [
            MessageView(
                role="user",
                text=text,
                message_id=turn.ids.user_message_id,
                siblings=(*(self._messages[i].siblings or (message_id,)), turn.ids.user_message_id),
            ),
            MessageView(
                role="assistant", text="", state=GenerationState.QUEUED, message_id=turn.ids.assistant_message_id
            ),
        ]
        self._stream(turn, self.reset.emit)  # the old branch's tail goes; the new branch is shown

    async def regenerate(self, message_id: int | None = None) -> None:
        """A new answer (fresh seed) in place of the answer `message_id` (default: the last one);
        the old answer stays, one ◀ away."""
        if message_id is None:
            message_id = next((m.message_id for m in reversed(self._messages) if m.role == "assistant"), None)
            if message_id is None:
                raise InputError("bad_input", "There is no answer to regenerate yet.")
        i = self._index_of(message_id, "assistant")
        route = await self._resolve_route()
        augment = self.documents.augment() if self.documents is not None else None  # found again
        session, tools = await self._begin_tools()
        try:
            turn = await self._service.start_regenerate(
                message_id, route=route, settings=self.chat_settings, augment=augment, tools=tools
            )
        except BaseException:
            if session is not None:
                self._close_later(session)
            raise
        self._tools, self._tool_route = session, route
        new = turn.ids.assistant_message_id
        self._messages[i:] = [
            MessageView(
                role="assistant",
                text="",
                state=GenerationState.QUEUED,
                message_id=new,
                siblings=(*(self._messages[i].siblings or (message_id,)), new),
            )
        ]
        self._stream(turn, self.reset.emit)

    async def show_sibling(self, message_id: int, step: int) -> None:
        """Show the branch `step` siblings away from `message_id` (◀ -1, ▶ +1)."""
        target = self._messages[self._index_of(message_id)].sibling(step)
        if target is None:
            return
        await self.wait_idle()  # the last answer's final save lands before the branch is read back
        await self._store.switch_branch(target)
        await self._reload()

    async def delete_message(self, message_id: int) -> int:
        """Delete the message and every reply under it, in every branch; returns how many."""
        self._index_of(message_id)
        await self.wait_idle()
        _, deleted = await self._store.delete_message(message_id)
        await self._reload()
        return deleted

    def _index_of(self, message_id: int, role: str | None = None) -> int:
        """Where the message is shown; refuses while an answer streams here, or a message not shown."""
        if self._streaming:
            raise InputError("bad_input", "Wait for the answer to finish, or stop it, first.")
        for i, m in enumerate(self._messages):
            if m.message_id == message_id and (role is None or m.role == role):
                return i
        raise InputError("bad_input", "That message is not shown any more; open the conversation again.")

    async def _reload(self) -> None:
        if self._conversation_id is None:
            return
        rows = await self._store.messages(self._conversation_id)
        self._messages = await self._views(rows)
        self.reset.emit()

    async def _views(self, rows: list[MessageRow]) -> list[MessageView]:
        """The messages shown of `rows`, each answer with its sources (one read for them all) and
        the tool calls it asked for (the "tool" rows are shown folded under it, not as messages)."""
        steps = attach_steps(rows)
        views = [
            dataclasses.replace(from_row(r), tool_steps=steps[r.id]) if r.id in steps else from_row(r)
            for r in rows
            if r.role in ("user", "assistant")
        ]
        answers = [v.message_id for v in views if v.role == "assistant" and v.message_id is not None]
        return with_sources(views, await self._store.sources_of(answers)) if answers else views

    async def reload(self) -> None:
        """Read the branch shown again: it was switched from outside (search opened a message on
        another branch). Refused while an answer streams here."""
        if self._streaming:
            raise InputError("bad_input", "This chat is answering: wait for the answer to finish, or stop it, first.")
        await self._reload()

    def _stream(self, turn: TurnHandle, show: Callable[[], None], prefix: str = "", reasoning: str = "") -> None:
        """Every turn's stream start (send, Continue, edit, regenerate): the streaming message
        starts from `prefix` and `reasoning` (what a continued answer already had), `show` puts
        the turn's messages on view, then the answer streams in its own task and its final
        save is watched."""
        self._begin(turn, show, prefix, reasoning)
        self._task = asyncio.ensure_future(self._consume(turn))

    def _begin(self, turn: TurnHandle, show: Callable[[], None], prefix: str = "", reasoning: str = "") -> None:
        self._turn = turn
        self._prefix = prefix
        self._streamed, self._pending = [prefix] if prefix else [], []
        self._reasoning, self._pending_reasoning = [reasoning] if reasoning else [], []
        self._replacing.clear()
        show()
        self._set_streaming(True)
        self._set_conversation_id(turn.ids.conversation_id)  # a new chat's first turn created it
        self.row_changed.emit(turn.changed)
        saved = turn.saved
        self._saves.add(saved)
        saved.add_done_callback(self._on_saved)

    def stop(self) -> None:
        """Ask the engine to stop; the stream then ends with Cancelled(reason="user"). Between
        two steps of the tool loop (a tool running, the person being asked) the step is cancelled:
        the tool and its server's process end, the consent dialog closes, nothing more starts."""
        if self._tools is not None and self._tools.stop():
            return
        if self._turn is not None and self._streaming:
            self._turn.cancel()

    @property
    def turn(self) -> TurnHandle | None:
        """The last turn started here (the benchmark reads its engine figures)."""
        return self._turn

    async def wait_streamed(self) -> None:
        """Until the current stream has been consumed (its saves may still be pending)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def wait_idle(self) -> None:
        """Until the stream has ended and every save this view-model started is durable."""
        if self._task is not None:
            await asyncio.shield(self._task)
        if self._saves:
            await asyncio.gather(*self._saves, return_exceptions=True)
        if self._closing:  # the tool servers a message started
            await asyncio.gather(*self._closing, return_exceptions=True)

    # -- stream path -------------------------------------------------------------------
    async def _consume(self, turn: Any) -> None:
        """Stream the turn; with tools, follow each step it asks for and stream the next one."""
        session = self._tools
        try:
            await self._stream_one(turn)
            while session is not None and _asks_for_tools(turn):
                self.message_finished.emit(self._messages[-1])  # its footer, then its calls under it
                turn = await session.next_step(
                    turn,
                    route=self._tool_route,
                    settings=self.chat_settings,
                    show=self._show_steps,
                    say=self.problem.emit,
                )
                if turn is None:
                    break
                self._begin(turn, functools.partial(self._add_answer, turn))
                await self._stream_one(turn)
        finally:  # whatever failed above, Stop does not stay up and Send comes back
            self._turn = None
            self._tools = None
            if session is not None:
                self._close_later(session)
            self._set_streaming(False)
            self.message_finished.emit(self._messages[-1])

    async def _stream_one(self, turn: Any) -> None:
        last: Any = None
        try:
            async for event in turn:
                if isinstance(event, Delta):
                    if event.text or event.replace:
                        self._take(event)
                elif isinstance(event, Queued):
                    # Its place in the engine's one queue, which other front-ends (hearth ask,
                    # hearth serve, another window) share: more than this window knows of itself.
                    self.ahead = event.ahead
                    self.queue_place.emit(event.ahead)
                elif isinstance(event, Reading):
                    self.reading.emit(f"reading your message… {event.done * 100 // max(1, event.total)}%")
                elif isinstance(event, Started):
                    self.reading.emit("")
                    self._messages[-1] = self._messages[-1].with_state(GenerationState.STREAMING)
                    self._mark_out_of_view(turn.out_of_view(event))
                elif isinstance(event, Final | Cancelled | Failed):
                    last = event
        except Exception as e:  # the contract says this cannot happen; never leave Stop up
            log.exception("the stream broke")
            last = Failed(generation_id=-1, code="stream_error", message=str(e) or type(e).__name__)
        finally:
            self._frame.stop()
            self._flush()
            self._show_final(turn, last)

    # -- the tool loop (app.core.tool_loop through app.ui.viewmodels.tool_session) -------------
    async def _begin_tools(self) -> tuple[ToolSession | None, tuple[ToolSpec, ...]]:
        """The session of a message about to be sent, and the tools it offers the model."""
        if self.tool_use is None:
            return None, ()
        session = await self.tool_use.begin(self, self._service)
        if session is None:
            return None, ()
        try:
            tools = await session.offer()
        except BaseException:
            self._close_later(session)
            raise
        for problem in session.problems:  # said once; the answer goes on with the other tools
            self.problem.emit(f"A tool server could not be reached ({problem}); this answer goes on without it.")
        return session, tools

    def _show_steps(self, steps: tuple[ToolStepView, ...]) -> None:
        """The calls of the last answer (the one that asked for them), as they go."""
        self._messages[-1] = dataclasses.replace(self._messages[-1], tool_steps=steps)
        self.tool_steps_changed.emit(self._messages[-1])

    def _add_answer(self, turn: TurnHandle) -> None:
        message = MessageView(
            role="assistant", text="", state=GenerationState.QUEUED, message_id=turn.ids.assistant_message_id
        )
        self._messages.append(message)
        self.message_added.emit(message)

    def _close_later(self, session: ToolSession) -> None:
        """End the message's tool servers off the stream path: Send comes back at once."""
        closing = asyncio.ensure_future(session.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def _show_final(self, turn: Any, last: Any) -> None:
        """The finished answer as the transcript keeps it: text, state, figures and sources."""
        text = "".join(self._streamed)
        was = self._messages[-1]
        final = from_outcome(text, turn.outcome, last, turn.augmented)
        if turn.augmented is None:  # a continued answer keeps the sources it had
            final = dataclasses.replace(
                final, sources=was.sources, retrieval_ms=was.retrieval_ms, retrieval_note=was.retrieval_note
            )
        self._messages[-1] = dataclasses.replace(
            final,
            message_id=turn.ids.assistant_message_id,
            reasoning="".join(self._reasoning),
            siblings=was.siblings,
        )

    def _mark_out_of_view(self, places: frozenset[int]) -> None:
        """Mark the messages this turn's prompt left out (and unmark the rest): redrawn at once
        when that changes what is marked, which happens only when a chat outgrows the context."""
        marked = [
            dataclasses.replace(m, out_of_view=i in places) if m.out_of_view != (i in places) else m
            for i, m in enumerate(self._messages)
        ]
        if any(a is not b for a, b in zip(marked, self._messages, strict=True)):
            self._messages = marked
            self.reset.emit()

    def _take(self, event: Delta) -> None:
        pending = self._pending_reasoning if event.channel == "reasoning" else self._pending
        if event.replace:  # what this frame releases replaces the channel's text so far
            pending.clear()
            self._replacing.add(event.channel)
        pending.append(event.text)
        if not self._frame.isActive():
            self._frame.start()

    def _flush(self) -> None:
        # Reasoning first: it is shown above the answer and, in a model's output, precedes it.
        if self._pending_reasoning or "reasoning" in self._replacing:
            chunk = "".join(self._pending_reasoning)
            self._pending_reasoning.clear()
            if "reasoning" in self._replacing:
                self._reasoning = [chunk]
                self.reasoning_replaced.emit(chunk)
            else:
                self._reasoning.append(chunk)
                self.reasoning_appended.emit(chunk)
        if self._pending or "answer" in self._replacing:
            chunk = "".join(self._pending)
            self._pending.clear()
            if "answer" in self._replacing:
                self._streamed = [self._prefix, chunk] if self._prefix else [chunk]
                self.text_replaced.emit("".join(self._streamed))
            else:
                self._streamed.append(chunk)
                self.text_appended.emit(chunk)
        self._replacing.clear()

    def _on_saved(self, fut: asyncio.Future[float]) -> None:
        self._saves.discard(fut)
        if fut.cancelled():
            return
        err = fut.exception()
        if err is not None:
            log.error("saving the answer failed", exc_info=err)
            self.problem.emit(f"Could not save the answer: {describe(err)}")

    async def measure(self, draft: str, editing: int | None = None) -> Measured | None:
        """The context meter's numbers for the next turn: this chat's path and `draft` (None
        for a remote route: its server has a context of its own). `editing`: your message whose
        new text `draft` is; that turn's path ends before it (the edit replaces it and what
        follows). The messages that turn would leave out are marked, so a reopened chat shows them too."""
        if not self._route.is_local or (self._policy is not None and self._policy.kind != "local-first"):
            return None
        shown = list(self._messages)
        path = shown
        if editing is not None:
            path = shown[: next((i for i, m in enumerate(shown) if m.message_id == editing), len(shown))]
        summary = None
        if (
            self.chat_settings.overflow == "summarize"
            and self._conversation_id is not None
            and path
            and (last := path[-1].message_id) is not None
        ):
            summary = await self._store.summary(self._conversation_id, through_message_id=last)
        # An answer's tool calls and their results are in the prompt too (the transcript folds them
        # under the answer): `origin` maps each prompt message back to the message shown.
        history: list[ChatMessage] = []
        origin: list[int] = []
        for i, m in enumerate(path):
            for message in prompt_messages(m.role, m.text, m.tool_steps):
                history.append(message)
                origin.append(i)
        use = await self._service.measure(history, draft, self.chat_settings, summary)
        if not use.measured.error and not self.streaming and self._messages == shown:  # still the same chat
            self._mark_out_of_view(frozenset(origin[j] for j in use.out_of_view if 0 <= j < len(origin)))
        return use.measured

    # -- per-chat settings (app.core.chat_settings) ----------------------------------------
    # Read with the messages in `load` (no extra read on the command path) and passed to every
    # turn: send, Continue, edit, regenerate. A new chat starts from the default preset and
    # keeps its settings until its first turn creates the conversation, as the route does.
    chat_settings_changed = Signal(object)  # ChatSettings: loaded, edited, or put back after a failed save

    @property
    def chat_settings(self) -> ChatSettings:
        return self._chat if self._chat is not None else self._chat_defaults()

    def use_documents(self, retrieval: DocumentRetrieval) -> None:
        """This chat may search a person's documents (read with its messages in `load`)."""
        self.documents = ChatDocuments(retrieval)

    def use_chat_defaults(self, defaults: Callable[[], ChatSettings]) -> None:
        """Where new chats' settings come from (the default preset); a saved conversation
        without settings of its own uses them too."""
        self._chat_defaults = defaults

    async def set_chat_settings(self, settings: ChatSettings) -> None:
        """Use `settings` for this chat's next turns: saved at once for a saved conversation, kept
        until the first turn for a new one. InputError for bad values (nothing changes); on a
        failed save the old settings come back and the store's error is raised."""
        settings.checked()
        if settings != self.chat_settings:
            await self._save_or_roll_back(self._set_chat_settings, settings, self.chat_settings, settings.to_settings())

    def _set_chat_settings(self, settings: ChatSettings) -> None:
        if settings != self._chat:
            self._chat = settings
            self.chat_settings_changed.emit(settings)

    def _load_chat_settings(self, settings: dict[str, object]) -> None:
        chat, bad = ChatSettings.from_settings(settings, base=self._chat_defaults())
        self._set_chat_settings(chat)
        if bad:
            self.problem.emit(
                f"Some of this chat's settings could not be read ({', '.join(bad)}); "
                "the default preset's are used for those."
            )


def _asks_for_tools(turn: Any) -> bool:
    outcome = turn.outcome
    return outcome is not None and outcome.state is GenerationState.COMPLETED and bool(outcome.tool_calls)
