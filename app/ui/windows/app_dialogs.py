"""The main window's Settings, Keyboard shortcuts and About windows, and the theme.

Owns the three windows (made on first use, then reused, placed where the person left them),
what the Settings window changes (the theme, saved in the window's QSettings and put on the
whole application at once; the text size, through TextZoom, so Settings and Ctrl +/Ctrl −/
Ctrl 0 are one setting; serving, through ServeControl) and the saved theme applied when the
window is made. Must not: hold chat state, or give a key to anything (the window's actions do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.core.doctor import hearth_version
from app.ui.theme import Theme, apply_theme, current_theme
from app.ui.windows.dialog_place import keep_place
from app.ui.windows.settings_dialog import SettingsDialog
from app.ui.windows.shortcuts_dialog import ShortcutsDialog
from app.ui.windows.text_zoom import ZOOM_MAX, ZOOM_MIN
from app.ui.windows.window_prefs import apply_saved_theme, save_theme

if TYPE_CHECKING:
    from app.ui.windows.serve_control import ServeControl
    from app.ui.windows.share_control import ShareControl
    from app.ui.windows.text_zoom import TextZoom

__all__ = ["AppDialogs"]


class AppDialogs(QObject):
    """`window` parents the dialogs; `serving` None: the window does not serve other apps;
    `prefs` None: the theme is not saved; `sharing` None: the window never hosts its engine."""

    def __init__(
        self,
        window: QWidget,
        zoom: TextZoom,
        serving: ServeControl | None,
        prefs: QSettings | None,
        sharing: ShareControl | None = None,
    ) -> None:
        super().__init__(window)
        self._sharing = sharing
        self._window = window
        self._zoom = zoom
        self._serving = serving
        self._prefs = prefs
        self.shortcuts_dialog: ShortcutsDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.about_box: QMessageBox | None = None
        app = QApplication.instance()
        if prefs is not None and isinstance(app, QApplication):
            apply_saved_theme(app, prefs)  # app.ui.launch did already; a window on another window.ini had not

    # -- settings ----------------------------------------------------------------------
    def show_settings(self) -> SettingsDialog:
        if self.settings_dialog is None:
            zoom = self._zoom
            dialog = SettingsDialog(self._window, normal_size=round(zoom.base_size), zoom_range=(ZOOM_MIN, ZOOM_MAX))
            keep_place(dialog)
            dialog.theme_chosen.connect(self.set_theme)
            dialog.zoom_chosen.connect(zoom.set_zoom)
            zoom.zoom_changed.connect(dialog.show_zoom)
            if self._serving is not None:
                dialog.serve_toggled.connect(self._serving.toggle)
                self._serving.changed.connect(dialog.show_serving)
                dialog.show_serving(*self._serving.state)
                self._serving.access_changed.connect(dialog.show_access)
                dialog.show_access(self._serving.access)
            if self._sharing is not None:
                dialog.share_toggled.connect(self._sharing.toggle)
                self._sharing.changed.connect(dialog.show_sharing)
                dialog.show_sharing(*self._sharing.state)
            self.settings_dialog = dialog
        self.settings_dialog.show_theme(self._theme())
        self.settings_dialog.show_zoom(self._zoom.zoom)
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
        save_theme(self._prefs, theme)

    # -- help --------------------------------------------------------------------------
    def show_shortcuts(self) -> ShortcutsDialog:
        if self.shortcuts_dialog is None:
            self.shortcuts_dialog = ShortcutsDialog(self._window)
            keep_place(self.shortcuts_dialog)
        self.shortcuts_dialog.show()
        self.shortcuts_dialog.raise_()
        self.shortcuts_dialog.activateWindow()
        return self.shortcuts_dialog

    def show_about(self) -> QMessageBox:
        """Not exec(): a nested event loop inside qasync would stall a streaming answer."""
        if self.about_box is None:
            box = QMessageBox(
                QMessageBox.Icon.NoIcon, "About Hearth", "", QMessageBox.StandardButton.Close, self._window
            )
            box.setTextFormat(Qt.TextFormat.PlainText)
            box.setText(
                f"Hearth {hearth_version()}\n\nA local-first chat app: the model runs on this computer, "
                "and your conversations stay in a database on it.\n\nPress F1 for the keyboard shortcuts."
            )
            box.setWindowModality(Qt.WindowModality.NonModal)
            keep_place(box)
            self.about_box = box
        self.about_box.show()
        return self.about_box
