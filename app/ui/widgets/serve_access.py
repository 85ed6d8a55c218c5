"""What another app needs to use the window's server, shown in Settings → Other apps while it
serves: the address, the token (dots until Show), a Copy button for each, and where the token
is kept (the keychain, or a private file when there is none).

Must not: keep the token anywhere but its field, or put it on the clipboard unless Copy is pressed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QGridLayout, QLabel, QLineEdit, QPushButton, QWidget

from app.ui.theme import set_style

if TYPE_CHECKING:
    from app.ui.windows.serve_control import Access

__all__ = ["ServeAccess"]

_COPIED_MS = 1500


class ServeAccess(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serve_access")
        self.address = self._field("serve_address", "Where clients send requests (their base URL)")
        self.token = self._field("serve_token", "The API key clients send (Authorization: Bearer …)")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.copy_address = self._copy_button("copy_address", self.address)
        self.show_token = QPushButton("Show", self)
        self.show_token.setObjectName("show_token")
        self.show_token.setCheckable(True)
        self.show_token.toggled.connect(self._reveal)
        self.copy_token = self._copy_button("copy_token", self.token)
        self.kept = QLabel(self)
        self.kept.setObjectName("serve_token_kept")
        self.kept.setWordWrap(True)
        set_style(self.kept, "color: $muted;")
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Address", self), 0, 0)
        grid.addWidget(self.address, 0, 1, 1, 2)
        grid.addWidget(self.copy_address, 0, 3)
        grid.addWidget(QLabel("Token", self), 1, 0)
        grid.addWidget(self.token, 1, 1)
        grid.addWidget(self.show_token, 1, 2)
        grid.addWidget(self.copy_token, 1, 3)
        grid.addWidget(self.kept, 2, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        self.hide()

    def show_access(self, access: Access | None) -> None:
        """While serving: the address and the token (hidden again each time); else nothing."""
        self.show_token.setChecked(False)
        if access is None:
            self.address.clear()
            self.token.clear()
            self.hide()
            return
        for field, text in ((self.address, access.address), (self.token, access.token)):
            field.setText(text)
            field.setCursorPosition(0)  # its start in view, not its end
        self.kept.setText(f"Kept {access.kept}.")
        self.kept.setToolTip(self.kept.text())
        self.show()

    def _field(self, name: str, tip: str) -> QLineEdit:
        field = QLineEdit(self)
        field.setObjectName(name)
        field.setReadOnly(True)
        field.setToolTip(tip)
        field.setMinimumWidth(220)
        return field

    def _copy_button(self, name: str, source: QLineEdit) -> QPushButton:
        button = QPushButton("Copy", self)
        button.setObjectName(name)
        button.setMinimumWidth(button.fontMetrics().horizontalAdvance("Copied") + 24)  # no jump when it says so
        button.clicked.connect(lambda: self._copy(button, source.text(), secret=source is self.token))
        return button

    def _reveal(self, shown: bool) -> None:
        self.token.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.show_token.setText("Hide" if shown else "Show")

    def _copy(self, button: QPushButton, text: str, *, secret: bool) -> None:
        data = QMimeData()
        data.setText(text)
        if secret:  # clipboard managers (Klipper, KDE Connect) then leave it out of their history
            data.setData("x-kde-passwordManagerHint", b"secret")
        QGuiApplication.clipboard().setMimeData(data)
        button.setText("Copied")
        QTimer.singleShot(_COPIED_MS, button, lambda: button.setText("Copy"))
