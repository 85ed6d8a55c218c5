"""Export… and Import… in the main window's Conversations menu.

Owns the two actions and their file dialogs, opened with open() rather than exec() (an
answer may be streaming meanwhile, and a modal loop inside a coroutine breaks qasync).
`export_to(path, fmt)` and `import_from(path)` do the work without a dialog (tests call them).
Must not read files or talk to the store: MainViewModel.export_conversation/import_file do,
off the UI thread.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog

from app.core.errors import describe

if TYPE_CHECKING:
    from app.core.exchange import ExportFormat
    from app.ui.windows.main_window import MainWindow

__all__ = ["ExchangeActions"]

_MARKDOWN = "Markdown, the branch shown (*.md)"
_JSON = "Hearth JSON, every branch (*.json)"
_IMPORTABLE = "Hearth or ChatGPT export (*.json);;All files (*)"


class ExchangeActions:
    """Adds Export conversation… and Import… to `window.conversations_menu`; made by MainWindow."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.export_action = QAction("Export conversation…", window)
        self.export_action.setToolTip("Save the conversation shown as Markdown or as Hearth JSON")
        self.export_action.triggered.connect(self.ask_export)
        self.import_action = QAction("Import…", window)
        self.import_action.setToolTip("Add conversations from a Hearth export or ChatGPT's conversations.json")
        self.import_action.triggered.connect(self.ask_import)
        window.conversations_menu.addAction(self.export_action)
        window.conversations_menu.addAction(self.import_action)
        self.dialog: QFileDialog | None = None  # while the person picks a file

    def ask_export(self) -> None:
        cid = self.window.vm.current.conversation_id
        if cid is None:
            self.window.status.show_notice("Open a conversation first: a new chat has nothing to export yet.")
            return
        title = next((c.title for c in self.window.vm.conversations if c.id == cid), "conversation")
        name = (re.sub(r"[^\w\- ]+", "", title).strip() or "conversation")[:60] + ".md"
        dialog = QFileDialog(self.window, "Export conversation", str(Path.home() / name), f"{_MARKDOWN};;{_JSON}")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("md")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.filterSelected.connect(lambda f: dialog.setDefaultSuffix("json" if f == _JSON else "md"))

        def chosen(path: str) -> None:
            fmt: ExportFormat = "json" if dialog.selectedNameFilter() == _JSON or path.endswith(".json") else "md"
            self.export_to(Path(path), fmt, cid, replace=True)  # the dialog asked before replacing a file

        dialog.fileSelected.connect(chosen)
        self.dialog = dialog
        dialog.open()

    def ask_import(self) -> None:
        dialog = QFileDialog(self.window, "Import conversations", str(Path.home()), _IMPORTABLE)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.import_from(Path(path)))
        self.dialog = dialog
        dialog.open()

    def export_to(self, path: Path, fmt: ExportFormat, conversation_id: int | None = None, *,
                  replace: bool = False) -> asyncio.Task[None]:
        """Export `conversation_id` (default: the one shown) to `path`."""
        vm = self.window.vm
        cid = conversation_id if conversation_id is not None else vm.current.conversation_id
        if cid is None:
            raise ValueError("no conversation to export")
        return (self.window.ops.op("exporting a conversation",
                                   lambda: vm.export_conversation(cid, path, fmt, replace=replace))
                .failure(lambda e: self.window.show_problem(f"Export failed: {describe(e)}"))
                .disabling(self.export_action)
                .run())

    def import_from(self, path: Path) -> asyncio.Task[None]:
        return (self.window.ops.op("importing conversations", lambda: self.window.vm.import_file(path))
                .failure(lambda e: self.window.show_problem(f"Import failed: {describe(e)}"))
                .disabling(self.import_action)
                .run())
