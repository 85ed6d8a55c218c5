"""Where a reused window comes back: at the place the person left it.

Owns `keep_place`, an event filter on a window that is closed and shown again (Providers,
Manage models, Settings, Keyboard shortcuts, About): it notes where the window's frame was
when it closed and puts it back there when it shows again. Under an X11 window manager, Qt
otherwise shows a closed window again with its old *frame* position taken as its *client*
position, so each reopening moved it down and right by the title bar and the border.
Must not: remember places between runs (window_prefs does that for the main window), or move
a window the first time it shows (the window manager places it then).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint
from PySide6.QtWidgets import QWidget

__all__ = ["KeepPlace", "keep_place"]


class KeepPlace(QObject):
    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.place: QPoint | None = None  # the frame's top left when it last closed
        # Set from a Show until the window manager's frame has arrived: the one check then.
        self._check: QPoint | None = None
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not (isinstance(watched, QWidget) and watched.isWindow()):
            return False
        kind = event.type()
        # Spontaneous ones come from the window manager (the main window minimised): not a close.
        if not event.spontaneous():
            if kind == QEvent.Type.Hide:
                self.place = watched.frameGeometry().topLeft()
                self._check = None
            elif kind == QEvent.Type.Show and self.place is not None:
                watched.move(self.place)  # a window's pos() is its frame's
                self._check = QPoint(self.place)
        if kind == QEvent.Type.Move and self._check is not None and watched.frameGeometry() != watched.geometry():
            # The frame has arrived. When Qt did not know the frame's size yet at the move above
            # (seen on a loaded machine), it placed the *client* there and the frame landed a
            # title bar higher: put it right once, then leave the window to the person.
            place, self._check = self._check, None
            if watched.frameGeometry().topLeft() != place:
                watched.move(place)
        return False


def keep_place(window: QWidget) -> KeepPlace:
    return KeepPlace(window)
