"""The Settings window (Ctrl+,): the theme (follow the system, light, dark), the text size,
serving the models to other apps on localhost (app.ui.windows.serve_control), and sharing the
window's engine with `hearth ask` and `hearth serve` (app.ui.windows.share_control).

A non-modal window, made once and reused; every change applies at once. It only shows the
values it is given and reports what the person picks (`theme_chosen`, `zoom_chosen`):
AppDialogs applies and saves them, so the text size here and Ctrl +/Ctrl −/Ctrl 0 are one
setting (TextZoom); `serve_toggled` goes to ServeControl, whose answer comes back through
`show_serving` (and, while it serves, the address and token through `show_access`); so do
`share_toggled` and `show_sharing` with ShareControl.
Must not: apply a theme, touch fonts, start a server or write the settings file itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.ui.theme import Theme, set_style
from app.ui.widgets.serve_access import ServeAccess

if TYPE_CHECKING:
    from app.ui.windows.serve_control import Access

__all__ = ["SettingsDialog"]

_THEME_TEXT = {
    Theme.SYSTEM: "Follow the system (light or dark, as the desktop is)",
    Theme.LIGHT: "Light",
    Theme.DARK: "Dark",
}


class SettingsDialog(QDialog):
    theme_chosen = Signal(object)  # Theme
    zoom_chosen = Signal(int)  # points away from the normal size, as Ctrl +/Ctrl − count them
    serve_toggled = Signal(bool)
    share_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None, *, normal_size: int, zoom_range: tuple[int, int]) -> None:
        super().__init__(parent)
        self.setObjectName("settings_dialog")
        self.setWindowTitle("Settings")
        self.setModal(False)
        self.normal_size = normal_size
        self.setMinimumWidth(420)
        theme_box = QGroupBox("Theme", self)
        theme_column = QVBoxLayout(theme_box)
        self.themes = QButtonGroup(self)
        for i, theme in enumerate(Theme):
            button = QRadioButton(_THEME_TEXT[theme], theme_box)
            button.setObjectName(f"theme_{theme.value}")
            self.themes.addButton(button, i)
            theme_column.addWidget(button)
        self.themes.idClicked.connect(lambda i: self.theme_chosen.emit(list(Theme)[i]))
        self.text_size = QSpinBox(self)
        self.text_size.setObjectName("text_size")
        self.text_size.setRange(normal_size + zoom_range[0], normal_size + zoom_range[1])
        self.text_size.setSuffix(" pt")
        self.text_size.setToolTip("The size of the conversation's and the message box's text")
        self.text_size.valueChanged.connect(lambda value: self.zoom_chosen.emit(value - self.normal_size))
        self.normal_button = QPushButton("Normal size", self)
        self.normal_button.setToolTip(f"{normal_size} pt (Ctrl+0)")
        self.normal_button.setObjectName("text_size_normal")
        self.normal_button.clicked.connect(lambda: self.text_size.setValue(self.normal_size))
        text_box = QGroupBox("Text size of the conversation and the message box", self)
        size_row = QHBoxLayout()
        size_row.addWidget(self.text_size)
        size_row.addWidget(self.normal_button)
        size_row.addStretch(1)
        hint = QLabel("Ctrl + and Ctrl − change it too; Ctrl 0 brings it back to normal.", text_box)
        hint.setWordWrap(True)
        set_style(hint, "color: $muted;")
        text_column = QVBoxLayout(text_box)
        text_column.addLayout(size_row)
        text_column.addWidget(hint)
        self.serve_box = QGroupBox("Other apps", self)
        self.serve = QCheckBox("Serve on localhost:8765 (an OpenAI-compatible API)", self.serve_box)
        self.serve.setObjectName("serve")
        self.serve.setToolTip(
            "IDE plugins, scripts and other chat clients can then use this window's model and "
            "providers at http://127.0.0.1:8765/v1, one request at a time with your chats. "
            "They need the token shown here while it serves."
        )
        self.serve.toggled.connect(self.serve_toggled.emit)
        self.serve_status = QLabel(self.serve_box)
        self.serve_status.setObjectName("serve_status")
        self.serve_status.setWordWrap(True)
        self.serve_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        serve_column = QVBoxLayout(self.serve_box)
        serve_column.addWidget(self.serve)
        serve_column.addWidget(self.serve_status)
        self.serve_access = ServeAccess(self.serve_box)
        serve_column.addWidget(self.serve_access)
        self.share = QCheckBox("Let hearth ask and hearth serve use this window's model", self.serve_box)
        self.share.setObjectName("share")
        self.share.setToolTip(
            "They then answer from the model this window has loaded (one copy in memory, no loading "
            "wait), through a socket only you can open; their answers wait their turn with your chats. "
            "Off: each loads a copy of its own."
        )
        self.share.toggled.connect(self.share_toggled.emit)
        self.share_status = QLabel(self.serve_box)
        self.share_status.setObjectName("share_status")
        self.share_status.setWordWrap(True)
        for widget in (self.serve, self.serve_status, self.share, self.share_status):
            widget.hide()  # each shown by its show_… (a window may share and not serve)
        serve_column.addWidget(self.share)
        serve_column.addWidget(self.share_status)
        self.serve_box.hide()  # shown when the window can serve or share (show_serving, show_sharing)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(theme_box)
        layout.addWidget(text_box)
        layout.addWidget(self.serve_box)
        layout.addStretch(1)
        layout.addWidget(buttons)
        self.setWindowFlag(Qt.WindowType.WindowContextHelpButtonHint, False)

    def theme(self) -> Theme:
        return list(Theme)[max(0, self.themes.checkedId())]

    def show_theme(self, theme: Theme) -> None:
        button = self.themes.button(list(Theme).index(theme))
        with QSignalBlocker(self.themes):
            button.setChecked(True)

    def show_zoom(self, zoom: int) -> None:
        """Keep step with Ctrl +/Ctrl −, without reporting it back as a choice."""
        with QSignalBlocker(self.text_size):
            self.text_size.setValue(self.normal_size + zoom)
        self.normal_button.setEnabled(zoom != 0)

    def zoom(self) -> int:
        return self.text_size.value() - self.normal_size

    def show_serving(self, serving: bool, text: str, problem: bool) -> None:
        """What the server is doing, without reporting it back as a choice."""
        self.serve_box.show()
        self.serve.show()
        self.serve_status.show()
        with QSignalBlocker(self.serve):
            self.serve.setChecked(serving)
        self.serve_status.setText(text)
        set_style(self.serve_status, "color: $error;" if problem else "color: $muted;")
        self.serve_status.setMinimumHeight(self.serve_status.heightForWidth(max(200, self.serve_status.width())))
        self.adjustSize()  # a longer message gets the lines it needs

    def show_sharing(self, sharing: bool, text: str, problem: bool) -> None:
        """Whether the window hosts its engine, without reporting it back as a choice."""
        self.serve_box.show()
        self.share.show()
        self.share_status.show()
        with QSignalBlocker(self.share):
            self.share.setChecked(sharing)
        self.share_status.setText(text)
        set_style(self.share_status, "color: $error;" if problem else "color: $muted;")
        self.share_status.setMinimumHeight(self.share_status.heightForWidth(max(200, self.share_status.width())))
        self.adjustSize()

    def show_access(self, access: Access | None) -> None:
        """The address and the token while serving (ServeControl.access_changed)."""
        self.serve_access.show_access(access)
        self.adjustSize()
