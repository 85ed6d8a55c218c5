"""The form for one remote provider: every field of providers.toml, nothing else.

Name, kind (each declared wire format, with a line on what it is for), base URL, model,
extra headers (a small table), the environment variable for the key, the three timeouts
(connect, first token, between tokens) in seconds, stop strings, redaction patterns and
whether <think> reasoning is split from the answer. The API key is not a field here: it
never goes into the file (the dialog stores it in the keychain).
Owns only the widgets; `config()` reads them into a ProviderConfig and `edited` says they
changed. Must not: validate against the file or save (the dialog asks the view-model).
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.providers import ProviderConfig, key_env_name
from app.ui.theme import set_style

__all__ = ["ProviderForm"]


def _seconds(tooltip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.5, 3600.0)
    box.setDecimals(1)
    box.setSingleStep(5.0)
    box.setSuffix(" s")
    box.setToolTip(tooltip)
    return box


def _lines(placeholder: str) -> QPlainTextEdit:
    edit = QPlainTextEdit()
    edit.setPlaceholderText(placeholder)
    edit.setTabChangesFocus(True)
    edit.setFixedHeight(edit.fontMetrics().lineSpacing() * 3 + 12)
    return edit


class ProviderForm(QWidget):
    edited = Signal()  # any field changed

    def __init__(self, formats: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("e.g. lan-box")
        self.kind = QComboBox(self)
        for kind, help_text in formats:
            self.kind.addItem(kind, kind)
            self.kind.setItemData(self.kind.count() - 1, help_text, Qt.ItemDataRole.ToolTipRole)
        self.kind_help = QLabel(self)
        self.kind_help.setWordWrap(True)
        set_style(self.kind_help, "color: $muted;")
        self.base_url = QLineEdit(self)
        self.base_url.setPlaceholderText("http://192.168.1.20:8000/v1")
        self.model = QLineEdit(self)
        self.model.setPlaceholderText("the model name the server knows, e.g. qwen2.5-7b-instruct")
        self.headers = QTableWidget(0, 2, self)
        self.headers.setHorizontalHeaderLabels(["Header", "Value"])
        self.headers.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.headers.verticalHeader().hide()
        self.headers.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.headers.setFixedHeight(86)
        add_header = QToolButton(self)
        add_header.setText("+")
        add_header.setToolTip("Add a header")
        remove_header = QToolButton(self)
        remove_header.setText("−")
        remove_header.setToolTip("Remove the selected header")
        self.key_env = QLineEdit(self)
        self.connect_timeout = _seconds("How long to wait for the server to accept the connection")
        self.first_token_timeout = _seconds("How long to wait for the first text (a big prompt on a busy "
                                            "server takes a while)")
        self.between_tokens_timeout = _seconds("How long the stream may pause between pieces of text "
                                               "before the answer is stopped")
        self.stop = _lines("one stop string per line")
        self.redact = _lines("one regular expression per line; matching text is hidden before it is shown or saved")
        self.think = QCheckBox("Show <think>…</think> reasoning apart from the answer, folded", self)

        header_buttons = QVBoxLayout()
        header_buttons.addWidget(add_header)
        header_buttons.addWidget(remove_header)
        header_buttons.addStretch(1)
        header_row = QHBoxLayout()
        header_row.addWidget(self.headers, 1)
        header_row.addLayout(header_buttons)
        timeouts = QHBoxLayout()
        for caption, box in (("connect", self.connect_timeout), ("first token", self.first_token_timeout),
                             ("between tokens", self.between_tokens_timeout)):
            timeouts.addWidget(QLabel(caption, self))
            timeouts.addWidget(box)
        timeouts.addStretch(1)
        set_style(self, '[problem="true"] { border: 1px solid $error; }')  # the field mark() names
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        form.addRow("", self.kind_help)
        form.addRow("Base URL", self.base_url)
        form.addRow("Model", self.model)
        form.addRow("Extra headers", header_row)
        form.addRow("Key variable", self.key_env)
        form.addRow("Timeouts", timeouts)
        form.addRow("Stop strings", self.stop)
        form.addRow("Redact", self.redact)
        form.addRow("", self.think)

        add_header.clicked.connect(lambda: self._add_header())
        remove_header.clicked.connect(self._remove_header)
        self.kind.currentIndexChanged.connect(self._show_kind_help)
        for line in (self.name, self.base_url, self.model, self.key_env):
            line.textChanged.connect(self.edited)
        self.name.textChanged.connect(self._show_key_env_hint)
        self.kind.currentIndexChanged.connect(self.edited)
        self.headers.itemChanged.connect(self.edited)
        for box in (self.connect_timeout, self.first_token_timeout, self.between_tokens_timeout):
            box.valueChanged.connect(self.edited)
        self.stop.textChanged.connect(self.edited)
        self.redact.textChanged.connect(self.edited)
        self.think.toggled.connect(self.edited)

    def mark(self, field: str | None) -> None:
        """Outline the widget of the providers.toml field that is wrong (None: clear every mark)."""
        widgets = {"name": self.name, "kind": self.kind, "base_url": self.base_url, "model": self.model,
                   "headers": self.headers, "key_env": self.key_env, "connect_timeout_s": self.connect_timeout,
                   "first_token_timeout_s": self.first_token_timeout,
                   "between_tokens_timeout_s": self.between_tokens_timeout, "stop": self.stop,
                   "redact": self.redact, "filters": self.redact}
        for key, widget in widgets.items():
            on = key == field
            if bool(widget.property("problem")) != on:
                widget.setProperty("problem", on)
                widget.style().unpolish(widget)  # a dynamic property only restyles when repolished
                widget.style().polish(widget)

    def set_config(self, config: ProviderConfig, *, existing: bool) -> None:
        """Fill the form. An existing provider keeps its name: conversations and the keychain
        know it by that name."""
        widgets = (self.name, self.kind, self.base_url, self.model, self.headers, self.key_env, self.connect_timeout,
                   self.first_token_timeout, self.between_tokens_timeout, self.stop, self.redact, self.think)
        for w in widgets:
            w.blockSignals(True)
        try:
            self.name.setText(config.name)
            self.name.setReadOnly(existing)
            self.name.setToolTip("To rename a provider, add it under the new name and remove the old one"
                                 if existing else "How the window and `hearth ask --provider` call it")
            index = self.kind.findData(config.kind)
            self.kind.setCurrentIndex(max(index, 0))
            self.base_url.setText(config.base_url)
            self.model.setText(config.model)
            self.headers.setRowCount(0)
            for name, value in config.headers.items():
                self._add_header(name, value)
            self.key_env.setText(config.key_env or "")
            self.connect_timeout.setValue(config.connect_timeout_s)
            self.first_token_timeout.setValue(config.first_token_timeout_s)
            self.between_tokens_timeout.setValue(config.between_tokens_timeout_s)
            self.stop.setPlainText("\n".join(config.stop))
            self.redact.setPlainText("\n".join(config.redact))
            self.think.setChecked(config.think)
        finally:
            for w in widgets:
                w.blockSignals(False)
        self._show_kind_help()
        self._show_key_env_hint()

    def config(self, base: ProviderConfig | None = None) -> ProviderConfig:
        """What the form says, on top of `base` (fields the form does not show: path, retries)."""
        headers: dict[str, str] = {}
        for row in range(self.headers.rowCount()):
            name, value = (self.headers.item(row, col) for col in (0, 1))
            key = name.text().strip() if name else ""
            if key:
                headers[key] = value.text().strip() if value else ""
        values = dict(
            name=self.name.text().strip(),
            kind=str(self.kind.currentData() or ""),
            base_url=self.base_url.text().strip(),
            model=self.model.text().strip(),
            headers=headers,
            key_env=self.key_env.text().strip() or None,
            connect_timeout_s=self.connect_timeout.value(),
            first_token_timeout_s=self.first_token_timeout.value(),
            between_tokens_timeout_s=self.between_tokens_timeout.value(),
            stop=tuple(s for s in self.stop.toPlainText().split("\n") if s),
            redact=tuple(s for s in self.redact.toPlainText().split("\n") if s.strip()),
            think=self.think.isChecked(),
        )
        if base is None:
            return ProviderConfig(**values)  # type: ignore[arg-type]
        return dataclasses.replace(base, **values)  # type: ignore[arg-type]

    def _add_header(self, name: str = "", value: str = "") -> None:
        row = self.headers.rowCount()
        self.headers.insertRow(row)
        name_item = QTableWidgetItem(name)
        self.headers.setItem(row, 0, name_item)
        self.headers.setItem(row, 1, QTableWidgetItem(value))
        if not name:
            self.headers.editItem(name_item)

    def _remove_header(self) -> None:
        rows = sorted({i.row() for i in self.headers.selectedIndexes()}, reverse=True)
        for row in rows or [self.headers.rowCount() - 1]:
            if row >= 0:
                self.headers.removeRow(row)
        self.edited.emit()

    def _show_kind_help(self) -> None:
        self.kind_help.setText(str(self.kind.currentData(Qt.ItemDataRole.ToolTipRole) or ""))

    def _show_key_env_hint(self) -> None:
        name = self.name.text().strip()
        default = key_env_name(name) if name else "HEARTH_API_KEY_<NAME>"
        self.key_env.setPlaceholderText(f"optional; {default} is always looked at")
