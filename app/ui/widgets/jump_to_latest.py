"""The "↓ New text" button that floats over the transcript's bottom edge.

Owns when it shows and where: text arrived below what the person is reading (they scrolled up
while an answer streams), so the view did not follow it; it goes away once they are at the
bottom again, however they got there. A click takes them to the latest text, and from there
the view follows the answer again (the transcript follows whenever it is at the bottom).
Must not: scroll on its own, or decide what counts as new text (the transcript calls `offer`).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractScrollArea, QToolButton
from shiboken6 import isValid

from app.ui.theme import set_style

__all__ = ["AT_BOTTOM_PX", "JumpToLatest"]

AT_BOTTOM_PX = 8  # this close to the end counts as at the bottom (and following)
_GAP = 12  # between the button and the transcript's bottom edge


class JumpToLatest(QToolButton):
    def __init__(self, area: QAbstractScrollArea) -> None:
        super().__init__(area)  # the scroll area's child, not its viewport's: it must not scroll with the text
        self._area = area
        self.setObjectName("jumpToLatest")
        self.setText("↓ New text")
        self.setToolTip("Go to the latest text and follow the answer")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the message box keeps the focus
        set_style(
            self,
            "QToolButton#jumpToLatest { background: $accent; color: $base; border: none;"
            " border-radius: 12px; padding: 4px 14px; font-weight: 600; }",
        )
        self.hide()
        area.verticalScrollBar().valueChanged.connect(self._moved)
        self._view = area.viewport()
        self._view.installEventFilter(self)  # the viewport's own resize: the area's comes before it
        self.clicked.connect(self.jump)

    def at_bottom(self) -> bool:
        bar = self._area.verticalScrollBar()
        return bar.value() >= bar.maximum() - AT_BOTTOM_PX

    def offer(self) -> None:
        """Text arrived; shown if the person is not at the bottom to see it."""
        if self.at_bottom():
            return
        if self.isHidden():
            self._place()
            self.show()
            self.raise_()

    def jump(self) -> None:
        bar = self._area.verticalScrollBar()
        bar.setValue(bar.maximum())
        self.hide()

    def _moved(self, _value: int) -> None:
        if self.isVisible() and self.at_bottom():
            self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # isValid: the viewport is resized while the transcript is being torn down, after this button.
        if event.type() == QEvent.Type.Resize and watched is self._view and isValid(self) and self.isVisible():
            self._place()
        return False

    def _place(self) -> None:
        """Centred over the bottom edge of the text (the viewport), clear of the scroll bar."""
        self.adjustSize()
        view = self._view.geometry()
        self.move(view.center().x() - self.width() // 2, view.bottom() - self.height() - _GAP)
