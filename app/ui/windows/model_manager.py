"""The model manager: a window of its own listing every model, with the details of the one
selected, adding GGUF files (a button or drag-and-drop) and a line for results and errors; beside
it the Discover tab (app.ui.widgets.discover_tab) finds models on the Hugging Face Hub.

Like MainWindow, it wires a view-model (app.ui.viewmodels.models) to its parts (the list, the details
pane) and is the one place here that does. Modal questions (remove?, which file?) are
asked from plain slots before any coroutine starts: a nested Qt event loop inside a
running asyncio task would re-enter the loop. Work then runs as tasks whose failures are
shown, never raised into Qt.
Must not: read files, talk to the engine or the library (the view-model does).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QModelIndex, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.ui.ops import Ops
from app.ui.theme import set_style
from app.ui.viewmodels.models import ModelManagerViewModel
from app.ui.widgets.discover_tab import DiscoverTab
from app.ui.widgets.model_details import ModelDetailsPane
from app.ui.widgets.model_list import ModelListDelegate, ModelListModel, Roles
from app.ui.widgets.status import MessageStrip
from app.ui.windows.dialog_place import keep_place

__all__ = ["ModelManagerDialog", "gguf_paths"]

log = logging.getLogger("hearth.ui")


def gguf_paths(mime: QMimeData) -> list[Path]:
    """Local .gguf files in a drag's data (other files and remote URLs are not offered)."""
    if not mime.hasUrls():
        return []
    return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile() and u.toLocalFile().lower().endswith(".gguf")]


class ModelManagerDialog(QDialog):
    def __init__(self, vm: ModelManagerViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self._selected: str | None = None
        self.ops = Ops(lambda text: self.strip.show_message("error", text))
        self.setWindowTitle("Models")
        self.setModal(False)
        self.setAcceptDrops(True)
        self.resize(1000, 680)
        self._build()
        keep_place(self)
        vm.rows_changed.connect(self._reload_rows)
        vm.model_changed.connect(self._on_model_changed)
        vm.settings_changed.connect(lambda _s: self._show_selected())
        vm.message.connect(self.strip.show_message)
        vm.added.connect(self.select)
        vm.discover.message.connect(self.strip.show_message)
        vm.discover.installed.connect(self.select)  # in the Library tab, ready for “Use this model”
        self.list.selectionModel().currentChanged.connect(self._on_current)
        self.details.use_clicked.connect(lambda: self._on_selected(self.vm.use))
        self.details.download_clicked.connect(lambda: self._on_selected(self.vm.download))
        self.details.verify_clicked.connect(lambda: self._on_selected(self.vm.verify))
        self.details.cancel_clicked.connect(self._cancel)
        self.details.remove_clicked.connect(self._remove)
        self.details.settings_edited.connect(lambda changes: self.vm.set_settings(**changes))
        self.add_button.clicked.connect(self._choose_file)
        self._reload_rows()

    def _build(self) -> None:
        self.strip = MessageStrip(self)
        self.model = ModelListModel(self)
        self.list = QListView(self)
        self.list.setObjectName("models")
        self.list.setModel(self.model)
        self.list.setItemDelegate(ModelListDelegate(self.list))
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.list.setMouseTracking(True)
        set_style(
            self.list,
            "QListView { border: 1px solid $muted_line; border-radius: 6px; background: $base; }"
            " QListView::item:hover { background: $hover; }"
            " QListView::item:selected { background: $selected; }",
        )
        self.add_button = QPushButton("Add a GGUF file…", self)
        self.add_button.setObjectName("addModel")
        self.add_button.setToolTip("Use a model file you already have; it stays where it is.")
        hint = QLabel("or drop a .gguf file here", self)
        set_style(hint, "color: $muted;")
        add_row = QHBoxLayout()
        add_row.addWidget(self.add_button)
        add_row.addWidget(hint, 1)
        left = QWidget(self)
        left_column = QVBoxLayout(left)
        left_column.setContentsMargins(0, 0, 6, 0)
        left_column.addWidget(self.list, 1)
        left_column.addLayout(add_row)
        self.details = ModelDetailsPane(self)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self.details)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([430, 570])
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("modelTabs")
        self.tabs.addTab(splitter, "Library")
        self.discover = DiscoverTab(self.vm.discover, self.ops, self)
        self.tabs.addTab(self.discover, "Discover")
        self.discover.show_library.connect(self._show_library)
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(10)
        layout.addWidget(self.strip)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(bottom)

    # -- showing ---------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.ops.op("reading the model library", self.vm.refresh).run()  # the CLI may have changed it

    def select(self, model_id: str) -> None:
        row = self.model.row_of(model_id)
        if row >= 0:
            self.list.setCurrentIndex(self.model.index(row))
            self.list.scrollTo(self.model.index(row))

    def _show_library(self, model_id: str) -> None:
        self.tabs.setCurrentIndex(0)
        if model_id:
            self.select(model_id)

    @property
    def selected(self) -> str | None:
        return self._selected

    def idle(self) -> bool:
        """Nothing started from this window is still running."""
        return not self.ops

    def _reload_rows(self) -> None:
        rows = self.vm.rows
        if [r.id for r in rows] == [
            self.model.data(self.model.index(i), Roles.Id) for i in range(self.model.rowCount())
        ]:
            for r in rows:  # the same models: repaint what changed, keep scroll and selection
                self.model.update_row(r)
            self._show_selected()
            return
        keep = self._selected
        self.model.set_rows(rows)
        row = self.model.row_of(keep)
        if row < 0 and self.model.rowCount():
            row = 0
        if row >= 0:
            self.list.setCurrentIndex(self.model.index(row))
        else:
            self._selected = None
        self._show_selected()

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        value = current.data(Roles.Id) if current.isValid() else None
        self._selected = str(value) if value is not None else None
        self._show_selected()

    def _on_model_changed(self, model_id: str) -> None:
        row = self.vm.row(model_id)
        if row is not None:
            self.model.update_row(row)
        if model_id == self._selected:
            self._show_selected()

    def _show_selected(self) -> None:
        d = self.vm.details(self._selected) if self._selected is not None else None
        self.details.show_details(d, self.vm.settings)

    # -- what the person does --------------------------------------------------------------
    def _on_selected(self, action: Any) -> None:
        model_id = self._selected
        if model_id is not None:
            self.ops.op(f"a model manager action on {model_id}", lambda: action(model_id)).run()

    def _cancel(self) -> None:
        if self._selected is not None:
            self.vm.cancel_download(self._selected)

    def _remove(self) -> None:
        model_id = self._selected
        if model_id is None:
            return
        question = self.vm.remove_question(model_id)
        answer = QMessageBox.question(
            self,
            "Remove model",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.ops.op(f"removing {model_id}", lambda: self.vm.remove(model_id)).run()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Add a model file", str(Path.home()), "GGUF models (*.gguf)")
        if path:
            self._add(path)

    def _add(self, path: str | Path) -> None:
        self.ops.op(f"adding {path}", lambda: self.vm.add(path)).run()

    def drop_files(self, mime: QMimeData) -> bool:
        """Add the .gguf files in a drop; False when there are none."""
        paths = gguf_paths(mime)
        for path in paths:
            self._add(path)
        return bool(paths)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if gguf_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.drop_files(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()
