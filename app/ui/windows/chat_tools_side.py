"""The Tools window (Models → Tools…, and "Tools…" in the chat settings), and per chat, which
tools its answers may call: the Tools section of the chat settings panel (issue 27, item 1).

Owns the window (made on first use, then reused) and following the chat shown
(MainViewModel.current): its section shows the built-ins and each enabled server, the chat's
choice (ChatTools, in the conversation's settings) checked, and saves a change at once through
ToolsViewModel.choose. A new chat keeps its choice here until its first turn creates the
conversation, then saves it. The section follows mcp.json's changes (the view-model's rows).
Must not: touch the store or mcp.json but through ToolsViewModel, or decide consent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from app.core.errors import describe
from app.core.tools.choice import ChatTools
from app.ui.viewmodels.conversation import ConversationViewModel
from app.ui.viewmodels.tools import ToolsViewModel
from app.ui.widgets.chat_tools_section import ChatToolsSection
from app.ui.windows.tools_dialog import ToolsDialog

if TYPE_CHECKING:
    from app.ui.ops import Ops
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets.chat_settings_panel import ChatSettingsPanel

__all__ = ["ChatToolsSide"]


class ChatToolsSide(QObject):
    def __init__(
        self,
        window: QWidget,
        panel: ChatSettingsPanel,
        vm: MainViewModel,
        tools: ToolsViewModel,
        ops: Ops,
        *,
        show_problem: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self._window = window
        self.tools = tools
        self._ops = ops
        self._show_problem = show_problem
        self.dialog: ToolsDialog | None = None
        self.section = ChatToolsSection(panel)
        panel.add_row(self.section)
        self.section.chosen.connect(self._choose)
        self.section.manage_requested.connect(self.open_tools)
        tools.rows_changed.connect(self._show)
        vm.current_changed.connect(self.follow)
        self._chat: ConversationViewModel | None = None
        self.choice = ChatTools()  # the chat shown's; a new chat's until its first turn saves it
        self._edits = 0  # the person's clicks: a read that started before one must not undo it
        self._ops.op("reading mcp.json", lambda: tools.refresh(check=False)).run()
        self.follow(vm.current)

    def open_tools(self) -> ToolsDialog:
        if self.dialog is None:
            self.dialog = ToolsDialog(self.tools, self._window)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog

    def follow(self, chat: ConversationViewModel) -> None:
        """The chat shown changed: show its tools once it is loaded."""
        if self._chat is not None:
            self._chat.reset.disconnect(self._load)
            self._chat.conversation_id_changed.disconnect(self._created)
        self._chat = chat
        chat.reset.connect(self._load)
        chat.conversation_id_changed.connect(self._created)
        self.choice = ChatTools()
        self._show()
        self._load()

    def _load(self) -> None:
        chat = self._chat
        cid = chat.conversation_id if chat is not None else None
        if cid is None:
            return
        edits = self._edits

        def loaded(choice: ChatTools) -> None:
            if self._chat is chat and self._edits == edits:
                self.choice = choice
                self._show()

        self._ops.op("reading the chat's tools", lambda: self.tools.chat_tools(cid)).success(loaded).run()

    def _created(self, conversation_id: object) -> None:
        """A new chat's first turn made the conversation: keep the tools chosen before it."""
        if isinstance(conversation_id, int) and self.choice.enabled:
            self._save(conversation_id, self.choice.chosen)

    def _show(self) -> None:
        self.section.blockSignals(True)
        try:
            self.section.show_choices(self.tools.choices(), self.choice.chosen)
        finally:
            self.section.blockSignals(False)

    def _choose(self, entries: tuple[str, ...]) -> None:
        self._edits += 1
        self.choice = self.choice.with_chosen(entries)
        chat = self._chat
        if chat is not None and chat.conversation_id is not None:
            self._save(chat.conversation_id, entries)

    def _save(self, conversation_id: int, entries: tuple[str, ...]) -> None:
        chat = self._chat

        def saved(choice: ChatTools) -> None:
            if self._chat is chat:
                self.choice = choice

        def failed(error: BaseException) -> None:
            self._show_problem(f"Could not save which tools this chat uses: {describe(error)}")
            self._load()  # the boxes go back to what is saved

        self._ops.op("saving the chat's tools", lambda: self.tools.choose(conversation_id, entries)).success(
            saved
        ).failure(failed).run()
