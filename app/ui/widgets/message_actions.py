"""What a person can do with one message, and how the transcript offers it.

The message under the pointer shows a small toolbar at its top right (Copy, Edit or
Regenerate, Fork, Delete), outside the document, so selecting and copying text never picks
up button labels; a right-click offers the whole list; a message with siblings shows
`◀ 2/3 ▶` beside its role name. Those arrows are internal anchors
(`hearth-action:<name>:<message id>`): model text is inserted as plain text and can never
carry one. The transcript only reports the choice
(`action_requested`); the window carries it out through the view-model.

Must not: touch the store or the view-models, or hold state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, Signal
from PySide6.QtGui import QFont, QPalette, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QMenu, QToolButton, QWidget

if TYPE_CHECKING:
    from app.core.message_view import MessageView

__all__ = ["ACTION_HREF", "LABELS", "MessageToolbar", "insert_branch_nav", "menu_actions", "parse_href"]

ACTION_HREF = "hearth-action:"

LABELS = {
    "copy": "Copy",
    "copy_markdown": "Copy as Markdown",
    "copy_plain": "Copy as plain text",
    "edit": "Edit and resend",
    "regenerate": "Regenerate",
    "continue": "Continue",
    "fork": "Fork into a new chat",
    "delete": "Delete…",
    "prev": "Previous branch",
    "next": "Next branch",
}


class MessageToolbar(QWidget):
    """The buttons that float at the top right of the message under the pointer."""

    chosen = Signal(str, int)  # (action, message id)

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("message_toolbar")
        self.setAutoFillBackground(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(2, 0, 2, 0)
        row.setSpacing(0)
        self.buttons: dict[str, QToolButton] = {}
        for action, text, tip in (
            ("copy", "Copy", "Copy this message as Markdown (the arrow: as plain text)"),
            ("edit", "Edit", "Edit and resend: a new branch, the old one stays"),
            ("regenerate", "Regenerate", "A new answer with a fresh seed; the old one stays"),
            ("fork", "Fork", "Copy the chat up to here into a new chat"),
            ("delete", "Delete", "Delete this message and everything after it"),
        ):
            button = QToolButton(self)
            button.setObjectName(action)
            button.setText(text)
            button.setToolTip(tip)
            button.setAutoRaise(True)
            button.clicked.connect(lambda _=False, a=action: self._choose(a))
            if action == "copy":  # the arrow beside Copy: the other way to copy
                menu = QMenu(button)
                menu.addAction(LABELS["copy_markdown"]).triggered.connect(lambda: self._choose("copy_markdown"))
                menu.addAction(LABELS["copy_plain"]).triggered.connect(lambda: self._choose("copy_plain"))
                button.setMenu(menu)
                button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
            row.addWidget(button)
            self.buttons[action] = button
        self.message_id: int | None = None
        self.hide()

    def show_for(self, m: MessageView, top_right: QPoint) -> None:
        """Offer `m`'s actions, the toolbar's top right corner at `top_right` (parent coordinates)."""
        offered = menu_actions(m, last=False)
        for action, button in self.buttons.items():
            button.setVisible(action == "copy" or action in offered)
        self.message_id = m.message_id
        self.adjustSize()
        self.move(top_right.x() - self.width(), top_right.y())
        self.show()
        self.raise_()

    def _choose(self, action: str) -> None:
        if self.message_id is not None:
            self.chosen.emit(action, self.message_id)


def menu_actions(m: MessageView, *, last: bool) -> list[str]:
    """The actions a right-click offers on `m` (`last`: it is the conversation's last message)."""
    if m.message_id is None or (m.role == "assistant" and m.state is not None and not m.footer):
        return ["copy_markdown", "copy_plain"]  # still streaming: only its text so far
    out = ["copy_markdown", "copy_plain"]
    if m.role == "user":
        out.append("edit")
    elif m.role == "assistant":
        out.append("regenerate")
        if last and m.continuable:
            out.append("continue")
    out += ["fork", "delete"]
    if m.sibling(-1) is not None:
        out.append("prev")
    if m.sibling(+1) is not None:
        out.append("next")
    return out


def parse_href(href: str) -> tuple[str, int] | None:
    """(action, message id) of one of our links, or None for anything else."""
    if not href.startswith(ACTION_HREF):
        return None
    action, _, message_id = href[len(ACTION_HREF) :].partition(":")
    return (action, int(message_id)) if message_id.isdigit() and action in LABELS else None


def insert_branch_nav(cursor: QTextCursor, m: MessageView, palette: QPalette) -> None:
    """`  ◀ 2/3 ▶` after the role name, for a message with siblings; an arrow at an end is inert."""
    branch = m.branch
    if branch is None or m.message_id is None:
        return
    which, count = branch
    cursor.insertText("   ", _plain(palette))
    cursor.insertText("◀", _link(palette, "prev", m.message_id) if which > 1 else _faint(palette))
    cursor.insertText(f" {which}/{count} ", _plain(palette))
    cursor.insertText("▶", _link(palette, "next", m.message_id) if which < count else _faint(palette))


def _plain(palette: QPalette) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(palette.color(QPalette.ColorRole.PlaceholderText))
    fmt.setFontPointSize(9)
    return fmt


def _faint(palette: QPalette) -> QTextCharFormat:
    fmt = _plain(palette)
    fmt.setForeground(palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
    return fmt


def _link(palette: QPalette, action: str, message_id: int) -> QTextCharFormat:
    fmt = _plain(palette)
    fmt.setForeground(palette.color(QPalette.ColorRole.Link))
    fmt.setFontWeight(QFont.Weight.Medium)
    fmt.setAnchor(True)
    fmt.setAnchorHref(f"{ACTION_HREF}{action}:{message_id}")
    return fmt
