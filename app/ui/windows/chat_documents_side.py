"""Per chat, which collections it searches: the Documents row of the chat settings panel, and files
dropped on the chat (issue 25, item 1).

Owns following the chat shown (MainViewModel.current): its row shows every named collection, the
chat's own checked, and saves a change through the chat's ChatDocuments (a new chat keeps it until
its first turn). A file or folder dropped on the transcript or the message box goes into that
chat's own collection (DocumentsService.attach_to_chat), is indexed, and the chat searches it from
its next question. The row follows the Documents window's changes (its overview).
Must not: touch the store but through the view-models, or keep a collection list of its own
beyond what it shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QAbstractScrollArea, QWidget

from app.core.documents.service import Overview
from app.core.errors import describe
from app.ui.shortcuts import keys_for
from app.ui.viewmodels.conversation import ConversationViewModel
from app.ui.viewmodels.documents import DocumentsViewModel
from app.ui.widgets.chat_documents_row import DocumentsRow
from app.ui.windows.documents_dialog import local_paths

if TYPE_CHECKING:
    from app.ui.ops import Ops
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets.chat_settings_panel import ChatSettingsPanel

__all__ = ["ChatDocumentsSide"]


class ChatDocumentsSide(QObject):
    """`drop_targets`: the widgets a file may be dropped on to attach it to the chat shown."""

    def __init__(
        self,
        window: QWidget,
        panel: ChatSettingsPanel,
        vm: MainViewModel,
        documents: DocumentsViewModel,
        drop_targets: tuple[QAbstractScrollArea, ...],
        ops: Ops,
        *,
        show_problem: Callable[[str], None],
        notice: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self._vm = vm
        self._documents = documents
        self._ops = ops
        self._show_problem = show_problem
        self._notice = notice
        self.row = DocumentsRow(panel)
        panel.add_row(self.row)
        self.row.chosen.connect(self._choose)
        documents.overview_changed.connect(self._show)
        vm.current_changed.connect(self.follow)
        for target in drop_targets:
            target.viewport().setAcceptDrops(True)
            target.viewport().installEventFilter(self)
        self._chat: ConversationViewModel | None = None
        self.follow(vm.current)

    def follow(self, chat: ConversationViewModel) -> None:
        """The chat shown changed: show its collections (read with its messages) once the list is in."""
        if self._chat is not None:
            self._chat.reset.disconnect(self._refresh)
        self._chat = chat
        chat.reset.connect(self._refresh)  # loaded: its collections are known now
        self._refresh()

    def _refresh(self) -> None:
        self._ops.op("reading the collections", self._documents.refresh).run()

    def _show(self, overview: Overview) -> None:
        chat = self._chat
        docs = chat.documents if chat is not None else None
        checked = set(docs.ids) if docs is not None else set()
        named = [
            (v.collection.id, f"{v.collection.name} ({v.files} file{'s' if v.files != 1 else ''})")
            for v in overview.collections
            if v.collection.chat_id is None
        ]
        own = next(
            (v for v in overview.collections if chat is not None and v.collection.chat_id == chat.conversation_id),
            None,
        )
        own_line = None
        if own is not None and own.files:
            own_line = (
                "1 file dropped on this chat is searched too."
                if own.files == 1
                else f"{own.files} files dropped on this chat are searched too."
            )
        self.row.blockSignals(True)
        try:
            self.row.show_collections(named, checked, own_line, manage_keys=keys_for("documents")[0])
        finally:
            self.row.blockSignals(False)
        self.row.setEnabled(docs is not None)

    def _choose(self, named: tuple[int, ...]) -> None:
        chat = self._chat
        if chat is None or chat.documents is None:
            return
        docs, cid = chat.documents, chat.conversation_id
        own = next(
            (
                v.collection
                for v in self._documents.overview.collections
                if cid is not None and v.collection.chat_id == cid
            ),
            None,
        )
        (
            self._ops.op("saving the chat's documents", lambda: docs.choose(cid, named, own))
            .failure(lambda e: self._show_problem(f"Could not save which documents this chat uses: {describe(e)}"))
            .finally_(lambda: self._show(self._documents.overview))  # a failure puts the boxes back
            .run()
        )

    # -- files dropped on the chat --------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, (QDragEnterEvent, QDragMoveEvent)) and local_paths(event):
            event.acceptProposedAction()
            return True
        if isinstance(event, QDropEvent) and event.type() == QEvent.Type.Drop and local_paths(event):
            event.acceptProposedAction()
            self.attach(local_paths(event))
            return True
        return super().eventFilter(watched, event)

    def attach(self, paths: list[Path]) -> None:
        chat = self._chat
        if chat is None or chat.documents is None:
            return
        cid = chat.conversation_id
        if cid is None:
            self._show_problem(
                "Send this chat's first message, then drop files on it; or add them to a collection in "
                f"Documents… ({keys_for('documents')[0]}) and check it in the chat settings."
            )
            return
        docs = chat.documents

        async def attach() -> None:
            result = await self._documents.service.attach_to_chat(cid, paths)
            await docs.load(cid)  # the chat's own collection is one of its collections now
            report = result.report
            self._notice(
                f"{len(report.queued) + len(report.unchanged)} file(s) added to this chat"
                + (f", {len(report.skipped)} skipped" if report.skipped else "")
                + "; they are indexed in the background."
            )
            await self._documents.refresh()

        self._ops.op("adding files to the chat", attach).failure(
            lambda e: self._show_problem(f"Could not add those files to the chat: {describe(e)}")
        ).run()
