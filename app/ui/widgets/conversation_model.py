"""The conversation list's Qt model: store rows in list order, fetched a page at a time, that
hold still while the pointer is over them.

Order: `ConversationRow.list_key`, highest first (pinned chats on top, newest pin first,
then by last activity), the same key the store pages by. Paging: `canFetchMore`/`fetchMore`
ask for the page after the last one (`more_wanted(cursor)`); the rows arrive later through
`append_rows`. A changed row that sorts below what is fetched is left to the page that
brings it. Holding: while `set_held(True)`, activity (a turn starting or finishing) changes
a row's text in place and its move waits; `set_held(False)` re-sorts once. Moves a person
asked for (pin, undo) happen at once.

Must not read the store (rows are handed in) or decide what a click means.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QWidget

from app.ui.theme import colours
from app.ui.widgets.status import waiting_text

__all__ = ["ConversationListModel", "IdRole", "PinnedRole"]

_Index = QModelIndex | QPersistentModelIndex
IdRole = Qt.ItemDataRole.UserRole + 1
PinnedRole = Qt.ItemDataRole.UserRole + 2


class ConversationListModel(QAbstractListModel):
    """Rows as the store gave them. An edit in place is only a request (`rename_requested`):
    the row changes when the store says the new title is saved."""

    rename_requested = Signal(int, str)  # conversation id, the title typed
    more_wanted = Signal(object)  # the ListKey after which the next page starts

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []
        self._answering: dict[int, int] = {}  # chats answering: a dot; waiting their turn (n ahead): a ring
        self._dot: QIcon | None = None  # drawn on first use, in the palette's colours
        self._ring: QIcon | None = None
        self._pin: QIcon | None = None
        self._palette: QPalette | None = None  # the view's, once it has told us (recolour)
        self._more = False  # the store has rows after `_cursor`
        self._cursor: tuple[int, float, int] | None = None  # list_key of the last row fetched
        self._fetching = False
        self._held = False
        self._deferred: dict[int, Any] = {}  # rows whose move (or arrival) waits for the pointer to leave

    # -- Qt's model interface ------------------------------------------------------------
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
            pinned = "\npinned to the top" if row.pinned_at is not None else ""
            ahead = self._answering.get(row.id)
            answering = "" if ahead is None else f"\n{waiting_text(ahead).lower() or 'answering now'}"
            return f"{(row.title or 'Untitled chat')}\nlast message {_when(row.updated_at)}{pinned}{answering}"
        if role == Qt.ItemDataRole.DecorationRole:
            if row.id in self._answering:
                return self._dot_icon() if self._answering[row.id] == 0 else self._ring_icon()
            return self._pin_icon() if row.pinned_at is not None else None
        if role == IdRole:
            return row.id
        if role == PinnedRole:
            return row.pinned_at is not None
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

    def canFetchMore(self, parent: _Index) -> bool:
        return not parent.isValid() and self._more and not self._fetching

    def fetchMore(self, parent: _Index) -> None:
        if self.canFetchMore(parent):
            self._fetching = True
            self.more_wanted.emit(self._cursor)

    # -- rows handed in --------------------------------------------------------------------
    def set_rows(self, rows: list[Any], *, more: bool = False) -> None:
        """The first page (in list order); `more`: the store has rows after it."""
        self.beginResetModel()
        self._rows = list(rows)
        self._deferred.clear()
        self._cursor = rows[-1].list_key if rows else None
        self._more = more and bool(rows)
        self._fetching = False
        self.endResetModel()

    def append_rows(self, rows: list[Any], *, more: bool) -> None:
        """The page after the last one. Rows already here (moved up by activity meanwhile) stay where they are."""
        self._fetching = False
        if rows:
            self._cursor = rows[-1].list_key
        self._more = more and bool(rows)
        known = {r.id for r in self._rows} | set(self._deferred)
        new = [r for r in rows if r.id not in known]
        if new:
            self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(new) - 1)
            self._rows += new
            self.endInsertRows()

    def fetch_failed(self) -> None:
        """The page could not be read: a later scroll asks again."""
        self._fetching = False

    def upsert(self, row: Any, *, by_person: bool = False) -> None:
        """Add or update one conversation: one row changes, or moves, never all. Activity
        (`by_person` False, the pin unchanged) only changes the text in place while held."""
        old = self.row_of(row.id)
        pin_changed = old >= 0 and self._rows[old].pinned_at != row.pinned_at
        if self._held and not by_person and not pin_changed:
            self._deferred[row.id] = row
            if old >= 0:
                self._rows[old] = row
                self.dataChanged.emit(self.index(old), self.index(old))
            return
        self._deferred.pop(row.id, None)
        if not self._fetched(row):  # it sorts among rows not fetched yet: that page brings it
            if old >= 0:
                self._remove_at(old)
            return
        if old >= 0:
            del self._rows[old]
        new = self._place(row)
        if old < 0:
            self.beginInsertRows(QModelIndex(), new, new)
            self._rows.insert(new, row)
            self.endInsertRows()
            return
        if new != old:
            # Qt's moves take the destination *before* the move: hence `new + 1` when moving down.
            self._rows.insert(old, row)
            self.beginMoveRows(QModelIndex(), old, old, QModelIndex(), new if new < old else new + 1)
            del self._rows[old]
            self._rows.insert(new, row)
            self.endMoveRows()
        else:
            self._rows.insert(old, row)
        self.dataChanged.emit(self.index(new), self.index(new))

    def remove(self, conversation_id: int) -> Any | None:
        """Take the row out (a delete waiting for its undo); returns it, or None if it is not here."""
        self._deferred.pop(conversation_id, None)
        at = self.row_of(conversation_id)
        return self._remove_at(at) if at >= 0 else None

    def set_held(self, held: bool) -> None:
        """Hold rows still (the pointer is over the list) or let them go to their places, once."""
        if held == self._held:
            return
        self._held = held
        if not held and self._deferred:
            self._reconcile()

    @property
    def held(self) -> bool:
        return self._held

    def set_answering(self, answering: dict[int, int]) -> None:
        """Mark the chats answering now: {id: answers ahead of its own} (0: answering; n: waiting)."""
        old, self._answering = self._answering, dict(answering)
        for cid in old.keys() | answering.keys():
            row = self.row_of(cid)
            if row >= 0 and old.get(cid) != answering.get(cid):
                self.dataChanged.emit(self.index(row), self.index(row))

    @property
    def answering(self) -> dict[int, int]:
        return dict(self._answering)

    @property
    def has_more(self) -> bool:
        return self._more

    def row_of(self, conversation_id: int | None) -> int:
        for i, row in enumerate(self._rows):
            if row.id == conversation_id:
                return i
        return -1

    def conversation(self, conversation_id: int | None) -> Any | None:
        at = self.row_of(conversation_id)
        return self._rows[at] if at >= 0 else None

    # -- bookkeeping -----------------------------------------------------------------------
    def _fetched(self, row: Any) -> bool:
        return not self._more or self._cursor is None or row.list_key >= self._cursor

    def _place(self, row: Any) -> int:
        key = row.list_key
        return next((i for i, r in enumerate(self._rows) if r.list_key < key), len(self._rows))

    def _remove_at(self, at: int) -> Any:
        self.beginRemoveRows(QModelIndex(), at, at)
        row = self._rows.pop(at)
        self.endRemoveRows()
        return row

    def _reconcile(self) -> None:
        """Bring the rows into list order with the fewest moves: those held in place move, the
        ones that arrived while held are inserted, any now below the fetched range leave."""
        arrived = [r for cid, r in self._deferred.items() if self.row_of(cid) < 0]
        self._deferred.clear()
        target = sorted([*self._rows, *arrived], key=lambda r: r.list_key, reverse=True)
        target = [r for r in target if self._fetched(r)]
        keep = {r.id for r in target}
        for at in reversed([i for i, r in enumerate(self._rows) if r.id not in keep]):
            self._remove_at(at)
        for i, row in enumerate(target):
            if i < len(self._rows) and self._rows[i].id == row.id:
                continue
            at = self.row_of(row.id)
            if at < 0:
                self.beginInsertRows(QModelIndex(), i, i)
                self._rows.insert(i, row)
                self.endInsertRows()
            else:  # at > i: everything above i is already in place
                self.beginMoveRows(QModelIndex(), at, at, QModelIndex(), i)
                self._rows.insert(i, self._rows.pop(at))
                self.endMoveRows()

    def _pin_icon(self) -> QIcon:
        if self._pin is None:
            self._pin = _pin(self._palette or QGuiApplication.palette())
        return self._pin

    def _dot_icon(self) -> QIcon:
        if self._dot is None:  # the status line's colour for generating
            self._dot = _dot(colours(self._palette or QGuiApplication.palette()).accent)
        return self._dot

    def _ring_icon(self) -> QIcon:
        if self._ring is None:  # the dot's colour, hollow: this chat's answer has not started
            self._ring = _dot(colours(self._palette or QGuiApplication.palette()).accent, hollow=True)
        return self._ring

    def recolour(self, palette: QPalette) -> None:
        """The view's palette changed (a theme switch): draw the icons again in its colours."""
        self._palette = QPalette(palette)
        self._dot = self._ring = self._pin = None
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1), [Qt.ItemDataRole.DecorationRole])


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")
    return str(value or "")


def _dot(colour: QColor, *, hollow: bool = False) -> QIcon:
    """A small filled circle (or a ring), centred in the list's icon square."""
    pixmap = QPixmap(16, 16)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if hollow:
        painter.setPen(QPen(colour, 1.6))
        painter.setBrush(Qt.BrushStyle.NoBrush)
    else:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
    painter.drawEllipse(4, 4, 8, 8)
    painter.end()
    return QIcon(pixmap)


def _pin(palette: QPalette) -> QIcon:
    """A push pin leaning right, in the palette's text colour (light and dark themes alike)."""
    pixmap = QPixmap(16, 16)
    pixmap.fill(Qt.GlobalColor.transparent)
    colour = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.PlaceholderText)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(colour, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    painter.drawLine(QPointF(4.0, 12.0), QPointF(7.0, 9.0))  # the needle
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    head = QPolygonF([QPointF(6.0, 6.5), QPointF(9.5, 10.0), QPointF(12.5, 7.0), QPointF(9.0, 3.5)])
    painter.drawPolygon(head)  # the body, across the needle
    painter.drawEllipse(QPointF(11.0, 5.0), 2.6, 2.6)  # the head
    painter.end()
    return QIcon(pixmap)
