"""What the view-models need of the chat service and the store, as Protocols.

The real ChatService and Store satisfy them, and so do the scripted fakes the UI tests use
(tests/ui_fakes.py), which mypy checks against these in CI: a fake that drifts from the
real thing fails the type check instead of passing tests it should fail. No Qt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from app.core.chat_service import ContextUse
from app.core.chat_settings import ChatSettings
from app.core.model_state import ModelState
from app.core.routes import Route
from app.core.turn import TurnOutcome
from engine.commands import ChatMessage, Sampling, Summary, ToolChoice, ToolSpec
from engine.events import ModelInfo, Started, StreamEvent
from store.branches import Fork
from store.changes import ListChanges, ListMark
from store.exchange import ExchangeConversation
from store.rows import ConversationChange, ConversationRow, ListKey, MessageRow, TurnIds
from store.search import SearchHit
from store.sources import Source

if TYPE_CHECKING:
    from app.core.chat_service import Augment
    from app.core.documents.retrieval import Augmented

__all__ = ["ChatBackend", "ConversationStore", "TurnHandle"]


class TurnHandle(Protocol):
    """One streaming answer: iterate it for events; `saved` resolves when it is durable."""

    ids: TurnIds
    changed: ConversationChange  # the conversation's row after the turn's first write
    prefix: str
    outcome: TurnOutcome | None
    saved: asyncio.Future[float]
    augmented: Augmented | None  # what retrieval gave the answer (None: the chat uses no documents)

    def cancel(self, *, force: bool = False) -> None: ...

    def out_of_view(self, started: Started) -> frozenset[int]: ...

    def __aiter__(self) -> AsyncIterator[StreamEvent]: ...


class ChatBackend(Protocol):
    """What the window uses of app.core.chat_service.ChatService."""

    model_state: ModelState
    model_name: str
    model_error: str | None
    model_info: ModelInfo | None

    def add_listener(self, fn: Callable[[ModelState], None]) -> None: ...

    async def load(
        self,
        path: str,
        *,
        n_ctx: int = ...,
        n_threads: int | None = ...,
        n_gpu_layers: int | None = ...,
        flash_attn: bool | None = ...,
        chat_template: str | None = ...,
    ) -> ModelInfo: ...

    async def measure(
        self,
        history: Sequence[ChatMessage],
        draft: str,
        settings: ChatSettings | None = ...,
        summary: Summary | None = ...,
    ) -> ContextUse: ...

    async def start_turn(
        self,
        conversation_id: int | None,
        text: str,
        *,
        sampling: Sampling | None = ...,
        route: Route | None = ...,
        settings: ChatSettings | None = ...,
        after: int | None = ...,
        augment: Augment | None = ...,
        tools: Sequence[ToolSpec] = ...,
        tool_choice: ToolChoice = ...,
    ) -> TurnHandle: ...

    async def continue_message(
        self,
        message_id: int,
        *,
        sampling: Sampling | None = ...,
        route: Route | None = ...,
        settings: ChatSettings | None = ...,
    ) -> TurnHandle: ...

    async def start_edit(
        self,
        message_id: int,
        text: str,
        *,
        sampling: Sampling | None = ...,
        route: Route | None = ...,
        settings: ChatSettings | None = ...,
        augment: Augment | None = ...,
        tools: Sequence[ToolSpec] = ...,
        tool_choice: ToolChoice = ...,
    ) -> TurnHandle: ...

    async def start_regenerate(
        self,
        message_id: int,
        *,
        sampling: Sampling | None = ...,
        route: Route | None = ...,
        settings: ChatSettings | None = ...,
        augment: Augment | None = ...,
        tools: Sequence[ToolSpec] = ...,
        tool_choice: ToolChoice = ...,
    ) -> TurnHandle: ...


class ConversationStore(Protocol):
    """What the window reads and writes through store.Store (always off the UI thread)."""

    async def list_conversations(
        self, *, limit: int | None = ..., after: ListKey | None = ...
    ) -> list[ConversationRow]: ...

    async def pin_conversation(self, conversation_id: int, pinned: bool) -> ConversationChange: ...

    async def conversation(self, conversation_id: int) -> ConversationRow | None: ...

    async def data_version(self) -> int: ...

    async def conversation_changes(self, mark: ListMark | None, held: Collection[int] = ...) -> ListChanges: ...

    async def delete_conversation(self, conversation_id: int) -> tuple[str, int]: ...

    async def summary(self, conversation_id: int, *, through_message_id: int) -> Summary | None: ...

    async def messages(self, conversation_id: int) -> list[MessageRow]: ...

    async def sources_of(self, message_ids: Collection[int]) -> dict[int, tuple[Source, ...]]: ...

    async def search(self, text: str, *, limit: int = ...) -> list[SearchHit]: ...

    async def conversation_settings(
        self, conversation_id: int, *, after_pending_writes: bool = ...
    ) -> dict[str, object]: ...

    async def update_conversation_settings(self, conversation_id: int, changes: Mapping[str, object]) -> None: ...

    async def rename_conversation(self, conversation_id: int, title: str) -> ConversationChange: ...

    async def switch_branch(self, message_id: int) -> int: ...

    async def delete_message(self, message_id: int) -> tuple[int, int]: ...

    async def fork(self, message_id: int) -> Fork: ...

    async def export_conversation(self, conversation_id: int) -> ExchangeConversation: ...

    async def import_conversation(
        self, conversation: ExchangeConversation, import_key: str
    ) -> ConversationChange | None: ...

    def backup(self, dest: Path) -> Path: ...

    def add_health_listener(self, listener: Callable[[bool, str | None], None]) -> Callable[[], None]: ...
