"""The main window's keyboard: its actions, with keys from app.ui.shortcuts, and what the
ones that are not about one widget do — search, copy the last answer, zoom, settings, help, quit.

Owns the QActions it makes (objectName = the registry id, so tests and the help window
find them), the search panel, the shortcuts and Settings windows, the zoom level and the
theme chosen in Settings (both saved in the window's QSettings). Must not: hold chat
state, talk to the store (searching and opening go through the MainViewModel), or give a
key to an action that the registry does not list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QFont, QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox

from app.core.doctor import hearth_version
from app.core.errors import describe
from app.ui.shortcuts import keys_for
from app.ui.theme import Theme, apply_theme, current_theme
from app.ui.viewmodels.search import SearchViewModel
from app.ui.windows.dialog_place import keep_place
from app.ui.windows.search_panel import SearchPanel
from app.ui.windows.settings_dialog import SettingsDialog
from app.ui.windows.shortcuts_dialog import ShortcutsDialog
from app.ui.windows.window_prefs import apply_saved_theme, save_theme
from store.search import SearchHit

if TYPE_CHECKING:
    from app.ui.windows.main_window import MainWindow

__all__ = ["ZOOM_KEY", "WindowKeys", "bind"]

ZOOM_KEY = "view/zoom"
ZOOM_MIN, ZOOM_MAX = -4, 12  # points away from the normal size


def bind(action: QAction, action_id: str) -> QAction:
    """Give `action` its registry id and keys."""
    action.setObjectName(action_id)
    action.setShortcuts([QKeySequence(k) for k in keys_for(action_id)])
    return action


class WindowKeys(QObject):
    """Made once by the window, after its widgets exist."""

    zoom_changed = Signal(int)  # the zoom step now, whoever changed it (a key, the menu, Settings)

    def __init__(self, window: MainWindow, prefs: QSettings | None) -> None:
        super().__init__(window)
        self.window = window
        self.prefs = prefs  # None: the zoom and the theme are not saved (tests of the chat alone)
        self.search_vm = SearchViewModel(window.vm.search, self)
        self.search_panel: SearchPanel | None = None  # made on first use, then reused
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.about_box: QMessageBox | None = None
        # A font set in pixels has no point size (-1): zoom from a usual size then.
        self._base_size = window.transcript.font().pointSizeF() if window.transcript.font().pointSizeF() > 0 else 10.0
        self.zoom = 0
        self.actions: dict[str, QAction] = {}
        self._make("search", "Search…", self.open_search)
        self._make("focus_composer", "Focus the message box", self.focus_composer)
        self._make("copy_last_answer", "Copy last answer", self.copy_last_answer)
        self._make("stop", "Stop", self.stop)
        self._make("regenerate_last", "Regenerate last answer", window.regenerate_last)
        self._make("chat_settings", "Chat settings…", window.toggle_chat_settings)
        self._make("zoom_in", "Zoom in", lambda: self.set_zoom(self.zoom + 1))
        self._make("zoom_out", "Zoom out", lambda: self.set_zoom(self.zoom - 1))
        self._make("zoom_reset", "Actual size", lambda: self.set_zoom(0))
        self._make("settings", "Settings…", self.show_settings).setMenuRole(QAction.MenuRole.PreferencesRole)
        self._make("shortcuts_help", "Keyboard shortcuts", self.show_shortcuts)
        self._make("quit", "Quit", window.close)
        self.about_action = QAction("About Hearth", window)
        self.about_action.setObjectName("about")
        self.about_action.triggered.connect(self.show_about)
        # Esc is the stop action's only while the chat shown answers (or waits its turn to);
        # otherwise it is left to whatever has the focus (and to the window: it cancels an edit).
        # Up in an empty message box (edit_last) is the composer's own key.
        window.vm.busy_changed.connect(self.actions["stop"].setEnabled)
        self.actions["stop"].setEnabled(window.vm.busy)
        view = window.menuBar().addMenu("&View")
        for action_id in ("zoom_in", "zoom_out", "zoom_reset"):
            view.addAction(self.actions[action_id])
        view.addSeparator()
        view.addAction(self.actions["search"])
        view.addAction(self.actions["chat_settings"])
        view.addSeparator()
        view.addAction(self.actions["settings"])
        help_menu = window.menuBar().addMenu("&Help")
        help_menu.addAction(self.actions["shortcuts_help"])
        help_menu.addAction(self.about_action)
        self.set_zoom(self._saved_zoom(), save=False)
        app = QApplication.instance()
        if prefs is not None and isinstance(app, QApplication):
            apply_saved_theme(app, prefs)  # app.ui.launch did already; a window on another window.ini had not

    def _make(self, action_id: str, text: str, slot: Callable[[], object]) -> QAction:
        action = bind(QAction(text, self.window), action_id)
        action.triggered.connect(lambda _checked=False: slot())
        self.window.addAction(action)
        self.actions[action_id] = action
        return action

    def stop(self) -> None:
        """Esc while an answer comes: it cancels an edit first, as it does when none comes."""
        if self.window.message_commands.editing is not None:
            self.window.message_commands.cancel_edit()
        else:
            self.window.vm.stop()

    # -- search ------------------------------------------------------------------------
    def open_search(self) -> SearchPanel:
        if self.search_panel is None:
            self.search_panel = SearchPanel(self.search_vm, self.window)
            self.search_panel.chosen.connect(self.open_hit)
        self.search_panel.open_over(self.window)
        return self.search_panel

    def open_hit(self, hit: SearchHit) -> asyncio.Task[None]:
        """Open the hit's conversation at its message (switching branch if need be), or at
        the top for a title."""
        w = self.window
        return (w.ops.op("opening a search result", lambda: w.vm.open_at(hit.conversation_id, hit.message_id))
                .success(lambda _: self._reveal(hit))
                .failure(lambda e: w.show_problem(f"Could not open that result: {describe(e)}"))
                .run())

    def _reveal(self, hit: SearchHit) -> None:
        w = self.window
        if w.vm.current.conversation_id != hit.conversation_id:
            return  # the person opened something else meanwhile
        if hit.message_id is None or not w.transcript.scroll_to_message(hit.message_id):
            w.transcript.verticalScrollBar().setValue(0)

    # -- messages ----------------------------------------------------------------------
    def focus_composer(self) -> None:
        self.window.composer.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def copy_last_answer(self) -> None:
        """The last answer's text, as the model wrote it (Markdown): no role name, no metrics."""
        if not self.window.message_commands.copy_last_answer():
            self.window.status.show_notice("There is no answer to copy yet.")

    # -- zoom --------------------------------------------------------------------------
    def _saved_zoom(self) -> int:
        if self.prefs is None:
            return 0
        try:
            value = int(str(self.prefs.value(ZOOM_KEY, 0)))
        except ValueError:  # a hand-edited file: normal size rather than a failed start
            return 0
        return max(ZOOM_MIN, min(ZOOM_MAX, value))

    def set_zoom(self, step: int, *, save: bool = True) -> None:
        """Text in the transcript and the message box, `step` points from the normal size."""
        self.zoom = max(ZOOM_MIN, min(ZOOM_MAX, step))
        for widget in (self.window.transcript, self.window.composer):
            font = QFont(widget.font())
            font.setPointSizeF(max(4.0, self._base_size + self.zoom))
            widget.setFont(font)
        if save and self.prefs is not None:
            self.prefs.setValue(ZOOM_KEY, self.zoom)
            self.prefs.sync()
        self.zoom_changed.emit(self.zoom)

    # -- settings ----------------------------------------------------------------------
    def show_settings(self) -> SettingsDialog:
        if self.settings_dialog is None:
            dialog = SettingsDialog(self.window, normal_size=round(self._base_size), zoom_range=(ZOOM_MIN, ZOOM_MAX))
            keep_place(dialog)
            dialog.theme_chosen.connect(self.set_theme)
            dialog.zoom_chosen.connect(self.set_zoom)
            self.zoom_changed.connect(dialog.show_zoom)
            if self.window.serving is not None:
                dialog.serve_toggled.connect(self.window.serving.toggle)
                self.window.serving.changed.connect(dialog.show_serving)
                dialog.show_serving(*self.window.serving.state)
                self.window.serving.access_changed.connect(dialog.show_access)
                dialog.show_access(self.window.serving.access)
            self.settings_dialog = dialog
        self.settings_dialog.show_theme(self._theme())
        self.settings_dialog.show_zoom(self.zoom)
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        self.settings_dialog.activateWindow()
        return self.settings_dialog

    def _theme(self) -> Theme:
        app = QApplication.instance()
        return current_theme(app) if isinstance(app, QApplication) else Theme.SYSTEM

    def set_theme(self, theme: Theme) -> None:
        """Recolour every window now, and start with this theme next time."""
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, theme)
        save_theme(self.prefs, theme)

    # -- help --------------------------------------------------------------------------
    def show_shortcuts(self) -> ShortcutsDialog:
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = ShortcutsDialog(self.window)
            keep_place(self.shortcuts_dialog)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()
        self.shortcuts_dialog.activateWindow()
        return self.shortcuts_dialog

    def show_about(self) -> QMessageBox:
        """Not exec(): a nested event loop inside qasync would stall a streaming answer."""
        if self.about_box is None:
            box = QMessageBox(QMessageBox.Icon.NoIcon, "About Hearth", "", QMessageBox.StandardButton.Close,
                              self.window)
            box.setTextFormat(Qt.TextFormat.PlainText)
            box.setText(f"Hearth {hearth_version()}\n\nA local-first chat app: the model runs on this computer, "
                        "and your conversations stay in a database on it.\n\nPress F1 for the keyboard shortcuts.")
            box.setWindowModality(Qt.WindowModality.NonModal)
            keep_place(box)
            self.about_box = box
        self.about_box.show()
        return self.about_box
