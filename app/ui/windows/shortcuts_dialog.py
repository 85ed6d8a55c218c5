"""Help → Keyboard shortcuts: every entry of app.ui.shortcuts, by group, keys on the left.

Owns only the drawing; the list is the registry's, so it cannot disagree with the keys the
window's actions really have. Must not define or change a shortcut.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.ui.shortcuts import GROUPS, SHORTCUTS, WINDOW, Shortcut

__all__ = ["ShortcutsDialog", "key_text"]


def key_text(key: str) -> str:
    """A key as this platform writes it (⌘ on macOS)."""
    return QKeySequence(key).toString(QKeySequence.SequenceFormat.NativeText)


def _keys_cell(entry: Shortcut, parent: QWidget) -> QWidget:
    """One badge per key, "or" between them."""
    cell = QWidget(parent)
    cell.setObjectName(f"keys_{entry.id}")
    row = QHBoxLayout(cell)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(6)
    for i, key in enumerate(entry.keys):
        if i:
            row.addWidget(QLabel("or", cell))
        badge = QLabel(key_text(key), cell)
        badge.setObjectName("key")
        badge.setTextFormat(Qt.TextFormat.PlainText)
        badge.setStyleSheet(
            "font-family: monospace; padding: 1px 6px; border: 1px solid palette(mid);"
            " border-radius: 4px; background: palette(alternate-base);"
        )
        row.addWidget(badge)
    row.addStretch(1)
    return cell


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcuts_dialog")
        self.setWindowTitle("Keyboard shortcuts")
        body = QWidget(self)
        grid = QGridLayout(body)
        grid.setHorizontalSpacing(24)
        grid.setVerticalSpacing(6)
        grid.setContentsMargins(16, 12, 16, 12)
        row = 0
        for group in GROUPS:
            entries = [e for e in SHORTCUTS if e.group == group]
            if not entries:
                continue
            heading = QLabel(group, body)
            font = QFont(heading.font())
            font.setWeight(QFont.Weight.DemiBold)
            font.setPointSizeF(font.pointSizeF() + 1)
            heading.setFont(font)
            heading.setContentsMargins(0, 10 if row else 0, 0, 2)
            grid.addWidget(heading, row, 0, 1, 2)
            row += 1
            for entry in entries:
                what = entry.description
                if entry.note or entry.scope != WINDOW:
                    what += f" ({entry.note or 'in the ' + entry.scope})"
                label = QLabel(what, body)
                label.setTextFormat(Qt.TextFormat.PlainText)
                grid.addWidget(_keys_cell(entry, body), row, 0)
                grid.addWidget(label, row, 1)
                row += 1
        grid.setColumnStretch(1, 1)
        scroll = QScrollArea(self)
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 10)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        buttons.setContentsMargins(0, 0, 12, 0)
        self.resize(max(460, body.sizeHint().width() + 40), min(720, body.sizeHint().height() + 70))
