"""Back up…, Export… and Import… in the main window's Conversations menu.

Owns the three actions and their file dialogs, opened with open() rather than exec() (an
answer may be streaming meanwhile, and a modal loop inside a coroutine breaks qasync).
`backup_to(path)`, `export_to(path, fmt)` and `import_from(path)` do the work without a dialog
(tests call them). Must not read files or talk to the store: MainViewModel.backup/
export_conversation/import_file do, off the UI thread.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from app.core.errors import describe

if TYPE_CHECKING:
    from app.core.exchange import ExportFormat
    from app.ui.ops import Ops
    from app.ui.viewmodels.main import MainViewModel

__all__ = ["ExchangeActions"]

_MARKDOWN = "Markdown, the branch shown (*.md)"
_JSON = "Hearth JSON, every branch (*.json)"
_IMPORTABLE = "Hearth or ChatGPT export (*.json);;All files (*)"


class ExchangeActions:
    """Adds Back up conversations…, Export conversation… and Import… to `menu` (the window's
    Conversations menu); `window` parents the actions and the file dialogs."""

    def __init__(
        self,
        window: QWidget,
        menu: QMenu,
        vm: MainViewModel,
        ops: Ops,
        *,
        show_problem: Callable[[str], None],
        notice: Callable[[str], None],
    ) -> None:
        self._window = window
        self._vm = vm
        self._ops = ops
        self._show_problem = show_problem
        self._notice = notice
        self.backup_action = QAction("Back up conversations…", window)
        self.backup_action.triggered.connect(self.ask_backup)
        self.export_action = QAction("Export conversation…", window)
        self.export_action.setToolTip("Save the conversation shown as Markdown or as Hearth JSON")
        self.export_action.triggered.connect(self.ask_export)
        self.import_action = QAction("Import…", window)
        self.import_action.setToolTip("Add conversations from a Hearth export or ChatGPT's conversations.json")
        self.import_action.triggered.connect(self.ask_import)
        menu.addAction(self.backup_action)
        menu.addAction(self.export_action)
        menu.addAction(self.import_action)
        self.dialog: QFileDialog | None = None  # while the person picks a file

    def ask_backup(self) -> None:
        suggested = f"hearth-backup-{time.strftime('%Y%m%d-%H%M')}.db"
        dialog = QFileDialog(
            self._window, "Back up conversations", str(Path.home() / suggested), "Hearth database (*.db)"
        )
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("db")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.backup_to(Path(path)))
        self.dialog = dialog
        dialog.open()

    def ask_export(self) -> None:
        cid = self._vm.current.conversation_id
        if cid is None:
            self._notice("Open a conversation first: a new chat has nothing to export yet.")
            return
        title = next((c.title for c in self._vm.conversations if c.id == cid), "conversation")
        name = (re.sub(r"[^\w\- ]+", "", title).strip() or "conversation")[:60] + ".md"
        dialog = QFileDialog(self._window, "Export conversation", str(Path.home() / name), f"{_MARKDOWN};;{_JSON}")
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
        dialog = QFileDialog(self._window, "Import conversations", str(Path.home()), _IMPORTABLE)
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.import_from(Path(path)))
        self.dialog = dialog
        dialog.open()

    def export_to(
        self, path: Path, fmt: ExportFormat, conversation_id: int | None = None, *, replace: bool = False
    ) -> asyncio.Task[None]:
        """Export `conversation_id` (default: the one shown) to `path`."""
        vm = self._vm
        cid = conversation_id if conversation_id is not None else vm.current.conversation_id
        if cid is None:
            raise ValueError("no conversation to export")
        return (
            self._ops.op("exporting a conversation", lambda: vm.export_conversation(cid, path, fmt, replace=replace))
            .failure(lambda e: self._show_problem(f"Export failed: {describe(e)}"))
            .disabling(self.export_action)
            .run()
        )

    def backup_to(self, dest: Path) -> asyncio.Task[None]:
        return (
            self._ops.op("backing up", lambda: self._vm.backup(dest))
            .failure(lambda e: self._show_problem(f"Backup failed: {describe(e)}"))
            .disabling(self.backup_action)
            .run()
        )

    def import_from(self, path: Path) -> asyncio.Task[None]:
        return (
            self._ops.op("importing conversations", lambda: self._vm.import_file(path))
            .failure(lambda e: self._show_problem(f"Import failed: {describe(e)}"))
            .disabling(self.import_action)
            .run()
        )
