"""What the window remembers between runs, in `<data dir>/window.ini`: the theme, the window's
size and place, where its splitters were left, and which conversation it showed (app.ui.launch
opens it again at start-up).

Owns those keys and reading them back safely (a hand-edited or damaged value means the
default, never a failed start). The zoom (text_zoom.ZOOM_KEY) and whether the chat
settings panel was open (chat_settings_side.PANEL_KEY) live in the same file, and so do the
chats' unsent drafts (app.ui.windows.drafts, group "drafts").
Must not: apply anything process-wide by itself except through `app.ui.theme.apply_theme`
when asked (`apply_saved_theme`, called by app.ui.launch at start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, QSettings
from PySide6.QtWidgets import QApplication, QSplitter, QWidget

from app.ui.theme import Theme, apply_theme

__all__ = [
    "GEOMETRY_KEY",
    "LAST_CONVERSATION_KEY",
    "SPLITTER_KEYS",
    "THEME_KEY",
    "WindowLayout",
    "apply_saved_theme",
    "open_prefs",
    "save_theme",
    "saved_theme",
]

THEME_KEY = "view/theme"
GEOMETRY_KEY = "window/geometry"
LAST_CONVERSATION_KEY = "window/last_conversation"  # its id; empty: a new chat was shown
# The list | chat splitter, and the transcript | chat settings panel one inside it.
SPLITTER_KEYS = ("window/list_splitter", "window/chat_splitter")


def open_prefs(data_dir: Path) -> QSettings:
    return QSettings(str(data_dir / "window.ini"), QSettings.Format.IniFormat)


def saved_theme(prefs: QSettings | None) -> Theme:
    if prefs is None:
        return Theme.SYSTEM
    try:
        return Theme(str(prefs.value(THEME_KEY, Theme.SYSTEM.value)))
    except ValueError:  # a hand-edited file: the system's colours rather than a failed start
        return Theme.SYSTEM


def save_theme(prefs: QSettings | None, theme: Theme) -> None:
    if prefs is not None:
        prefs.setValue(THEME_KEY, theme.value)
        prefs.sync()


def apply_saved_theme(app: QApplication, prefs: QSettings | None) -> Theme:
    theme = saved_theme(prefs)
    apply_theme(app, theme)
    return theme


def _bytes(value: object) -> QByteArray | None:
    return value if isinstance(value, QByteArray) and not value.isEmpty() else None


class WindowLayout(QObject):
    """Puts the window where it was and its splitters as they were (made once, at the end of
    the window's set-up), and saves both, with the conversation shown, when the window closes
    (it calls `save`)."""

    def __init__(
        self,
        window: QWidget,
        splitters: tuple[QSplitter, QSplitter],
        prefs: QSettings | None,
        *,
        shown: Callable[[], int | None],
    ) -> None:
        """`splitters`: list | chat, then transcript | chat settings; `shown`: the conversation's id."""
        super().__init__(window)
        self._window = window
        self._splitters = splitters
        self._shown = shown
        self.prefs = prefs
        self.restore()

    def restore(self) -> None:
        """restoreGeometry moves a window saved on a screen that is gone onto one that is there."""
        if self.prefs is None:
            return
        geometry = _bytes(self.prefs.value(GEOMETRY_KEY))
        if geometry is not None:
            self._window.restoreGeometry(geometry)  # False (ignored) for damaged bytes
        for splitter, key in zip(self._splitters, SPLITTER_KEYS, strict=True):
            state = _bytes(self.prefs.value(key))
            if state is not None:
                splitter.restoreState(state)

    def save(self) -> None:
        if self.prefs is None:
            return
        self.prefs.setValue(GEOMETRY_KEY, self._window.saveGeometry())
        for splitter, key in zip(self._splitters, SPLITTER_KEYS, strict=True):
            self.prefs.setValue(key, splitter.saveState())
        shown = self._shown()
        self.prefs.setValue(LAST_CONVERSATION_KEY, "" if shown is None else str(shown))
        self.prefs.sync()

    def last_conversation(self) -> int | None:
        """The conversation shown when the window last closed (None: a new chat, or nothing kept)."""
        if self.prefs is None:
            return None
        try:
            shown = int(str(self.prefs.value(LAST_CONVERSATION_KEY, "")))
        except ValueError:  # empty, or hand-edited
            return None
        return shown if shown > 0 else None
