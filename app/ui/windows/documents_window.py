"""The Models menu's "Documents…" (Ctrl+Shift+D): opens the Documents window; and the status
line's "Documents: 12 of 60 files indexed" while indexing has work (a click opens the window).

Owns the action, with its keys from app.ui.shortcuts, the status line's button, and the window,
made on first use and then reused. The action is there, greyed, when the window has no documents
(tests of the chat alone), so the shortcut registry and the menus still agree.
Must not: read or change documents (the window's view-model does).
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QStatusBar, QToolButton, QWidget

from app.core.documents.service import Overview
from app.ui.viewmodels.documents import DocumentsViewModel
from app.ui.windows.documents_dialog import DocumentsDialog
from app.ui.windows.window_actions import bind

__all__ = ["DocumentsWindow"]


class DocumentsWindow(QObject):
    def __init__(
        self, window: QWidget, menu: QMenu, status_bar: QStatusBar, documents: DocumentsViewModel | None
    ) -> None:
        super().__init__(window)
        self._window = window
        self._documents = documents
        self.dialog: DocumentsDialog | None = None
        self.action = bind(QAction("Documents…", window), "documents")
        self.action.triggered.connect(self.open)
        self.action.setEnabled(documents is not None)
        menu.addSeparator()
        menu.addAction(self.action)
        self.progress = QToolButton(window)
        self.progress.setObjectName("documentsProgress")
        self.progress.setAutoRaise(True)
        self.progress.setToolTip("Your documents are being indexed; indexing pauses while an answer is written")
        self.progress.clicked.connect(self.open)
        self.progress.hide()
        status_bar.addPermanentWidget(self.progress)
        if documents is not None:
            documents.overview_changed.connect(self._show_progress)

    def _show_progress(self, _overview: Overview) -> None:
        assert self._documents is not None
        line = self._documents.status_line
        self.progress.setText(line)
        self.progress.setVisible(bool(line))

    def open(self) -> DocumentsDialog | None:
        if self._documents is None:
            return None
        if self.dialog is None:
            self.dialog = DocumentsDialog(self._documents, self._window)
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()
        return self.dialog
