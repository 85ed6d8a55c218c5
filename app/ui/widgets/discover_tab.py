"""The model manager's Discover tab: search the Hugging Face Hub, see a repo's quantizations with
their fit on this computer, read one's header, download it into the library.

Shows app.ui.viewmodels.discover.DiscoverViewModel and runs its coroutines through the dialog's
Ops (failures shown, buttons never left grey). Searching starts as the person types (after a
pause) or on Enter. Everything that came from the Hub (names, licences, architectures, file
names) is shown as plain text: labels are PlainText, tables draw DisplayRole as text.
The token is asked for here, in a password field, and handed to the view-model; it is never
shown back. `results_painted` gives the time from the Hub's answer arriving to the results drawn
(the figure of issue 28: under 300 ms).
Must not: call the Hub, the keychain or the disk (the view-model does, off the UI thread).
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QPaintEvent, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.core.models.rows import percent, progress_text
from app.ui.ops import Ops
from app.ui.theme import set_style
from app.ui.viewmodels.discover import DiscoverViewModel, Pane
from app.ui.widgets.discover_tables import QuantsModel, ResultRoles, ResultsModel, size_text

__all__ = ["DiscoverTab"]

SEARCH_PAUSE_MS = 400  # search once the person stops typing for this long
_SORTS = (("Most downloads", "downloads"), ("Most likes", "likes"), ("Recently updated", "recent"))
_TONES = {"offline": "warning", "gated": "warning", "error": "error", "empty": "muted", "busy": "muted"}


def _label(parent: QWidget, *, muted: bool = False, selectable: bool = False) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)  # the Hub's words, never rich text
    label.setWordWrap(True)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if muted:
        set_style(label, "color: $muted;")
    return label


def _table(parent: QWidget, name: str) -> QTableView:
    view = _ResultsView(parent) if name == "hubResults" else QTableView(parent)
    view.setObjectName(name)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setWordWrap(False)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    view.verticalHeader().hide()
    view.verticalHeader().setDefaultSectionSize(26)
    view.setShowGrid(False)
    view.setAlternatingRowColors(True)
    view.horizontalHeader().setHighlightSections(False)
    return view


class _ResultsView(QTableView):
    """The results table; says when it has painted rows that a search just brought."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.answered_at: float | None = None  # armed by the tab when new results are set
        self.on_painted: Any = None

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.answered_at is not None and self.model() is not None and self.model().rowCount():
            answered, self.answered_at = self.answered_at, None
            if self.on_painted is not None:
                self.on_painted((time.perf_counter() - answered) * 1000)


class DiscoverTab(QWidget):
    show_library = Signal(str)  # the person wants the Library tab, on this model id ("" for none)
    results_painted = Signal(float)  # ms from the Hub's answer to the results drawn

    def __init__(self, vm: DiscoverViewModel, ops: Ops, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.ops = ops
        self._syncing = False
        self.last_paint_ms: float | None = None
        self._build()
        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(SEARCH_PAUSE_MS)
        self._pause.timeout.connect(self._search_now)
        self.search_box.textEdited.connect(lambda _t: self._pause.start())
        self.search_box.returnPressed.connect(self._search_now)
        self.sort_box.currentIndexChanged.connect(lambda _i: self._search_now())
        self.results.selectionModel().currentRowChanged.connect(self._on_result)
        self.quants.selectionModel().currentRowChanged.connect(self._on_quant)
        self.token_button.clicked.connect(self.ask_token)
        self.gated_token_button.clicked.connect(self.ask_token)
        self.logout_button.clicked.connect(lambda: self.ops.op("forgetting the token", vm.logout).run())
        self.library_button.clicked.connect(lambda: self.show_library.emit(""))
        self.download_button.clicked.connect(self._download)
        self.cancel_button.clicked.connect(vm.cancel_download)
        self.results.on_painted = self._painted  # type: ignore[attr-defined]
        vm.results_changed.connect(self._show_results)
        vm.repo_changed.connect(self._show_repo)
        vm.header_changed.connect(self._show_header)
        vm.download_changed.connect(self._show_download)
        vm.token_changed.connect(self._show_token)
        self._show_results()
        self._show_repo()
        self._show_header()
        self._show_download()
        self._show_token()

    def _build(self) -> None:
        self.search_box = QLineEdit(self)
        self.search_box.setObjectName("hubSearch")
        self.search_box.setPlaceholderText("Search the Hugging Face Hub for GGUF models…")
        self.search_box.setClearButtonEnabled(True)
        self.sort_box = QComboBox(self)
        self.sort_box.setObjectName("hubSort")
        for text, key in _SORTS:
            self.sort_box.addItem(text, key)
        self.token_button = QPushButton("Hugging Face token…", self)
        self.token_button.setObjectName("hubToken")
        self.token_button.setToolTip("For gated and private repos: a token kept in the system keychain.")
        self.logout_button = QPushButton("Log out", self)
        self.logout_button.setObjectName("hubLogout")
        self.logout_button.setToolTip("Forget the Hugging Face token saved in the keychain.")
        top = QHBoxLayout()
        top.addWidget(self.search_box, 1)
        top.addWidget(self.sort_box)
        top.addWidget(self.token_button)
        top.addWidget(self.logout_button)

        self.search_status = _label(self, selectable=True)
        self.search_status.setObjectName("searchStatus")
        self.library_button = QPushButton("Show the models on this computer", self)
        self.library_button.setObjectName("showLibrary")
        status_row = QHBoxLayout()
        status_row.addWidget(self.search_status, 1)
        status_row.addWidget(self.library_button, 0, Qt.AlignmentFlag.AlignTop)

        self.results_model = ResultsModel(self)
        self.results = _table(self, "hubResults")
        self.results.setModel(self.results_model)
        header = self.results.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in ((1, 120), (2, 84), (3, 64), (4, 110), (5, 96)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            self.results.setColumnWidth(col, width)

        # -- the repo: its quantizations on the left, the chosen one on the right ------------
        repo_side = QWidget(self)
        self.repo_title = _label(repo_side, selectable=True)
        self.repo_title.setObjectName("repoTitle")
        set_style(self.repo_title, "font-weight: 600;")
        self.repo_status = _label(repo_side, selectable=True)
        self.repo_status.setObjectName("repoStatus")
        self.gated_token_button = QPushButton("Hugging Face token…", repo_side)
        self.gated_token_button.setObjectName("gatedToken")
        self.quants_model = QuantsModel(self)
        self.quants = _table(repo_side, "hubQuants")
        self.quants.setModel(self.quants_model)
        qheader = self.quants.horizontalHeader()
        qheader.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in ((1, 120), (2, 120), (3, 150)):
            qheader.setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            self.quants.setColumnWidth(col, width)
        repo_column = QVBoxLayout(repo_side)
        repo_column.setContentsMargins(0, 0, 6, 0)
        repo_column.addWidget(self.repo_title)
        repo_column.addWidget(self.repo_status)
        repo_column.addWidget(self.gated_token_button, 0, Qt.AlignmentFlag.AlignLeft)
        repo_column.addWidget(self.quants, 1)
        repo_column.addStretch(0)

        file_side = QWidget(self)
        self.header_box = QGroupBox("From the file's header (read before any download)", file_side)
        self.header_box.setObjectName("hubHeader")
        box = QVBoxLayout(self.header_box)
        self.header_form = QFormLayout()
        self.header_form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.header_form.setHorizontalSpacing(14)
        self.header_status = _label(self.header_box, selectable=True)
        self.header_status.setObjectName("headerStatus")
        box.addLayout(self.header_form)
        box.addWidget(self.header_status)
        self.fit_label = _label(file_side, selectable=True)
        self.fit_label.setObjectName("hubFit")
        self.download_button = QPushButton("Download", file_side)
        self.download_button.setObjectName("hubDownload")
        self.blocker = _label(file_side, muted=True)
        self.blocker.setObjectName("downloadBlocker")
        self.progress = QProgressBar(file_side)
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress_label = _label(file_side)
        self.progress_label.setObjectName("hubProgress")
        self.cancel_button = QPushButton("Cancel download", file_side)
        self.cancel_button.setObjectName("hubCancel")
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        file_column = QVBoxLayout(file_side)
        file_column.setContentsMargins(6, 0, 0, 0)
        file_column.addWidget(self.header_box)
        file_column.addWidget(self.fit_label)
        file_column.addLayout(buttons)
        file_column.addWidget(self.blocker)
        file_column.addWidget(self.progress)
        file_column.addWidget(self.progress_label)
        file_column.addStretch(1)

        below = QSplitter(Qt.Orientation.Horizontal, self)
        below.addWidget(repo_side)
        below.addWidget(file_side)
        below.setChildrenCollapsible(False)
        below.setSizes([520, 460])
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.results)
        split.addWidget(below)
        split.setChildrenCollapsible(False)
        split.setSizes([220, 360])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 6, 0, 0)
        layout.addLayout(top)
        layout.addLayout(status_row)
        layout.addWidget(split, 1)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.search_box.setFocus()
        self.ops.op("reading whether a Hugging Face token is saved", self.vm.start).run()

    # -- what the person does --------------------------------------------------------------
    def _search_now(self) -> None:
        self._pause.stop()
        query, sort = self.search_box.text(), self.sort_box.currentData()
        if query.strip() == self.vm.query and sort == self.vm.sort and self.vm.search_pane.kind == "ready":
            return  # Enter after the pause already searched these words
        self.ops.op("searching the Hub", lambda: self.vm.search(query, sort)).run()

    def _on_result(self, current: QModelIndex, _previous: QModelIndex) -> None:
        repo = current.data(ResultRoles.Repo) if current.isValid() else None
        if self._syncing or not isinstance(repo, str) or repo == self.vm.repo:
            return
        self.ops.op(f"reading {repo}", lambda: self.vm.open_repo(repo)).run()

    def _on_quant(self, current: QModelIndex, _previous: QModelIndex) -> None:
        quant = self.quants_model.quant_at(current.row()) if current.isValid() else None
        if self._syncing or quant is None or quant == self.vm.chosen:
            return
        self.ops.op(f"reading the header of {quant}", lambda: self.vm.choose(quant)).run()

    def _download(self) -> None:
        installed = self.vm.installed_id()
        if installed is not None:
            self.show_library.emit(installed)
            return
        self.ops.op("downloading from the Hub", self.vm.download).run()

    def ask_token(self) -> None:
        """Ask for a token in a password field (before any coroutine: a modal loop inside a
        running task would re-enter the loop), then hand it to the view-model."""
        token, ok = QInputDialog.getText(
            self,
            "Hugging Face token",
            "A Hugging Face access token (huggingface.co/settings/tokens; “Read” is enough).\n"
            "Hearth keeps it in the system keychain and never shows it.",
            QLineEdit.EchoMode.Password,
        )
        if ok and token.strip():
            self.ops.op("saving the Hugging Face token", lambda: self.vm.login(token)).run()

    def select_repo(self, repo: str) -> None:
        row = self.results_model.row_of(repo)
        if row >= 0:
            self.results.setCurrentIndex(self.results_model.index(row, 0))

    def select_quant(self, quant: str) -> None:
        row = self.quants_model.row_of(quant)
        if row >= 0:
            self.quants.setCurrentIndex(self.quants_model.index(row, 0))

    # -- showing ---------------------------------------------------------------------------
    def _show_pane(self, label: QLabel, pane: Pane) -> None:
        label.setText(pane.text)
        label.setVisible(bool(pane.text))
        tone = _TONES.get(pane.kind)
        set_style(label, f"color: ${tone};" if tone else "")

    def _show_results(self) -> None:
        vm = self.vm
        self._show_pane(self.search_status, vm.search_pane)
        self.library_button.setVisible(vm.search_pane.kind == "offline")
        if [self.results_model.repo_at(i) for i in range(self.results_model.rowCount())] == vm.results:
            return
        self._syncing = True
        try:
            self.results_model.set_rows(vm.results)
            row = self.results_model.row_of(vm.repo)
            if row >= 0:
                self.results.setCurrentIndex(self.results_model.index(row, 0))
        finally:
            self._syncing = False
        if vm.results and vm.answered_at is not None:
            self.results.answered_at = vm.answered_at  # type: ignore[attr-defined]
            self.results.viewport().update()

    def _painted(self, ms: float) -> None:
        self.last_paint_ms = ms
        self.results_painted.emit(ms)

    def _show_repo(self) -> None:
        vm = self.vm
        info = vm.repo_info
        if vm.repo is None:
            self.repo_title.setText("Choose a repo above to see its quantizations.")
        else:
            facts = []
            if info is not None:
                facts = [
                    f"{info.downloads:,} downloads",
                    f"{info.likes:,} likes",
                    f"licence {info.license or 'not given'}",
                ]
            self.repo_title.setText(vm.repo + ("  ·  " + " · ".join(facts) if facts else ""))
        pane = vm.repo_pane
        self._show_pane(self.repo_status, pane)
        self.gated_token_button.setVisible(pane.kind == "gated")
        self.quants.setVisible(bool(vm.quants))
        self._syncing = True
        try:
            self.quants_model.set_rows(vm.quants, vm.recommended)
            row = self.quants_model.row_of(vm.chosen)
            if row >= 0 and self.quants.currentIndex().row() != row:
                self.quants.setCurrentIndex(self.quants_model.index(row, 0))
        finally:
            self._syncing = False
        self._show_actions()

    def _show_header(self) -> None:
        vm = self.vm
        while self.header_form.rowCount():
            self.header_form.removeRow(0)
        header = vm.header
        if header is not None:
            info = header.info
            rows = [(k, v) for k, v in info.describe() if k not in ("Name", "File size")]
            rows.append(("This build", header.support_message()))
            rows.append(("Header read", f"{header.bytes_downloaded:,} bytes in {header.requests} requests"))
            for key, value in rows:
                name = QLabel(key + ":", self.header_box)
                shown = _label(self.header_box, selectable=True)
                shown.setText(value)
                if key == "This build":
                    shown.setObjectName("runnable")
                    set_style(shown, "color: $success;" if header.support == "supported" else "color: $error;")
                self.header_form.addRow(name, shown)
        pane = vm.header_pane
        self.header_box.setVisible(vm.chosen is not None)
        self._show_pane(self.header_status, pane if header is None else Pane())
        self._show_actions()

    def _show_actions(self) -> None:
        vm = self.vm
        fit = vm.chosen_fit()
        self.fit_label.setVisible(fit is not None)
        if fit is not None:
            size = size_text(fit.quant.size) + (f" in {len(fit.quant.files)} parts" if fit.quant.split else "")
            self.fit_label.setText(f"{fit.quant.quant}, {size}. {fit.message}")
            tone = {"fits": "success", "tight": "warning", "too_big": "error"}[fit.verdict.value]
            set_style(self.fit_label, f"color: ${tone};")
        installed = vm.installed_id()
        blocker = None if installed is not None else vm.download_blocker()
        self.download_button.setText("Show in Library" if installed else "Download")
        self.download_button.setVisible(vm.chosen is not None)
        self.download_button.setEnabled(blocker is None)
        busy = vm.download_state is not None
        why = blocker if vm.chosen is not None and not busy else None
        self.blocker.setText(why or "")
        self.blocker.setVisible(bool(why))

    def _show_download(self) -> None:
        job = self.vm.download_state
        self.cancel_button.setVisible(job is not None)
        self.cancel_button.setEnabled(job is not None and job.download is not None)
        self.progress.setVisible(job is not None)
        self.progress_label.setVisible(job is not None)
        if job is not None:
            p = job.progress
            words = progress_text(p) if p is not None else "Starting…"
            part = f" (part {job.part + 1} of {job.parts})" if job.parts > 1 else ""
            self.progress_label.setText(f"{job.model_id}{part}: {words}")
            self.progress.setValue(percent(p.done_bytes, p.total_bytes) if p is not None else 0)
        self._show_actions()

    def _show_token(self) -> None:
        self.logout_button.setVisible(self.vm.has_token)
        self.token_button.setText("Hugging Face token ✓" if self.vm.has_token else "Hugging Face token…")
