"""The undo offers in the status line: "Deleted “title” — Undo", one per delete still waiting.

Owns only their presentation; the view-model says when an offer starts and ends (its grace
period is app.ui.viewmodels.deletions'), and a click is reported as `undo_clicked(id)`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

__all__ = ["UndoOffers"]

_TITLE_CHARS = 40


class UndoOffers(QWidget):
    """A row of offers, the newest on the right; hidden when there is none."""

    undo_clicked = Signal(int)  # conversation id

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("undoOffers")
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 8, 0)
        self._layout.setSpacing(12)
        self._offers: dict[int, QWidget] = {}
        self.hide()

    def add(self, conversation_id: int, title: str) -> None:
        if conversation_id in self._offers:
            return
        offer = QWidget(self)
        row = QHBoxLayout(offer)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(4)
        short = title if len(title) <= _TITLE_CHARS else title[: _TITLE_CHARS - 1] + "…"
        label = QLabel(f"Deleted “{short}” —", offer)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setToolTip(title)
        button = QPushButton("Undo", offer)
        button.setObjectName("undoDelete")
        button.setFlat(True)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.setToolTip("Bring the conversation back (Ctrl+Z)")
        # A link look, in the palette's link colour: it sits in a line of text.
        button.setStyleSheet(
            "QPushButton { color: palette(link); text-decoration: underline; border: none; padding: 0 2px; }"
        )
        button.clicked.connect(lambda: self.undo_clicked.emit(conversation_id))
        row.addWidget(label)
        row.addWidget(button)
        self._layout.addWidget(offer)
        self._offers[conversation_id] = offer
        self.show()

    def remove(self, conversation_id: int) -> None:
        offer = self._offers.pop(conversation_id, None)
        if offer is not None:
            self._layout.removeWidget(offer)
            offer.deleteLater()
        self.setVisible(bool(self._offers))

    def texts(self) -> list[str]:
        """What each offer says, oldest first (tests, screen readers)."""
        return [f"{o.findChild(QLabel).text()} Undo" for o in self._offers.values()]  # type: ignore[union-attr]

    def button(self, conversation_id: int) -> QPushButton | None:
        offer = self._offers.get(conversation_id)
        return offer.findChild(QPushButton) if offer is not None else None
