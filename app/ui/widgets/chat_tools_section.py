"""The chat settings panel's "Tools" section: which tools a chat's answers may call, as check boxes.

Shows what it is given (Hearth's built-ins and each enabled MCP server, a server checked meaning
every tool it offers, `server/*`; and any entry the chat chose that is no longer offered, so that
unticking it is the person's act, not a silent loss), a line that says how many are on, and
"Tools…", which opens the Tools window. Nothing is checked by default. Reports the person's choice.
Labels and tooltips carry server text: shown as plain text (tooltips escaped).
Must not: save anything, read mcp.json or the store (the window's ChatToolsSide does).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.ui.theme import set_style
from app.ui.viewmodels.tools import ToolChoiceItem

__all__ = ["ChatToolsSection", "plain_tooltip"]

_HELP = (
    "Tools the model may ask to call in this chat's answers. Every call asks you first "
    "(unless you chose “Always allow in this chat” for that tool)."
)


def plain_tooltip(text: str) -> str:
    """A tooltip that shows `text` as written: Qt renders a tooltip that looks like HTML as HTML."""
    return "<p style='white-space:pre-wrap'>" + html.escape(text) + "</p>"


class ChatToolsSection(QWidget):
    chosen = Signal(object)  # tuple[str, ...]: the entries checked (ChatTools.chosen)
    manage_requested = Signal()  # "Tools…": open the Tools window

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatTools")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 6, 0, 0)
        self._layout.setSpacing(2)
        head = QHBoxLayout()
        title = QLabel("Tools", self)
        title.setToolTip(_HELP)
        self.manage_button = QPushButton("Tools…", self)
        self.manage_button.setObjectName("manageTools")
        self.manage_button.setToolTip("Add, enable and test MCP servers")
        self.manage_button.clicked.connect(self.manage_requested)
        head.addWidget(title, 1)
        head.addWidget(self.manage_button)
        self._layout.addLayout(head)
        self.boxes: dict[str, QCheckBox] = {}
        self._box_layout = QVBoxLayout()
        self._box_layout.setSpacing(2)
        self._layout.addLayout(self._box_layout)
        self.summary = QLabel(self)  # how many are on
        self.summary.setObjectName("toolsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        set_style(self.summary, "color: $muted;")
        self._layout.addWidget(self.summary)

    def show_choices(self, items: Sequence[ToolChoiceItem], chosen: Sequence[str]) -> None:
        """Every item offered, those in `chosen` checked; a chosen entry not offered is shown too."""
        for box in self.boxes.values():
            self._box_layout.removeWidget(box)
            box.deleteLater()
        self.boxes = {}
        offered = {item.entry for item in items}
        gone = [ToolChoiceItem(e, f"{e} (not offered now)", "Not in mcp.json, or disabled there.") for e in chosen]
        for item in (*items, *(g for g in gone if g.entry not in offered)):
            box = QCheckBox(item.label, self)  # a check box's text is plain text
            box.setToolTip(plain_tooltip(item.detail))
            box.setChecked(item.entry in chosen)
            box.toggled.connect(self._toggled)
            self._box_layout.addWidget(box)
            self.boxes[item.entry] = box
        self._sum_up()

    def checked(self) -> tuple[str, ...]:
        return tuple(entry for entry, box in self.boxes.items() if box.isChecked())

    def _toggled(self, _on: bool) -> None:
        self._sum_up()
        self.chosen.emit(self.checked())

    def _sum_up(self) -> None:
        n = len(self.checked())
        self.summary.setText(
            "None on: this chat's answers call no tools."
            if n == 0
            else f"{n} on: the model may ask to call {'it' if n == 1 else 'them'}; each call asks you first."
        )
