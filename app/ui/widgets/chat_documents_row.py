"""The chat settings panel's "Documents" row: the collections a chat searches, as check boxes.

Shows what it is given (every named collection with its size, which are checked, and the files
dropped on this chat) and reports the person's choice; none is checked by default, and a chat with
none checked asks no retrieval at all. Must not: save anything or read the store (the window's
ChatDocumentsSide does both).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QLabel, QVBoxLayout, QWidget

from app.ui.theme import set_style

__all__ = ["DocumentsRow"]

_HELP = (
    "The chat's answers use passages from the collections checked here, with their sources. "
    "Drop files on the chat to add them to this chat alone."
)


class DocumentsRow(QWidget):
    chosen = Signal(object)  # tuple[int, ...]: the named collections checked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatDocuments")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 6, 0, 0)
        self._layout.setSpacing(2)
        title = QLabel("Documents", self)
        title.setToolTip(_HELP)
        self._layout.addWidget(title)
        self.boxes: dict[int, QCheckBox] = {}
        self._box_layout = QVBoxLayout()
        self._box_layout.setSpacing(2)
        self._layout.addLayout(self._box_layout)
        self.note = QLabel(self)  # no collection yet / the files dropped on this chat
        self.note.setWordWrap(True)
        set_style(self.note, "color: $muted;")
        self._layout.addWidget(self.note)

    def show_collections(
        self, collections: Sequence[tuple[int, str]], checked: set[int], own: str | None, *, manage_keys: str
    ) -> None:
        """`collections`: (id, label) of each named collection; `own`: a line about the files
        dropped on this chat (None: none)."""
        for box in self.boxes.values():
            self._box_layout.removeWidget(box)
            box.deleteLater()
        self.boxes = {}
        for cid, label in collections:
            box = QCheckBox(label, self)
            box.setToolTip(_HELP)
            box.setChecked(cid in checked)
            box.toggled.connect(lambda _on: self.chosen.emit(self.checked()))
            self._box_layout.addWidget(box)
            self.boxes[cid] = box
        lines = [] if collections else [f"No collections yet: add files in Models → Documents… ({manage_keys})."]
        if own:
            lines.append(own)
        lines.append("Drop files on the chat to add them to it alone.")
        self.note.setText("\n".join(lines))

    def checked(self) -> tuple[int, ...]:
        return tuple(cid for cid, box in self.boxes.items() if box.isChecked())
