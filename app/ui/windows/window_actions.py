"""The main window's actions that the shortcut registry (app.ui.shortcuts) gives keys to, and
the menus made of them.

Owns making each action with its registry id as objectName (so tests and the help window find
it) and exactly the registry's keys, adding it to the window (its keys then work wherever the
focus is in the window), and laying actions out in a menu. Must not: decide what an action does
(the window hands in the handler), or give a key to an action that the registry does not list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QWidget

from app.ui.shortcuts import keys_for

__all__ = ["WindowActions", "bind"]


def bind(action: QAction, action_id: str) -> QAction:
    """Give `action` its registry id and keys."""
    action.setObjectName(action_id)
    action.setShortcuts([QKeySequence(k) for k in keys_for(action_id)])
    return action


class WindowActions:
    """The actions made on one window, by registry id."""

    def __init__(self, window: QWidget) -> None:
        self._window = window
        self._made: dict[str, QAction] = {}

    def add(self, action_id: str, text: str, slot: Callable[[], object]) -> QAction:
        """An action of `window`, with the registry's keys for `action_id`, that calls `slot`."""
        action = bind(QAction(text, self._window), action_id)
        action.triggered.connect(lambda _checked=False: slot())
        self._window.addAction(action)
        self._made[action_id] = action
        return action

    def __getitem__(self, action_id: str) -> QAction:
        return self._made[action_id]

    def menu(self, bar: QMenuBar, title: str, items: Sequence[str | QAction | None]) -> QMenu:
        """A menu of `bar`: an id names an action made here, None is a separator."""
        menu = bar.addMenu(title)
        for item in items:
            if item is None:
                menu.addSeparator()
            else:
                menu.addAction(item if isinstance(item, QAction) else self._made[item])
        return menu
