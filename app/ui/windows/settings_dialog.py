"""The Settings window (Ctrl+,): the theme (follow the system, light, dark) and the text size.

A non-modal window, made once and reused; every change applies at once. It only shows the
values it is given and reports what the person picks (`theme_chosen`, `zoom_chosen`):
WindowKeys applies and saves them, so the text size here and Ctrl +/Ctrl −/Ctrl 0 are one
setting. Must not: apply a theme, touch fonts or write the settings file itself.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
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

__all__ = ["SettingsDialog"]

_THEME_TEXT = {Theme.SYSTEM: "Follow the system (light or dark, as the desktop is)", Theme.LIGHT: "Light",
               Theme.DARK: "Dark"}


class SettingsDialog(QDialog):
    theme_chosen = Signal(object)  # Theme
    zoom_chosen = Signal(int)  # points away from the normal size, as Ctrl +/Ctrl − count them

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
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(theme_box)
        layout.addWidget(text_box)
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
