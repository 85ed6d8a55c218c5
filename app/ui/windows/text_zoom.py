"""The text size of the transcript and the message box: Ctrl +, Ctrl −, Ctrl 0 and Settings.

Owns the zoom step (points away from the normal size, ZOOM_MIN to ZOOM_MAX), putting it on the
widgets' fonts, and keeping it in the window's QSettings (ZOOM_KEY) so the next start has it.
`zoom_changed` tells whoever shows it (the Settings window), whoever changed it.
Must not: touch other widgets' fonts, or anything process-wide.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QWidget

__all__ = ["ZOOM_KEY", "ZOOM_MAX", "ZOOM_MIN", "TextZoom"]

ZOOM_KEY = "view/zoom"
ZOOM_MIN, ZOOM_MAX = -4, 12  # points away from the normal size


class TextZoom(QObject):
    """Zooms `widgets` together; the first one's font is the normal size. Made once by the
    window, after its widgets exist; it puts the saved step on them at once."""

    zoom_changed = Signal(int)  # the zoom step now, whoever changed it (a key, the menu, Settings)

    def __init__(self, parent: QObject, widgets: tuple[QWidget, ...], prefs: QSettings | None) -> None:
        super().__init__(parent)
        self._widgets = widgets
        self._prefs = prefs  # None: the zoom is not saved (tests of the chat alone)
        # A font set in pixels has no point size (-1): zoom from a usual size then.
        size = widgets[0].font().pointSizeF()
        self.base_size = size if size > 0 else 10.0
        self.zoom = 0
        self.set_zoom(self._saved(), save=False)

    def _saved(self) -> int:
        if self._prefs is None:
            return 0
        try:
            value = int(str(self._prefs.value(ZOOM_KEY, 0)))
        except ValueError:  # a hand-edited file: normal size rather than a failed start
            return 0
        return max(ZOOM_MIN, min(ZOOM_MAX, value))

    def set_zoom(self, step: int, *, save: bool = True) -> None:
        """Text `step` points from the normal size."""
        self.zoom = max(ZOOM_MIN, min(ZOOM_MAX, step))
        for widget in self._widgets:
            font = QFont(widget.font())
            font.setPointSizeF(max(4.0, self.base_size + self.zoom))
            widget.setFont(font)
        if save and self._prefs is not None:
            self._prefs.setValue(ZOOM_KEY, self.zoom)
            self._prefs.sync()
        self.zoom_changed.emit(self.zoom)

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom + 1)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom - 1)

    def reset(self) -> None:
        self.set_zoom(0)
