"""The Documents window: a person's collections of files and folders, and how far indexing is.

Collections on the left (each with its files, passages, vectors and indexing progress), a field
to make a new one below them; on the right the chosen collection's files, each with its state in
plain words and, for a skipped or failed file, why. Add files…, Add folder… and dropping files or
folders anywhere on the window add to the chosen collection; Re-index reads the selected files (or
all) again; Remove file forgets a file, Remove collection… (after a question) a whole collection.
The files on disk are never touched. It follows indexing while it is open (the view-model polls).
Like ProvidersDialog, it wires a view-model (app.ui.viewmodels.documents) to its parts; questions
and file dialogs are asked from plain slots before any coroutine starts.
Must not: read the store or start indexing itself (the view-model and its service do).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QHideEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.documents.service import Overview
from app.core.errors import describe
from app.ui.ops import Ops
from app.ui.theme import set_style
from app.ui.viewmodels.documents import DocumentsViewModel, collection_label, progress_text, state_text
from app.ui.widgets.status import MessageStrip
from app.ui.windows.dialog_place import keep_place
from store.documents import FileRow

__all__ = ["DocumentsDialog", "local_paths"]

_ID = Qt.ItemDataRole.UserRole


def local_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    """The local files and folders a drag carries (none when it carries anything else)."""
    data = event.mimeData()
    if not data.hasUrls():
        return []
    urls = data.urls()
    return [Path(u.toLocalFile()) for u in urls] if all(u.isLocalFile() for u in urls) else []


class DocumentsDialog(QDialog):
    def __init__(self, vm: DocumentsViewModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self._files: list[FileRow] = []
        self.ops = Ops(lambda text: self.strip.show_message("error", text))
        self.setWindowTitle("Documents")
        self.setModal(False)
        self.setAcceptDrops(True)
        self.resize(980, 600)
        self._build()
        vm.overview_changed.connect(self._show_overview)
        vm.files_changed.connect(self._show_files)
        vm.message.connect(self.strip.show_message)
        self.collections.currentItemChanged.connect(self._on_current)
        self.new_name.returnPressed.connect(self._create)
        self.create_button.clicked.connect(self._create)
        self.add_files_button.clicked.connect(self._add_files)
        self.add_folder_button.clicked.connect(self._add_folder)
        self.reindex_button.clicked.connect(self._reindex)
        self.remove_file_button.clicked.connect(self._remove_file)
        self.remove_collection_button.clicked.connect(self._remove_collection)
        self.files.itemSelectionChanged.connect(self._sync_buttons)
        self._sync_buttons()
        keep_place(self)

    def _build(self) -> None:
        self.strip = MessageStrip(self)
        self.collections = QListWidget(self)
        self.collections.setObjectName("collections")
        self.collections.setMinimumWidth(260)
        self.collections.setStyleSheet("QListWidget::item { padding: 6px 4px; }")
        self.collections.setWordWrap(True)  # the progress line wraps rather than scrolling sideways
        self.collections.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.new_name = QLineEdit(self)
        self.new_name.setObjectName("newCollection")
        self.new_name.setPlaceholderText("New collection's name")
        self.create_button = QPushButton("Create", self)
        new_row = QHBoxLayout()
        new_row.addWidget(self.new_name, 1)
        new_row.addWidget(self.create_button)
        self.remove_collection_button = QPushButton("Remove collection…", self)
        left = QVBoxLayout()
        left.addWidget(QLabel("Collections", self))
        left.addWidget(self.collections, 1)
        left.addLayout(new_row)
        left.addWidget(self.remove_collection_button)

        self.title = QLabel(self)
        self.title.setObjectName("collectionTitle")
        self.title.setStyleSheet("font-weight: 600;")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.progress = QProgressBar(self)
        self.progress.setTextVisible(True)
        self.indexing = QLabel(self)
        self.indexing.setObjectName("indexingStatus")
        self.indexing.setWordWrap(True)
        set_style(self.indexing, "color: $muted;")
        self.files = QTreeWidget(self)
        self.files.setObjectName("files")
        self.files.setColumnCount(3)
        self.files.setHeaderLabels(["File", "State", "Why"])
        self.files.setRootIsDecorated(False)
        self.files.setStyleSheet("QTreeWidget::item { padding: 3px 2px; }")
        self.detail = QLabel(self)  # the selected file in full: its path and why, never cut at an edge
        self.detail.setObjectName("fileDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.PlainText)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.files.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.files.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.files.setColumnWidth(0, 220)
        self.add_files_button = QPushButton("Add files…", self)
        self.add_folder_button = QPushButton("Add folder…", self)
        self.reindex_button = QPushButton("Re-index", self)
        self.reindex_button.setToolTip("Read the selected files (or the whole collection) again")
        self.remove_file_button = QPushButton("Remove file", self)
        self.remove_file_button.setToolTip("Forget the selected files (they stay on your disk)")
        buttons = QHBoxLayout()
        for b in (self.add_files_button, self.add_folder_button, self.reindex_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.remove_file_button)
        hint = QLabel("Drop files or folders here to add them. Your files stay where they are.", self)
        set_style(hint, "color: $muted;")
        right = QVBoxLayout()
        right.addWidget(self.title)
        right.addWidget(self.progress)
        right.addWidget(self.indexing)
        right.addWidget(self.files, 1)
        right.addWidget(self.detail)
        right.addLayout(buttons)
        right.addWidget(hint)

        body = QHBoxLayout()
        body.addLayout(left)
        body.addLayout(right, 1)
        outer = QVBoxLayout(self)
        outer.addWidget(self.strip)
        outer.addLayout(body, 1)
        for button in self.findChildren(QPushButton):
            button.setAutoDefault(False)  # Enter in the name field makes the collection, nothing else

    # -- showing ---------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.vm.watch(True)
        self.ops.op("reading your documents", self.vm.refresh).run()

    def hideEvent(self, event: QHideEvent) -> None:
        super().hideEvent(event)
        if not event.spontaneous():
            self.vm.watch(False)
            self.strip.hide()

    def idle(self) -> bool:
        """Nothing started from this window is still running (tests)."""
        return not self.ops

    def _show_overview(self, overview: Overview) -> None:
        self.collections.blockSignals(True)
        try:
            self.collections.clear()
            for v in overview.collections:
                item = QListWidgetItem(f"{collection_label(v.collection)}\n{progress_text(v)}")
                item.setData(_ID, v.collection.id)
                self.collections.addItem(item)
                if v.collection.id == self.vm.chosen:
                    self.collections.setCurrentItem(item)
        finally:
            self.collections.blockSignals(False)
        view = self.vm.view_of(self.vm.chosen)
        if view is None:
            self.title.setText("No collection yet: add files or folders, or drop them here.")
            self.progress.hide()
            self._show_files(-1, [])
        else:
            self.title.setText(collection_label(view.collection))
            done = view.files - view.pending
            self.progress.setVisible(view.files > 0)
            self.progress.setRange(0, max(view.files, 1))
            self.progress.setValue(done)
            self.progress.setFormat(f"{done} of {view.files} files indexed" if view.pending else "all files done")
        self.indexing.setText(self.vm.status_text)
        self.indexing.setVisible(bool(self.vm.status_text))
        self._sync_buttons()

    def _show_files(self, collection_id: int, files: list[FileRow]) -> None:
        if collection_id != (self.vm.chosen if self.vm.chosen is not None else -1):
            return
        chosen = {f.id for f in self.selected_files()}
        self._files = files
        self.files.clear()
        for f in files:
            item = QTreeWidgetItem([Path(f.path).name, state_text(f), f.skip_message or ""])
            item.setData(0, _ID, f.id)
            item.setToolTip(0, f.path)
            if f.skip_message:
                item.setToolTip(2, f.skip_message)
            self.files.addTopLevelItem(item)
            item.setSelected(f.id in chosen)
        self._sync_buttons()

    def selected_files(self) -> list[FileRow]:
        ids = {item.data(0, _ID) for item in self.files.selectedItems()}
        return [f for f in self._files if f.id in ids]

    def _sync_buttons(self) -> None:
        has = self.vm.view_of(self.vm.chosen) is not None
        self.reindex_button.setEnabled(has)
        self.remove_collection_button.setEnabled(has)
        self.remove_file_button.setEnabled(bool(self.files.selectedItems()))
        chosen = self.selected_files()
        if len(chosen) == 1:
            f = chosen[0]
            self.detail.setText(
                f"{f.path}\n{state_text(f).capitalize()}" + (f": {f.skip_message}" if f.skip_message else "")
            )
        else:
            self.detail.setText(
                f"{len(chosen)} files selected" if chosen else "Select a file to see where it is and why."
            )

    # -- what the person does --------------------------------------------------------------
    def _on_current(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            cid = int(current.data(_ID))
            self.ops.op("reading a collection", lambda: self.vm.choose(cid)).run()

    def _create(self) -> None:
        name = self.new_name.text()
        (
            self.ops.op("making a collection", lambda: self.vm.create_collection(name))
            .success(lambda _made: self.new_name.clear())
            .disabling(self.create_button)
            .run()
        )

    def add_paths(self, paths: list[Path]) -> None:
        if paths:
            self.ops.op("adding documents", lambda: self.vm.add(paths)).disabling(
                self.add_files_button, self.add_folder_button
            ).run()

    def _add_files(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Add files", str(Path.home()))
        self.add_paths([Path(n) for n in names])

    def _add_folder(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Add a folder (and everything in it)", str(Path.home()))
        self.add_paths([Path(name)] if name else [])

    def _reindex(self) -> None:
        cid = self.vm.chosen
        if cid is None:
            return
        ids = [f.id for f in self.selected_files()] or None
        self.ops.op("re-indexing", lambda: self.vm.reindex(cid, ids)).disabling(self.reindex_button).run()

    def _remove_file(self) -> None:
        files = self.selected_files()

        async def remove() -> None:
            for f in files:
                await self.vm.remove_file(f)

        if files:
            self.ops.op("removing files", remove).disabling(self.remove_file_button).run()

    def _remove_collection(self) -> None:
        view = self.vm.view_of(self.vm.chosen)
        if view is None:
            return
        name = collection_label(view.collection)
        answer = QMessageBox.question(
            self,
            "Remove collection",
            f"Remove “{name}” and its index ({view.files} file(s), {view.passages:,} passages)?\n"
            "Chats that use it will no longer search it. The files on your disk are not touched.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            cid = view.collection.id
            (
                self.ops.op("removing a collection", lambda: self.vm.remove_collection(cid))
                .failure(lambda e: self.strip.show_message("error", f"Could not remove it: {describe(e)}"))
                .run()
            )

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event)
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)
