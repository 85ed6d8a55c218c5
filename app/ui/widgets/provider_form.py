"""The form for one remote provider: every field of providers.toml, nothing else.

Up front: a preset (app.core.provider_setup: fills the kind and the base URL), the name, the
kind in words (each declared wire format, with a line on what it is for), the base URL, the
model (with the server's own list once "Test connection" has asked it), and the test's result.
Folded under "Advanced settings": extra headers, the key's environment variable, the three
timeouts, stop strings, redaction patterns and whether <think> reasoning is split out. The
API key is not a field here: it never goes into the file (the dialog stores it in the keychain).
Header values are secrets (they go to the keychain with the provider): shown as dots, plain
only while one is being typed.
Owns only the widgets; `config()` reads them into a ProviderConfig, `edited` says they changed
and `touched` which fields the person changed (the dialog shows a problem only for those).
Must not: validate against the file, test the connection or save (the dialog does, through the
view-model).
"""

from __future__ import annotations

import dataclasses
import functools

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.provider_setup import KIND_LABELS, PRESETS, Probe
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


class _Hidden(QStyledItemDelegate):
    """Draws a cell's text as dots (its editor still shows what is typed)."""

    def displayText(self, value: object, locale: object) -> str:
        return "•" * min(len(str(value)), 12) if value else ""


class ProviderForm(QWidget):
    edited = Signal()  # any field changed
    test_requested = Signal()

    def __init__(self, formats: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.touched: set[str] = set()  # the providers.toml fields the person changed
        self.preset = QComboBox(self)
        self.preset.setObjectName("preset")
        self.preset.addItem("Start from a preset…", None)
        for p in PRESETS:
            self.preset.addItem(p.label, p)
        self.preset.setToolTip("Fills the kind and the address of a common server; change them as needed")
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("e.g. lan-box")
        self.kind = QComboBox(self)
        for kind, help_text in formats:
            self.kind.addItem(KIND_LABELS.get(kind, kind), kind)
            self.kind.setItemData(self.kind.count() - 1, help_text, Qt.ItemDataRole.ToolTipRole)
        self.kind_help = QLabel(self)
        self.kind_help.setWordWrap(True)
        set_style(self.kind_help, "color: $muted;")
        self.base_url = QLineEdit(self)
        self.base_url.setPlaceholderText("http://192.168.1.20:8000/v1")
        self.model = QLineEdit(self)
        self.model.setPlaceholderText("the model name the server knows, e.g. qwen2.5-7b-instruct")
        self._models = QStringListModel(self)
        completer = QCompleter(self._models, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.model.setCompleter(completer)
        self.model_menu = QToolButton(self)
        self.model_menu.setText("Choose ▾")
        self.model_menu.setToolTip("The models the server listed (Test connection asks it)")
        self.model_menu.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.model_menu.setMenu(QMenu(self.model_menu))
        self.model_menu.hide()
        self.test_button = QPushButton("Test connection", self)
        self.test_button.setObjectName("testConnection")
        self.test_button.setToolTip("Ask the server for its models with these settings and the key")
        self.test_result = QLabel(self)
        self.test_result.setObjectName("testResult")
        self.test_result.setWordWrap(True)
        self.test_result.setTextFormat(Qt.TextFormat.PlainText)
        self.headers = QTableWidget(0, 2, self)
        self.headers.setHorizontalHeaderLabels(["Header", "Value"])
        self.headers.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.headers.verticalHeader().hide()
        self.headers.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.headers.setFixedHeight(86)
        self.headers.setItemDelegateForColumn(1, _Hidden(self.headers))
        add_header = QToolButton(self)
        add_header.setText("+")
        add_header.setToolTip("Add a header")
        remove_header = QToolButton(self)
        remove_header.setText("−")
        remove_header.setToolTip("Remove the selected header")
        self.key_env = QLineEdit(self)
        self.connect_timeout = _seconds("How long to wait for the server to accept the connection")
        self.first_token_timeout = _seconds(
            "How long to wait for the first text (a big prompt on a busy server takes a while)"
        )
        self.between_tokens_timeout = _seconds(
            "How long the stream may pause between pieces of text before the answer is stopped"
        )
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
        for caption, box in (
            ("connect", self.connect_timeout),
            ("first token", self.first_token_timeout),
            ("between tokens", self.between_tokens_timeout),
        ):
            timeouts.addWidget(QLabel(caption, self))
            timeouts.addWidget(box)
        timeouts.addStretch(1)
        set_style(self, '[problem="true"] { border: 1px solid $error; }')  # the field mark() names
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.model_menu)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignTop)
        test_row.addWidget(self.test_result, 1)
        self.advanced_toggle = QToolButton(self)
        self.advanced_toggle.setObjectName("advancedToggle")
        self.advanced_toggle.setCheckable(True)
        self.advanced_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_toggle.setText("Advanced settings (headers, key variable, timeouts, stop strings, redaction)")
        self.advanced_toggle.setAutoRaise(True)
        self.advanced = QWidget(self)
        advanced = QFormLayout(self.advanced)
        advanced.setContentsMargins(0, 0, 0, 0)
        advanced.addRow("Extra headers", header_row)
        advanced.addRow("Key variable", self.key_env)
        advanced.addRow("Timeouts", timeouts)
        advanced.addRow("Stop strings", self.stop)
        advanced.addRow("Redact", self.redact)
        advanced.addRow("", self.think)
        self.advanced.hide()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Preset", self.preset)
        form.addRow("Name", self.name)
        form.addRow("Kind", self.kind)
        form.addRow("", self.kind_help)
        form.addRow("Base URL", self.base_url)
        form.addRow("Model", model_row)
        form.addRow("", test_row)
        form.addRow(self.advanced_toggle)
        form.addRow(self.advanced)

        self.advanced_toggle.toggled.connect(self.show_advanced)
        self.preset.activated.connect(self._use_preset)
        self.test_button.clicked.connect(self.test_requested)
        for field, signal in (
            ("name", self.name.textChanged),
            ("base_url", self.base_url.textChanged),
            ("model", self.model.textChanged),
            ("key_env", self.key_env.textChanged),
            ("kind", self.kind.currentIndexChanged),
            ("headers", self.headers.itemChanged),
            ("stop", self.stop.textChanged),
            ("redact", self.redact.textChanged),
        ):
            signal.connect(lambda *_a, f=field: self.touched.add(f))
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
        widgets = {
            "name": self.name,
            "kind": self.kind,
            "base_url": self.base_url,
            "model": self.model,
            "headers": self.headers,
            "key_env": self.key_env,
            "connect_timeout_s": self.connect_timeout,
            "first_token_timeout_s": self.first_token_timeout,
            "between_tokens_timeout_s": self.between_tokens_timeout,
            "stop": self.stop,
            "redact": self.redact,
            "filters": self.redact,
        }
        for key, widget in widgets.items():
            on = key == field
            if bool(widget.property("problem")) != on:
                widget.setProperty("problem", on)
                widget.style().unpolish(widget)  # a dynamic property only restyles when repolished
                widget.style().polish(widget)

    def set_config(self, config: ProviderConfig, *, existing: bool) -> None:
        """Fill the form. An existing provider keeps its name: conversations and the keychain
        know it by that name."""
        widgets = (
            self.name,
            self.kind,
            self.base_url,
            self.model,
            self.headers,
            self.key_env,
            self.connect_timeout,
            self.first_token_timeout,
            self.between_tokens_timeout,
            self.stop,
            self.redact,
            self.think,
        )
        for w in widgets:
            w.blockSignals(True)
        try:
            self.name.setText(config.name)
            self.name.setReadOnly(existing)
            self.name.setToolTip(
                "To rename a provider, add it under the new name and remove the old one"
                if existing
                else "How the window and `hearth ask --provider` call it"
            )
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
        self.touched.clear()
        self.preset.setCurrentIndex(0)
        self.test_result.clear()
        self._models.setStringList([])
        self.model_menu.hide()

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

    def show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        if self.advanced_toggle.isChecked() != shown:
            self.advanced_toggle.setChecked(shown)

    def show_probe(self, probe: Probe | None) -> None:
        """The connection test's result (None: being tested), and the server's models to choose."""
        if probe is None:
            self.test_result.setText("Testing…")
            set_style(self.test_result, "color: $muted;")
            return
        self.test_result.setText(probe.message)
        set_style(self.test_result, "color: $muted;" if probe.ok else "color: $error;")
        self._models.setStringList(list(probe.models))
        menu = self.model_menu.menu()
        menu.clear()
        for model in probe.models:
            action = menu.addAction(model)
            action.triggered.connect(functools.partial(self.model.setText, model))
        self.model_menu.setVisible(bool(probe.models))
        if probe.models and not self.model.text().strip():
            self.model.setText(probe.models[0])

    def _use_preset(self, index: int) -> None:
        preset = self.preset.itemData(index)
        if preset is None:
            return
        self.kind.setCurrentIndex(max(0, self.kind.findData(preset.kind)))
        self.base_url.setText(preset.base_url)
        if not self.name.text().strip() and not self.name.isReadOnly():
            self.name.setText(preset.name)
        self.test_result.setText(
            "Paste its API key below, then test the connection."
            if preset.needs_key
            else "Test the connection to see its models."
        )
        set_style(self.test_result, "color: $muted;")

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
