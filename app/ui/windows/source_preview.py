"""The preview of one of an answer's sources: the passage the answer read, and its file.

Owns the small dialog a click on a source under an answer opens (the transcript keeps one and
reuses it): the source's label ("[1] report.pdf, page 4"), the file's path, the passage as it
was sent to the model, marked as the quoted part, and "Open file", which hands the file to the
desktop's own application. The passage comes from the store (store.sources keeps it as it was
sent), so it still shows after the file changed or went away; then "Open file" is disabled and
says so. Whether the file is there is asked off the UI thread (a stat on a network mount that
went away can hang). It reopens where the person left it (dialog_place), and Esc closes it.
Must not: interpret any of the passage, its path or heading (untrusted text from a document:
plain text only, control characters shown as symbols), read the file, or open it unasked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QFont, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.message_view import source_label
from app.ui.widgets.message_drawing import one_line, printable
from app.ui.windows.dialog_place import keep_place
from store.sources import Source

__all__ = ["GONE", "SourcePreview"]

GONE = "The file is no longer there"
_CHECKING = "Looking for the file…"
_MARKER = QColor(255, 214, 10, 80)


class SourcePreview(QDialog):
    """`opener` opens a file's URL (tests pass a recorder); `exists` says whether a path is a
    file (run in a worker thread)."""

    def __init__(
        self,
        parent: QWidget,
        opener: Callable[[QUrl], object] = QDesktopServices.openUrl,
        exists: Callable[[str], bool] = os.path.isfile,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("source_preview")
        self.setWindowTitle("Source")
        self.setModal(False)
        self.resize(600, 380)
        self._opener = opener
        self._exists = exists
        self.source: Source | None = None

        self.label = QLabel(self)
        self.label.setObjectName("source_label")
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        bold = QFont(self.label.font())
        bold.setWeight(QFont.Weight.DemiBold)
        self.label.setFont(bold)
        self.path = QLineEdit(self)  # a path has no spaces to wrap at: it scrolls, and can be copied
        self.path.setObjectName("source_path")
        self.path.setReadOnly(True)
        self.path.setFrame(False)
        self.caption = QLabel(self)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.caption.setWordWrap(True)
        self.caption.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.passage = QPlainTextEdit(self)
        self.passage.setObjectName("source_passage")
        self.passage.setReadOnly(True)
        self.passage.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.open_button = QPushButton("Open file", self)
        self.open_button.setObjectName("open_source_file")
        self.file_note = QLabel(self)
        self.file_note.setTextFormat(Qt.TextFormat.PlainText)
        self.file_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)

        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.file_note, 1)
        row.addWidget(buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.path)
        layout.addWidget(self.caption)
        layout.addWidget(self.passage, 1)
        layout.addLayout(row)
        self.open_button.clicked.connect(self._open)
        keep_place(self)

    def show_source(self, source: Source) -> None:
        """Show `source` (replacing the one shown) and bring the dialog up."""
        self.source = source
        self.label.setText(printable(one_line(f"[{source.ordinal}] {source_label(source)}")))
        self.path.setText(printable(one_line(source.path)))
        self.path.setCursorPosition(0)
        where = f"characters {source.start:,}–{source.end:,} of the file's text"
        collection = f", collection {printable(one_line(source.collection))}" if source.collection else ""
        self.caption.setText(f"The passage the answer was given ({where}{collection}), marked:")
        self._show_passage(printable(source.text, keep_lines=True))
        self._set_file_state(None)
        self._look_for(source)
        self.show()
        self.raise_()
        self.activateWindow()

    def _show_passage(self, text: str) -> None:
        """The passage as plain text (setPlainText: no markup read), all of it marked as quoted."""
        self.passage.setPlainText(text)
        mark = QTextCharFormat()
        # A highlighter's yellow, see-through so the text keeps its theme's colour: the selection's
        # colour would look like text the person selected.
        mark.setBackground(_MARKER)
        cursor = QTextCursor(self.passage.document())
        cursor.select(QTextCursor.SelectionType.Document)
        cursor.mergeCharFormat(mark)
        self.passage.moveCursor(QTextCursor.MoveOperation.Start)

    def _look_for(self, source: Source) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop runs (a script): ask here
            self._set_file_state(self._exists(source.path))
            return
        found = loop.run_in_executor(None, self._exists, source.path)

        def landed(fut: asyncio.Future[bool]) -> None:  # on the loop's thread: the UI thread
            if self.source is source and not fut.cancelled():
                self._set_file_state(fut.exception() is None and fut.result())

        found.add_done_callback(landed)

    def _set_file_state(self, there: bool | None) -> None:
        """None: not known yet; False: the file is gone (its passage still shows)."""
        self.open_button.setEnabled(bool(there))
        self.file_note.setText(_CHECKING if there is None else "" if there else GONE)
        self.open_button.setToolTip(GONE if there is False else "")

    def _open(self) -> None:
        if self.source is not None and self._opener(QUrl.fromLocalFile(self.source.path)) is False:
            self.file_note.setText("No application on this computer opened the file")
