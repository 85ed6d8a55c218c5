"""A message sent in a chat with tools chosen: the window's side of the tool loop (issue 27).

Owns answering each chat's `ToolUse` question (app.ui.viewmodels.tool_session): when a message
is sent, the chat's choice (a new chat's from the Tools section, ChatToolsSide.choice, which that
side saves to the conversation once it exists; a saved chat's read again, with its "always allow"
answers), mcp.json read off the loop's thread, a registry of only what the chat chose
(app.core.tools.for_chat), the consent dialog (app.ui.windows.tool_consent) for each call, and
"Always allow" kept through ToolsViewModel.remember (the same lock as a click in the section).
Must not: run or refuse a call itself (the loop asks the dialog), or touch the transcript.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from app.core.errors import describe
from app.core.tool_loop import DEFAULT_MAX_STEPS
from app.core.tools.config import McpConfig, load_mcp_config
from app.core.tools.errors import McpConfigError
from app.core.tools.for_chat import registry_for
from app.ui.viewmodels.tool_session import ToolSession
from app.ui.viewmodels.tools import sdk_loaded
from app.ui.windows.tool_consent import ask_consent

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from app.core.tools.choice import ChatTools
    from app.ui.viewmodels.conversation import ConversationViewModel
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.viewmodels.tools import ToolsViewModel
    from app.ui.windows.chat_tools_side import ChatToolsSide

__all__ = ["ChatToolTurns"]

log = logging.getLogger("hearth.ui")


class ChatToolTurns(QObject):
    """Gives every chat the window shows its tools (`vm.current_changed`)."""

    def __init__(
        self,
        window: QWidget,
        vm: MainViewModel,
        tools: ToolsViewModel,
        side: ChatToolsSide,
        *,
        max_steps: Callable[[], int] | None = None,
    ) -> None:
        """`max_steps()`: settings.json's max_tool_steps, read (in a worker thread) at each message."""
        super().__init__(window)
        self._max_steps = max_steps
        self._window = window
        self._vm = vm
        self._tools = tools
        self._side = side
        vm.current_changed.connect(self._follow)
        self._follow(vm.current)

    def _follow(self, chat: ConversationViewModel) -> None:
        chat.tool_use = self  # only the chat shown sends; a chat answering elsewhere keeps its session

    async def begin(self, chat: ConversationViewModel, service: Any) -> ToolSession | None:
        """The session of the message `chat` is about to send; None when it has no tools chosen."""
        cid = chat.conversation_id
        choice = self._side.choice if cid is None else await self._tools.chat_tools(cid)
        if not choice.enabled:
            return None
        config = await self._config(chat)
        if config is not None and any(s.name in choice.servers() for s in config.enabled()):
            await sdk_loaded()  # the MCP SDK's first import, off the loop's thread
        steps = await asyncio.to_thread(self._max_steps) if self._max_steps is not None else DEFAULT_MAX_STEPS
        documents = None
        if chat.documents is not None and choice.offers("hearth/search_documents"):
            from app.core.tools.documents_tool import documents_tool

            ids = chat.documents.ids or None  # the chat's collections, else every collection
            documents = documents_tool(chat.documents.retrieval.retriever(), ids)
        return ToolSession(
            service,
            registry_for(choice, config, documents=documents),
            choice,
            functools.partial(ask_consent, self._window, chat_title=self._title(cid)),
            max_steps=steps,
            remember=functools.partial(self._remember, chat),
        )

    async def _config(self, chat: ConversationViewModel) -> McpConfig | None:
        try:
            return await asyncio.to_thread(load_mcp_config, self._tools.path)
        except McpConfigError as e:  # the built-ins still work
            chat.problem.emit(f"{e.message} This answer uses Hearth's own tools only.")
            return None

    def _title(self, cid: int | None) -> str:
        row = next((r for r in self._vm.conversations if r.id == cid), None) if cid is not None else None
        return (row.title or "").strip() if row is not None and row.title else "New chat"

    async def _remember(self, chat: ConversationViewModel, cid: int, choice: ChatTools) -> None:
        try:
            saved = await self._tools.remember(cid, choice)
        except Exception as e:
            log.exception("keeping a tool allowed for the chat failed")
            chat.problem.emit(f"Could not keep this tool allowed for the chat: {describe(e)}")
            return
        if self._vm.current is chat:
            self._side.choice = saved
