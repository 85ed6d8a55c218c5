"""The Providers window: remote servers a conversation can answer from, and their API keys.

A list of providers (with whether each has a key) on the left; on the right the form for
the selected one, what is wrong with it (nothing is saved until it is valid), and its API
key: a password field and "Save key", which stores it in the OS keychain. The key is never
shown again, only whether one is available (from the environment or the keychain), and
the field is emptied once it is stored. Where no keychain exists, the message names the
environment variable to set instead.
Like ModelManagerDialog, it wires a view-model (app.ui.viewmodels.providers) to its parts; the
remove question is asked from a plain slot before any coroutine starts.
Must not: read or write providers.toml or the keychain (the view-model does), or put the
key anywhere but the view-model's `save_key`.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.providers import ProviderConfig
from app.ui.ops import Ops
from app.ui.theme import set_style
from app.ui.viewmodels.providers import ProvidersViewModel, timeouts_text
from app.ui.widgets.provider_form import ProviderForm
from app.ui.widgets.status import MessageStrip
from app.ui.windows.dialog_place import keep_place

__all__ = ["ProvidersDialog"]

log = logging.getLogger("hearth.ui")


class ProvidersDialog(QDialog):
    def __init__(self, vm: ProvidersViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self._selected: str | None = None  # None: a new provider
        self._base: ProviderConfig | None = None
        self._tried_save = False  # a new provider's problems are all shown once Save was tried
        self.ops = Ops(lambda text: self.strip.show_message("error", text), quiet=True)  # errors may quote a key
        self.setWindowTitle("Providers")
        self.setModal(False)
        self.resize(940, 640)
        self._build()
        vm.rows_changed.connect(self._reload)
        vm.message.connect(self.strip.show_message)
        self.list.currentItemChanged.connect(self._on_current)
        self.form.edited.connect(self._validate)
        self.form.test_requested.connect(lambda: self.ops.op("testing the connection", self.test).run())
        self.add_button.clicked.connect(self.new_provider)
        self.remove_button.clicked.connect(self._remove)
        self.save_button.clicked.connect(lambda: self.ops.op("saving a provider", self.save).run())
        self.key_edit.textChanged.connect(self._sync_key_controls)
        self.key_edit.returnPressed.connect(lambda: self.ops.op("storing a key", self.save_key).run())
        self.save_key_button.clicked.connect(lambda: self.ops.op("storing a key", self.save_key).run())
        self.new_provider()
        self._reload()
        keep_place(self)

    def _build(self) -> None:
        self.strip = MessageStrip(self)
        self.list = QListWidget(self)
        self.list.setObjectName("providers")
        self.list.setMinimumWidth(240)
        self.list.setStyleSheet("QListWidget::item { padding: 6px 4px; }")
        self.add_button = QPushButton("Add provider", self)
        self.remove_button = QPushButton("Remove…", self)
        left = QVBoxLayout()
        left.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        left.addLayout(buttons)

        self.form = ProviderForm(self.vm.formats, self)
        self.problem = QLabel(self)
        self.problem.setObjectName("providerProblem")
        self.problem.setWordWrap(True)
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        set_style(self.problem, "color: $error;")
        self.save_button = QPushButton("Save provider", self)
        save_row = QHBoxLayout()
        save_row.addWidget(self.problem, 1)
        save_row.addWidget(self.save_button, 0, Qt.AlignmentFlag.AlignTop)

        key_title = QLabel("API key", self)
        key_title.setStyleSheet("font-weight: 600; margin-top: 8px;")
        self.key_status = QLabel(self)
        self.key_status.setObjectName("keyStatus")
        self.key_status.setWordWrap(True)
        self.key_status.setTextFormat(Qt.TextFormat.PlainText)
        self.key_edit = QLineEdit(self)
        self.key_edit.setObjectName("apiKey")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("paste the API key; it goes to the system keychain, never to a file")
        self.save_key_button = QPushButton("Save key", self)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.save_key_button)

        right_inner = QWidget(self)
        right = QVBoxLayout(right_inner)
        right.setContentsMargins(4, 0, 8, 0)
        right.addWidget(self.form)
        right.addLayout(save_row)
        right.addWidget(key_title)
        right.addWidget(self.key_status)
        right.addLayout(key_row)
        right.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(right_inner)

        body = QHBoxLayout()
        body.addLayout(left)
        body.addWidget(scroll, 1)
        outer = QVBoxLayout(self)
        outer.addWidget(self.strip)
        outer.addLayout(body, 1)
        # Enter in the key field saves the key, not the provider: no button acts on Enter.
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)

    # -- showing ---------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.ops.op("reading the providers", self.vm.refresh).run()  # `hearth providers` may have changed them

    def hideEvent(self, event: QHideEvent) -> None:
        """Closed: what the strip said was about what was done then ("Saved provider…"), not news
        for the next opening. A message that comes while it is closed (a damaged file) is kept."""
        super().hideEvent(event)
        if not event.spontaneous():  # not the main window being minimised
            self.strip.hide()

    @property
    def selected(self) -> str | None:
        return self._selected

    def idle(self) -> bool:
        """Nothing started from this window is still running."""
        return not self.ops

    def select(self, name: str | None) -> None:
        """Show provider `name` in the form (a new, empty one when there is none)."""
        item = self._item(name)
        if item is None:
            self.new_provider()
        elif item is self.list.currentItem():
            self._on_current(item, None)
        else:
            self.list.setCurrentItem(item)

    def _item(self, name: str | None) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if name is not None and str(item.data(Qt.ItemDataRole.UserRole)).lower() == name.lower():
                return item
        return None

    def new_provider(self) -> None:
        self.list.blockSignals(True)
        self.list.setCurrentRow(-1)
        self.list.clearSelection()
        self.list.blockSignals(False)
        self._selected, self._base = None, None
        self._tried_save = False
        self.form.set_config(self.vm.blank(), existing=False)
        self._show_selected()
        self.form.name.setFocus()

    def _reload(self) -> None:
        keep = self._selected
        self.list.blockSignals(True)
        try:
            self.list.clear()
            for row in self.vm.rows:
                c = row.config
                item = QListWidgetItem(
                    f"{c.name}\n{c.kind} · {c.model or 'server default'} · {'key ✓' if row.has_key else 'no key'}"
                )
                item.setData(Qt.ItemDataRole.UserRole, c.name)
                item.setToolTip(f"{c.base_url}\n{timeouts_text(c)}\n{row.key_status}")
                self.list.addItem(item)
        finally:
            self.list.blockSignals(False)
        kept = self._item(keep)
        if kept is not None:  # the same provider: the form keeps the person's edits
            self.list.blockSignals(True)
            self.list.setCurrentItem(kept)
            self.list.blockSignals(False)
            self._show_selected()  # its key status may have changed
        elif keep is not None or not self.form.name.text().strip():
            # It was removed, or nothing is being typed: show the first provider.
            self.select(self.vm.rows[0].name if self.vm.rows else None)
        else:
            self._show_selected()  # a new provider being typed stays

    def _on_current(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is None:
            return
        row = self.vm.find(str(current.data(Qt.ItemDataRole.UserRole)))
        if row is None:
            return
        self._selected, self._base = row.name, row.config
        self.form.set_config(row.config, existing=True)
        self._show_selected()

    def _show_selected(self) -> None:
        row = self.vm.find(self._selected)
        self.remove_button.setEnabled(row is not None)
        if row is None:
            self.key_status.setText(
                "Paste the key to test the connection; it goes to the system keychain when the provider is saved."
            )
        else:
            self.key_status.setText(row.key_status)
        self._validate()

    def _validate(self) -> str:
        """Save only while nothing is wrong. What is wrong is shown once the person changed that
        field or tried to save (a new provider is not scolded before anything is typed)."""
        problem = self.vm.check(self.form.config(self._base))
        touched = self.form.touched | ({"filters"} if {"stop", "redact"} & self.form.touched else set())
        shown = problem is not None and (self._selected is not None or self._tried_save or problem.field in touched)
        self.problem.setText(problem.hint if problem and shown else "")
        self.form.mark(problem.field if problem and shown else None)
        self.save_button.setEnabled(problem is None)
        self.save_button.setToolTip(problem.hint if problem else "")
        self._sync_key_controls()
        return problem.hint if problem else ""

    def _sync_key_controls(self) -> None:
        saved = self.vm.find(self._selected) is not None
        self.save_key_button.setEnabled(saved and bool(self.key_edit.text().strip()))

    # -- what the person does --------------------------------------------------------------
    async def test(self) -> None:
        """Ask the server for its models with the form's settings and the key (the one being
        typed, else the stored one)."""
        self.form.show_probe(None)
        self.form.test_button.setEnabled(False)
        try:
            self.form.show_probe(await self.vm.probe(self.form.config(self._base), self.key_edit.text()))
        finally:
            self.form.test_button.setEnabled(True)

    async def save(self) -> bool:
        self._tried_save = True
        if self._validate():
            return False
        config = self.form.config(self._base)
        self.save_button.setEnabled(False)
        try:
            saved = await self.vm.save(config)
        finally:
            self._validate()
        if saved:
            self._selected = config.name
            self.select(config.name)
            if self.key_edit.text().strip():  # typed before saving (to test the connection): keep it now
                await self.save_key()
        return saved

    async def save_key(self) -> bool:
        name = self._selected
        key = self.key_edit.text()
        if name is None or not key.strip():
            return False
        self.save_key_button.setEnabled(False)
        try:
            stored = await self.vm.save_key(name, key)
        finally:
            self._sync_key_controls()
        if stored:
            self.key_edit.clear()  # the keychain has it; nothing here should keep it
        return stored

    def _remove(self) -> None:
        name = self._selected
        if name is None:
            return
        answer = QMessageBox.question(
            self,
            "Remove provider",
            self.vm.remove_question(name),
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._selected = None
            self.ops.op("removing a provider", lambda: self.vm.remove(name)).run()
