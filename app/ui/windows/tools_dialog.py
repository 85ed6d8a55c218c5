"""The Tools window: the MCP servers in mcp.json and Hearth's built-in tools.

A list on the left (each server with how it is reached and its state: ready with N tools,
unreachable, disabled, checking; then Hearth's own tools), and on the right the selected server's
details (its tools with their descriptions, or why it cannot be reached) or the Add server form.
Buttons: Add server…, Remove… (asked inline, not in a nested dialog), Disable/Enable, Test, Check
all. A broken mcp.json is said in red with its path; nothing else is shown until it is fixed.
Servers are checked on the loop (bounded by the view-model's timeout), so the window never waits
for one that hangs. What a server says is untrusted: every label and list row is plain text.
Like ProvidersDialog, it wires a view-model (app.ui.viewmodels.tools) to its parts.
Must not: read or write mcp.json, or reach a server (the view-model does).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.tools import BUILTIN_SERVER, ToolInfo
from app.ui.ops import Ops
from app.ui.theme import set_style
from app.ui.viewmodels.tools import ServerRow, ToolsViewModel, where
from app.ui.widgets.mcp_server_form import McpServerForm
from app.ui.widgets.status import MessageStrip
from app.ui.windows.dialog_place import keep_place

__all__ = ["ToolsDialog"]

_DETAILS, _FORM = 0, 1
_MARKS = {"ready": "✓", "unreachable": "⚠", "disabled": "○", "checking": "↻", "unchecked": "?"}
_MAX_DESCRIPTION = 2_000  # a server's description past this is cut in the details: it is its text, not ours


def _plain_label(parent: QWidget, name: str = "") -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    label.setTextFormat(Qt.TextFormat.PlainText)  # server text: never rich text
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _tools_text(tools: tuple[ToolInfo, ...]) -> str:
    blocks = []
    for tool in tools:
        description = tool.description.strip() or "(no description)"
        if len(description) > _MAX_DESCRIPTION:
            description = description[:_MAX_DESCRIPTION] + " … [cut]"
        blocks.append(f"{tool.qualified}\n    " + "\n    ".join(description.splitlines()))
    return "\n\n".join(blocks)


class ToolsDialog(QDialog):
    def __init__(self, vm: ToolsViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self._selected: str | None = None  # a server's name, BUILTIN_SERVER, or None
        self._picked = False  # the person chose a row: a reload keeps it (else the first server is shown)
        self.ops = Ops(lambda text: self.strip.show_message("error", text), quiet=True)  # headers may hold tokens
        self.setWindowTitle("Tools")
        self.setModal(False)
        self.resize(900, 600)
        self._build()
        vm.rows_changed.connect(self._reload)
        vm.message.connect(self.strip.show_message)
        self.list.currentItemChanged.connect(lambda item, _old: self._on_current(item, picked=True))
        self.add_button.clicked.connect(self.new_server)
        self.remove_button.clicked.connect(self._ask_remove)
        self.confirm_remove.clicked.connect(self._remove)
        self.keep_button.clicked.connect(self.remove_row.hide)
        self.enable_button.clicked.connect(self._toggle_enabled)
        self.test_button.clicked.connect(self._test)
        self.check_all_button.clicked.connect(lambda: self.ops.op("checking the servers", self.vm.refresh).run())
        self.form.add_requested.connect(self._add)
        self.form.cancelled.connect(lambda: self.select(self._selected, picked=self._picked))
        self._reload()
        keep_place(self)

    def _build(self) -> None:
        self.strip = MessageStrip(self)
        self.file_error = _plain_label(self, "mcpFileError")  # a broken mcp.json, with its path
        set_style(self.file_error, "color: $error; font-weight: 600;")
        self.file_error.hide()
        self.list = QListWidget(self)
        self.list.setObjectName("servers")
        self.list.setMinimumWidth(280)
        self.list.setWordWrap(True)
        self.list.setStyleSheet("QListWidget::item { padding: 6px 4px; }")
        self.problems = _plain_label(self, "mcpProblems")  # entries that cannot be used, each named
        set_style(self.problems, "color: $error;")
        self.add_button = QPushButton("Add server…", self)
        self.remove_button = QPushButton("Remove…", self)
        self.enable_button = QPushButton("Disable", self)
        self.test_button = QPushButton("Test", self)
        self.test_button.setToolTip("Start or reach this server now and list its tools")
        self.check_all_button = QPushButton("Check all", self)
        self.check_all_button.setToolTip("Read mcp.json again and reach every enabled server")
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for button in (self.add_button, self.remove_button):
            row1.addWidget(button)
        for button in (self.enable_button, self.test_button, self.check_all_button):
            row2.addWidget(button)
        self.remove_row = QWidget(self)
        remove_layout = QHBoxLayout(self.remove_row)
        remove_layout.setContentsMargins(0, 0, 0, 0)
        self.remove_question = _plain_label(self.remove_row)
        self.confirm_remove = QPushButton("Remove", self.remove_row)
        self.confirm_remove.setObjectName("confirmRemove")
        self.keep_button = QPushButton("Keep", self.remove_row)
        remove_layout.addWidget(self.remove_question, 1)
        remove_layout.addWidget(self.confirm_remove)
        remove_layout.addWidget(self.keep_button)
        self.remove_row.hide()
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        left.addWidget(self.problems)
        left.addLayout(row1)
        left.addLayout(row2)
        left.addWidget(self.remove_row)

        details = QWidget(self)
        column = QVBoxLayout(details)
        column.setContentsMargins(0, 0, 0, 0)
        self.title = _plain_label(details, "serverTitle")
        font = QFont(self.title.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.title.setFont(font)
        self.where = _plain_label(details, "serverWhere")
        set_style(self.where, "color: $muted;")
        self.state = _plain_label(details, "serverState")
        self.tools = QPlainTextEdit(details)  # plain text: a description cannot draw, link or load
        self.tools.setObjectName("serverTools")
        self.tools.setReadOnly(True)
        self.tools.setPlaceholderText("No tools listed.")
        column.addWidget(self.title)
        column.addWidget(self.where)
        column.addWidget(self.state)
        column.addWidget(self.tools, 1)
        self.form = McpServerForm(self)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(details)
        self.pages.addWidget(self.form)

        body = QHBoxLayout()
        body.addLayout(left)
        body.addWidget(self.pages, 1)
        outer = QVBoxLayout(self)
        outer.addWidget(self.strip)
        outer.addWidget(self.file_error)
        outer.addLayout(body, 1)
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Enter in a form field must not press Remove

    # -- showing ---------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not event.spontaneous():
            self.ops.op("checking the servers", self.vm.refresh).run()  # mcp.json may have changed

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        if not event.spontaneous():
            self.strip.hide()
            self.remove_row.hide()

    def idle(self) -> bool:
        """Nothing started from this window is still running."""
        return not self.ops

    @property
    def selected(self) -> str | None:
        return self._selected

    def _reload(self) -> None:
        vm = self.vm
        self.file_error.setText(vm.config_error or "")
        self.file_error.setVisible(vm.config_error is not None)
        self.problems.setText("\n".join(vm.problems))
        self.problems.setVisible(bool(vm.problems))
        keep = self._selected
        self.list.blockSignals(True)
        try:
            self.list.clear()
            for row in vm.rows:
                short = row.state_text if row.state != "unreachable" else "unreachable: select it to see why"
                short = f"{_MARKS[row.state]} {short}"
                self._add_item(row.name, f"{row.name}\n{row.transport} · {where(row.server)}\n{short}")
            if vm.config_error is None:
                n = len(vm.builtins)
                self._add_item(
                    BUILTIN_SERVER, f"Hearth's own tools\nbuilt in · {n} tools, each off until a chat chooses it"
                )
        finally:
            self.list.blockSignals(False)
        if self.pages.currentIndex() == _FORM and vm.config_error is None:
            return  # the person is typing a new server: the list changing under it does not stop that
        first = vm.rows[0].name if vm.rows else BUILTIN_SERVER
        if self._picked and self._item(keep) is not None:
            self.select(keep)
        else:
            self.select(first, picked=False)

    def _add_item(self, name: str, text: str) -> None:
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, name)
        self.list.addItem(item)

    def _item(self, name: str | None) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if name is not None and item.data(Qt.ItemDataRole.UserRole) == name:
                return item
        return None

    def select(self, name: str | None, *, picked: bool = True) -> None:
        item = self._item(name)
        self.list.blockSignals(True)
        if item is None:
            self.list.setCurrentRow(-1)
        else:
            self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self._on_current(item, picked=picked)

    def _on_current(self, item: QListWidgetItem | None, *, picked: bool) -> None:
        self._picked = picked
        self._selected = str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None
        self.remove_row.hide()
        self.pages.setCurrentIndex(_DETAILS)
        self._show_selected()

    def _show_selected(self) -> None:
        row = self.vm.find(self._selected)
        builtin = self._selected == BUILTIN_SERVER
        for button in (self.remove_button, self.enable_button, self.test_button):
            button.setEnabled(row is not None and row.state != "checking")
        self.add_button.setEnabled(self.vm.config_error is None)
        self.check_all_button.setEnabled(True)
        self.enable_button.setText("Enable" if row is not None and row.server.disabled else "Disable")
        if builtin:
            self.title.setText("Hearth's own tools")
            self.where.setText("Built into Hearth: nothing to start or reach.")
            self.state.setText("Each is off until a chat chooses it in its settings; every call asks you first.")
            self.tools.setPlainText(_tools_text(self.vm.builtins))
        elif row is None:
            self.title.setText("No MCP servers" if self.vm.config_error is None else "mcp.json cannot be read")
            self.where.setText(str(self.vm.path))
            self.state.setText("Add one with “Add server…”, or copy a server from another app's mcp.json.")
            self.tools.clear()
        else:
            self._show_row(row)

    def _show_row(self, row: ServerRow) -> None:
        self.title.setText(row.name)
        self.where.setText(f"{row.transport}: {where(row.server)}")
        if row.state == "ready":
            self.state.setText(row.state_text)
            set_style(self.state, "color: $success;")
        elif row.state == "unreachable":
            self.state.setText(f"Cannot be reached: {row.problem or 'no reason given'}")
            self.tools.setPlaceholderText(
                "No tools: fix what is said above (in mcp.json, or remove the server and add it again), then Test."
            )
            set_style(self.state, "color: $error;")
        else:
            disabled = "disabled: no chat can use it until it is enabled"
            self.state.setText(disabled if row.state == "disabled" else row.state_text)
            set_style(self.state, "color: $muted;")
        if row.state != "unreachable":
            self.tools.setPlaceholderText("No tools listed." if row.state == "ready" else "")
        self.tools.setPlainText(_tools_text(row.tools))

    # -- what the person does --------------------------------------------------------------
    def new_server(self) -> None:
        self.form.clear()
        self.remove_row.hide()
        self.list.blockSignals(True)
        self.list.setCurrentRow(-1)  # the form is about no server in the list
        self.list.clearSelection()
        self.list.blockSignals(False)
        for button in (self.remove_button, self.enable_button, self.test_button):
            button.setEnabled(False)
        self.pages.setCurrentIndex(_FORM)
        self.form.name.setFocus()

    def _add(self, name: str, entry: dict[str, object]) -> None:
        async def add() -> None:
            if await self.vm.add(name, dict(entry)):
                self.select(name)
            else:
                self.form.show_problem(self.strip.text())

        self.ops.op("adding a server", add).disabling(self.form.add_button).run()

    def _ask_remove(self) -> None:
        if self.vm.find(self._selected) is None:
            return
        self.remove_question.setText(f"Remove {self._selected} from mcp.json?")
        self.remove_row.show()
        self.keep_button.setFocus()

    def _remove(self) -> None:
        name = self._selected
        self.remove_row.hide()
        if name is not None:
            self.ops.op("removing a server", lambda: self.vm.remove(name)).run()

    def _toggle_enabled(self) -> None:
        row = self.vm.find(self._selected)
        if row is not None:
            on = row.server.disabled
            self.ops.op("enabling a server", lambda: self.vm.set_enabled(row.name, on)).run()

    def _test(self) -> None:
        name = self._selected
        if name is not None:
            self.ops.op("testing a server", lambda: self.vm.test(name)).run()
