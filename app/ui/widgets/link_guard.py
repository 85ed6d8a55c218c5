"""Opening a link that a model wrote: web links only, and only after the person confirms.

Owns: the rule (http and https, nothing else: no javascript:, file:, data:, or an app's own
scheme) and the question, which shows the whole address with its host in ASCII (punycode),
so a look-alike host cannot pass for another. The browser opens only on "Open".
Must not: fetch anything itself, or open a link without asking.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

__all__ = ["LinkGuard", "refusal"]

WEB_SCHEMES = ("http", "https")


def refusal(address: str) -> str | None:
    """Why Hearth will not open `address`, or None when it may (after asking)."""
    url = QUrl(address.strip(), QUrl.ParsingMode.StrictMode)
    if not url.isValid() or not url.scheme():
        return f"This is not a web address, so Hearth does not open it:\n{address}"
    if url.scheme().lower() not in WEB_SCHEMES or not url.host():
        return f"Hearth opens only web links (http and https), not {url.scheme()}: links:\n{address}"
    return None


class LinkGuard(QObject):
    """Asks before opening. `opener` is the browser (tests pass a recorder)."""

    def __init__(self, parent: QWidget, opener: Callable[[QUrl], object] = QDesktopServices.openUrl) -> None:
        super().__init__(parent)
        self._parent = parent
        self._opener = opener
        self.box: QMessageBox | None = None  # the question or refusal on screen

    def ask(self, address: str) -> None:
        if self.box is not None:
            self.box.close()
        problem = refusal(address)
        box = QMessageBox(self._parent)
        box.setObjectName("link_question")
        box.setWindowTitle("Open link")
        if problem is not None:
            box.setIcon(QMessageBox.Icon.Information)
            box.setText(problem)
            box.setStandardButtons(QMessageBox.StandardButton.Ok)
        else:
            url = QUrl(address.strip(), QUrl.ParsingMode.StrictMode)
            shown = bytes(url.toEncoded().data()).decode("ascii", "replace")
            box.setIcon(QMessageBox.Icon.Question)
            box.setText("Open this link in your browser? The model wrote it: check where it goes.")
            box.setInformativeText(shown)
            opened = box.addButton("Open", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.setDefaultButton(QMessageBox.StandardButton.Cancel)
            box.buttonClicked.connect(lambda button: self._opener(url) if button is opened else None)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # the address can be copied
        self.box = box
        box.open()
