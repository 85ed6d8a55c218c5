"""The conversation list on the left: a list model over store rows and its panel.

Owns row bookkeeping and the "New chat" button. Must not read the store: rows are handed
in (newest first) and a click is reported as `conversation_chosen(id)`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QListView, QMenu, QPushButton, QVBoxLayout, QWidget

__all__ = ["ConversationList", "ConversationListModel"]

_Index = QModelIndex | QPersistentModelIndex
IdRole = Qt.ItemDataRole.UserRole + 1
_BUSY_COLOUR = "#2b6cb0"  # the status line's colour for generating


class ConversationListModel(QAbstractListModel):
    """Rows as the store gave them. An edit in place is only a request (`rename_requested`):
    the row changes when the store says the new title is saved."""

    rename_requested = Signal(int, str)  # conversation id, the title typed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []
        self._busy: int | None = None  # the conversation answering now: marked with a dot
        self._dot = _dot(QColor(_BUSY_COLOUR))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (row.title or "").strip() or "Untitled chat"
        if role == Qt.ItemDataRole.EditRole:
            return row.title
        if role == Qt.ItemDataRole.ToolTipRole:
            answering = "\nanswering now" if row.id == self._busy else ""
            return f"{(row.title or 'Untitled chat')}\nlast message {_when(row.updated_at)}{answering}"
        if role == Qt.ItemDataRole.DecorationRole and row.id == self._busy:
            return self._dot
        if role == IdRole:
            return row.id
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        return super().flags(index) | Qt.ItemFlag.ItemIsEditable if index.isValid() else super().flags(index)

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        row = self._rows[index.row()]
        if str(value) != row.title:
            self.rename_requested.emit(row.id, str(value))
        return False  # nothing changes here until the store has saved it

    def set_rows(self, rows: list[Any]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def upsert(self, row: Any) -> None:
        """Add or update one conversation (newest first): one row changes, or moves, never all.
        Qt's moves take the destination *before* the move: hence `dest + 1` when moving down."""
        old = self.row_of(row.id)
        if old >= 0:
            del self._rows[old]
        new = next((i for i, r in enumerate(self._rows) if (r.updated_at, r.id) < (row.updated_at, row.id)),
                   len(self._rows))
        if old < 0:
            self.beginInsertRows(QModelIndex(), new, new)
            self._rows.insert(new, row)
            self.endInsertRows()
            return
        if new != old:
            self._rows.insert(old, row)  # put it back so Qt's bookkeeping sees the move happen
            self.beginMoveRows(QModelIndex(), old, old, QModelIndex(), new if new < old else new + 1)
            del self._rows[old]
            self._rows.insert(new, row)
            self.endMoveRows()
        else:
            self._rows.insert(old, row)
        self.dataChanged.emit(self.index(new), self.index(new))

    def set_busy(self, conversation_id: int | None) -> None:
        """Mark the conversation that is answering (None: none is)."""
        old, self._busy = self._busy, conversation_id
        for cid in {old, conversation_id} - {None}:
            row = self.row_of(cid)
            if row >= 0:
                self.dataChanged.emit(self.index(row), self.index(row))

    @property
    def busy(self) -> int | None:
        return self._busy

    def row_of(self, conversation_id: int | None) -> int:
        for i, row in enumerate(self._rows):
            if row.id == conversation_id:
                return i
        return -1


class ConversationList(QWidget):
    conversation_chosen = Signal(int)
    new_chat_requested = Signal()
    rename_requested = Signal(int, str)  # F2, a double-click or the menu's Rename, then Enter

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ConversationListModel(self)
        self.new_button = QPushButton("+  New chat", self)
        self.new_button.setObjectName("newChat")
        self.new_button.clicked.connect(self.new_chat_requested)
        self.view = QListView(self)
        self.view.setObjectName("conversations")
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        # Long titles are cut with an ellipsis, never scrolled sideways.
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setStyleSheet("QListView { border: none; background: transparent; }"
                                " QListView::item { padding: 7px 6px; border-radius: 4px;"
                                " color: #1f2937; }"
                                " QListView::item:hover { background: #e5e7eb; }"
                                " QListView::item:selected { background: #dbe4ff; }")
        self.view.setEditTriggers(QListView.EditTrigger.EditKeyPressed | QListView.EditTrigger.DoubleClicked)
        self.model.rename_requested.connect(self.rename_requested)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)
        self.view.clicked.connect(self._chosen)
        self.view.activated.connect(self._chosen)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.setSpacing(8)
        layout.addWidget(self.new_button)
        layout.addWidget(self.view, 1)
        self._selected: int | None = None

    def set_rows(self, rows: list[Any]) -> None:
        self.model.set_rows(rows)
        self.select(self._selected)

    def upsert(self, row: Any) -> None:
        self.model.upsert(row)
        self.select(self._selected)

    def select(self, conversation_id: int | None) -> None:
        """Highlight the shown conversation without reporting it as a click."""
        self._selected = conversation_id
        row = self.model.row_of(conversation_id)
        if row < 0:
            self.view.clearSelection()
        else:
            self.view.setCurrentIndex(self.model.index(row))

    def _menu(self, at: QPoint) -> None:
        index = self.view.indexAt(at)
        if not index.isValid():
            return
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.view.edit(index))
        menu.popup(self.view.viewport().mapToGlobal(at))

    def _chosen(self, index: QModelIndex) -> None:
        cid = self.model.data(index, IdRole)
        if cid is not None:
            self.conversation_chosen.emit(int(cid))


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
    return str(value or "")


def _dot(colour: QColor) -> QIcon:
    """A small filled circle, centred in the list's icon square."""
    pixmap = QPixmap(16, 16)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    painter.drawEllipse(4, 4, 8, 8)
    painter.end()
    return QIcon(pixmap)
