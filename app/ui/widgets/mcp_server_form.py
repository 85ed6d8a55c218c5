"""The Tools panel's "Add server" form: a name, and either a program to start (stdio: command,
arguments, environment lines) or an address (HTTP: URL, header lines).

A form, nothing more: `entry()` turns what is typed into an `mcpServers` entry (or says what is
wrong, next to the form), and `add_requested` reports it. Must not: write mcp.json or reach the
server (the panel's view-model does both).
"""

from __future__ import annotations

from typing import Any, Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from app.ui.theme import set_style
from app.ui.viewmodels.tools import server_entry

__all__ = ["McpServerForm"]


def _lines_box(parent: QWidget, placeholder: str) -> QPlainTextEdit:
    box = QPlainTextEdit(parent)
    box.setPlaceholderText(placeholder)
    box.setTabChangesFocus(True)
    box.setMaximumHeight(72)
    return box


class McpServerForm(QWidget):
    add_requested = Signal(str, object)  # name, the mcpServers entry (dict)
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mcpServerForm")
        title = QLabel("Add an MCP server", self)
        font = QFont(title.font())
        font.setBold(True)
        title.setFont(font)
        self.name = QLineEdit(self)
        self.name.setPlaceholderText("e.g. files (letters, digits, - _ .)")
        self.stdio = QRadioButton("A program on this computer (stdio)", self)
        self.http = QRadioButton("A server at an address (HTTP)", self)
        kinds = QButtonGroup(self)
        kinds.addButton(self.stdio)
        kinds.addButton(self.http)
        self.stdio.setChecked(True)
        self.command = QLineEdit(self)
        self.command.setPlaceholderText("e.g. npx, uvx, or a program's full path")
        self.args = QLineEdit(self)
        self.args.setPlaceholderText('e.g. -y @modelcontextprotocol/server-filesystem "/home/me/My Notes"')
        self.env = _lines_box(self, "One per line: NAME=value")
        self.url = QLineEdit(self)
        self.url.setPlaceholderText("e.g. http://127.0.0.1:8931/mcp")
        self.headers = _lines_box(self, "One per line: Authorization: Bearer …")
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow("Name", self.name)
        self._stdio_rows = [("Command", self.command), ("Arguments", self.args), ("Environment", self.env)]
        self._http_rows = [("URL", self.url), ("Headers", self.headers)]
        for label, widget in (*self._stdio_rows, *self._http_rows):
            form.addRow(label, widget)
        self._form = form
        self.problem = QLabel(self)
        self.problem.setObjectName("formProblem")
        self.problem.setWordWrap(True)
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        set_style(self.problem, "color: $error;")
        self.note = QLabel(
            "Saved in mcp.json, in the format Claude Desktop, Cursor and LM Studio use. A chat uses a "
            "server only once it is checked in that chat's settings, and every call asks you first.",
            self,
        )
        self.note.setWordWrap(True)
        set_style(self.note, "color: $muted;")
        self.add_button = QPushButton("Add server", self)
        self.add_button.setObjectName("addServer")
        self.cancel_button = QPushButton("Cancel", self)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.add_button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(title)
        outer.addWidget(self.stdio)
        outer.addWidget(self.http)
        outer.addLayout(form)
        outer.addWidget(self.problem)
        outer.addLayout(buttons)
        outer.addWidget(self.note)
        outer.addStretch(1)
        self.stdio.toggled.connect(lambda _on: self._show_kind())
        self.add_button.clicked.connect(self._add)
        self.cancel_button.clicked.connect(self.cancelled)
        self._show_kind()

    @property
    def kind(self) -> Literal["stdio", "http"]:
        return "stdio" if self.stdio.isChecked() else "http"

    def _show_kind(self) -> None:
        for _label, widget in self._stdio_rows:
            self._form.setRowVisible(widget, self.kind == "stdio")
        for _label, widget in self._http_rows:
            self._form.setRowVisible(widget, self.kind == "http")
        self.problem.clear()

    def clear(self) -> None:
        for edit in (self.name, self.command, self.args, self.url):
            edit.clear()
        self.env.clear()
        self.headers.clear()
        self.problem.clear()
        self.stdio.setChecked(True)

    def show_problem(self, text: str) -> None:
        self.problem.setText(text)

    def entry(self) -> dict[str, Any]:
        """What is typed, as an mcpServers entry; raises ValueError with what to change."""
        return server_entry(
            self.kind,
            command=self.command.text(),
            args=self.args.text(),
            env=self.env.toPlainText(),
            url=self.url.text(),
            headers=self.headers.toPlainText(),
        )

    def _add(self) -> None:
        name = self.name.text().strip()
        if not name:
            self.show_problem("Give the server a name: it becomes the first half of its tools' names (name/tool).")
            return
        try:
            entry = self.entry()
        except ValueError as e:
            self.show_problem(str(e))
            return
        self.problem.clear()
        self.add_requested.emit(name, entry)
