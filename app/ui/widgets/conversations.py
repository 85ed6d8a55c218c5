"""The conversation list on the left: its panel, menu and keys (the model is in conversation_model).

Owns the "New chat" button, the context menu (Rename…, Pin to top / Unpin, Delete…), the
Delete key, and holding the rows still while the pointer is over the list or its scroll
bar is dragged. Must not read the store: rows are handed in (list order), and what the
person does is reported as signals (`conversation_chosen(id)`, `delete_requested(id)`, ...).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QListView, QMenu, QPushButton, QVBoxLayout, QWidget

from app.ui.theme import set_style
from app.ui.widgets.conversation_model import ConversationListModel, IdRole, PinnedRole

__all__ = ["ConversationList"]


class ConversationList(QWidget):
    conversation_chosen = Signal(int)
    new_chat_requested = Signal()
    rename_requested = Signal(int, str)  # F2, a double-click or the menu's Rename, then Enter
    pin_requested = Signal(int, bool)  # conversation id, pinned (True) or not
    delete_requested = Signal(int)  # the menu's Delete… or the Delete key
    more_wanted = Signal(object)  # the next page, after this ListKey (scrolled to the end)

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
        # The window's colour, not `transparent`: a transparent scroll area leaves its scroll bar's
        # track unpainted, which showed as a solid black bar under the handle.
        set_style(
            self.view,
            "QListView { border: none; background: $window; }"
            " QListView::item { padding: 7px 6px; border-radius: 4px; color: $text; }"
            " QListView::item:hover { background: $hover; }"
            " QListView::item:selected { background: $selected; color: $text; }",
        )
        self.view.setEditTriggers(QListView.EditTrigger.EditKeyPressed | QListView.EditTrigger.DoubleClicked)
        self.model.rename_requested.connect(self.rename_requested)
        self.model.more_wanted.connect(self.more_wanted)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._menu)
        self.view.clicked.connect(self._chosen)
        self.view.activated.connect(self._chosen)
        # Rows hold still while the pointer is on them or the scroll bar is dragged.
        self._pointer_in = False
        self.view.installEventFilter(self)
        bar = self.view.verticalScrollBar()
        bar.sliderPressed.connect(self._sync_hold)
        bar.sliderReleased.connect(self._sync_hold)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 4, 8)
        layout.setSpacing(8)
        layout.addWidget(self.new_button)
        layout.addWidget(self.view, 1)
        self._selected: int | None = None

    def changeEvent(self, event: QEvent) -> None:
        model = getattr(self, "model", None)  # None while QWidget's own __init__ runs
        if event.type() == QEvent.Type.PaletteChange and model is not None:
            model.recolour(self.palette())  # the busy dot and the pin are drawn in the theme's colours
        super().changeEvent(event)

    def set_rows(self, rows: list[Any], *, more: bool = False) -> None:
        self.model.set_rows(rows, more=more)
        self.select(self._selected)

    def append_rows(self, rows: list[Any], *, more: bool) -> None:
        self.model.append_rows(rows, more=more)
        self.select(self._selected)

    def upsert(self, row: Any, *, by_person: bool = False) -> None:
        self.model.upsert(row, by_person=by_person)
        self.select(self._selected)

    def remove(self, conversation_id: int) -> None:
        self.model.remove(conversation_id)
        self.select(self._selected)

    def select(self, conversation_id: int | None) -> None:
        """Highlight the shown conversation without reporting it as a click."""
        self._selected = conversation_id
        row = self.model.row_of(conversation_id)
        if row < 0:
            self.view.clearSelection()
        elif self.view.currentIndex().row() != row or not self.view.selectionModel().isRowSelected(row):
            self.view.setCurrentIndex(self.model.index(row))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.view:
            kind = event.type()
            if kind in (QEvent.Type.Enter, QEvent.Type.Leave):
                self._pointer_in = kind == QEvent.Type.Enter
                self._sync_hold()
            elif (
                kind == QEvent.Type.KeyPress
                and isinstance(event, QKeyEvent)
                and event.key() == Qt.Key.Key_Delete
                and event.modifiers() == Qt.KeyboardModifier.NoModifier
            ):
                cid = self.model.data(self.view.currentIndex(), IdRole)
                if cid is not None:
                    self.delete_requested.emit(int(cid))
                    return True
        return super().eventFilter(watched, event)

    def _sync_hold(self) -> None:
        self.model.set_held(self._pointer_in or self.view.verticalScrollBar().isSliderDown())
        if not self.model.held:
            self.select(self._selected)

    def _menu(self, at: QPoint) -> None:
        index = self.view.indexAt(at)
        if not index.isValid():
            return
        self.menu_for(index).popup(self.view.viewport().mapToGlobal(at))

    def menu_for(self, index: QModelIndex) -> QMenu:
        """The context menu of one row (tests open it without a pointer)."""
        cid = int(self.model.data(index, IdRole))
        pinned = bool(self.model.data(index, PinnedRole))
        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.view.edit(index))
        menu.addAction("Unpin" if pinned else "Pin to top", lambda: self.pin_requested.emit(cid, not pinned))
        menu.addSeparator()
        delete = menu.addAction("Delete…", lambda: self.delete_requested.emit(cid))
        delete.setShortcut(Qt.Key.Key_Delete)  # shown as a hint; the key itself is handled in eventFilter
        return menu

    def _chosen(self, index: QModelIndex) -> None:
        cid = self.model.data(index, IdRole)
        if cid is not None:
            self.conversation_chosen.emit(int(cid))
