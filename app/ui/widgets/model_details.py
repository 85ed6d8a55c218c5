"""The model manager's details pane: what one model is, whether it fits, the load settings,
and the buttons that act on it.

Shows a `ModelDetails` and the current `LoadSettings` it is handed, and reports what the
person did through signals. Spin boxes cannot hold invalid values (their ranges come from
the model: context up to what it was trained for), and are only written when their value
really differs, so a progress update never fights someone typing.
Must not: read files, start work, or decide whether an action is allowed (the Action
values say so, with the reason as the tooltip).
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.models.rows import Action, ModelDetails
from app.core.settings import MAX_CONTEXT, LoadSettings
from app.ui.theme import set_style
from app.ui.widgets.model_list import VERDICT_TONES
from engine.threads import physical_cores

__all__ = ["ModelDetailsPane"]

_FLASH_VALUES: tuple[bool | None, ...] = (None, True, False)  # the flash attention choices: automatic, on, off
_MAX_GPU_LAYERS = 1000  # LoadSettings' bound, for a model whose layer count is not known yet


def _label(parent: QWidget, *, wrap: bool = True, selectable: bool = False) -> QLabel:
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)  # model names and metadata come from files
    label.setWordWrap(wrap)
    if selectable:
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ModelDetailsPane(QWidget):
    use_clicked = Signal()
    download_clicked = Signal()
    cancel_clicked = Signal()
    verify_clicked = Signal()
    remove_clicked = Signal()
    settings_edited = Signal(dict)  # LoadSettings fields that changed: n_ctx, n_threads, n_gpu_layers, flash_attn

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._metadata: list[tuple[str, str]] | None = None
        self.title = _label(self, selectable=True)
        self.title.setObjectName("modelTitle")
        font = QFont(self.font())
        font.setPointSizeF(font.pointSizeF() + 3)
        font.setWeight(QFont.Weight.DemiBold)
        self.title.setFont(font)
        self.loaded_label = QLabel("● loaded", self)
        set_style(self.loaded_label, "color: $success; font-weight: 600;")
        self.loaded_label.setToolTip("This is the model Hearth is chatting with now.")
        self.summary = _label(self)
        set_style(self.summary, "color: $muted;")
        self.notes = _label(self, selectable=True)
        self.licence = _label(self, selectable=True)
        set_style(self.licence, "color: $muted;")
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setTextVisible(False)
        self.progress.setFixedHeight(8)
        self.progress_label = _label(self)
        self.fit = _label(self, selectable=True)
        self.fit.setObjectName("fit")
        self.fit.setContentsMargins(10, 8, 10, 8)
        self.where = _label(self)
        set_style(self.where, "color: $muted;")

        self.header_box = QGroupBox("From the file's header", self)
        header = QVBoxLayout(self.header_box)
        self.header_form = QFormLayout()
        self.header_form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.header_form.setHorizontalSpacing(16)
        self.header_note = _label(self.header_box, selectable=True)
        set_style(self.header_note, "color: $muted;")
        header.addLayout(self.header_form)
        header.addWidget(self.header_note)

        self.settings_box = QGroupBox("Load settings (used the next time a model loads)", self)
        self.ctx = QSpinBox(self.settings_box)
        self.ctx.setObjectName("context")
        self.ctx.setRange(256, MAX_CONTEXT)
        self.ctx.setSingleStep(1024)
        self.ctx.setSuffix(" tokens")
        self.ctx.setGroupSeparatorShown(True)
        self.ctx.setToolTip("How much of the conversation the model sees at once. More needs more memory.")
        self.threads = QSpinBox(self.settings_box)
        self.threads.setObjectName("threads")
        self.threads.setRange(0, max(1, os.cpu_count() or 1))
        self.threads.setSpecialValueText(f"Auto (1–{physical_cores()}, from the machine's load)")
        self.threads.setToolTip("CPU threads for generating. Auto leaves a core free for the window.")
        self.gpu = QSpinBox(self.settings_box)
        self.gpu.setObjectName("gpuLayers")
        self.gpu.setRange(-1, _MAX_GPU_LAYERS)
        self.gpu.setSpecialValueText("Auto")
        self.flash = QComboBox(self.settings_box)
        self.flash.setObjectName("flashAttention")
        self.flash.addItems(["Automatic", "On", "Off"])  # _FLASH_VALUES, in this order
        self.flash.setToolTip(
            "llama.cpp's flash attention: less working memory, and faster decoding on most devices. "
            "Automatic turns it on where the device can run it."
        )
        form = QFormLayout(self.settings_box)
        form.addRow("Context length", self.ctx)
        form.addRow("Threads", self.threads)
        form.addRow("GPU layers", self.gpu)
        form.addRow("Flash attention", self.flash)
        for spin in (self.ctx, self.threads, self.gpu):
            spin.setMinimumWidth(180)
        # Each control reports only its own field: the context shown may be clamped to this
        # model's trained length, and must not overwrite the saved one when threads change.
        self.ctx.valueChanged.connect(lambda v: self.settings_edited.emit({"n_ctx": v}))
        self.threads.valueChanged.connect(lambda v: self.settings_edited.emit({"n_threads": v or None}))
        self.gpu.valueChanged.connect(lambda v: self.settings_edited.emit({"n_gpu_layers": None if v < 0 else v}))
        self.flash.activated.connect(lambda i: self.settings_edited.emit({"flash_attn": _FLASH_VALUES[i]}))

        self.use_button = QPushButton("Use this model", self)
        self.use_button.setObjectName("useModel")
        self.download_button = QPushButton("Download", self)
        self.download_button.setObjectName("download")
        self.cancel_button = QPushButton("Cancel download", self)
        self.cancel_button.setObjectName("cancelDownload")
        self.verify_button = QPushButton("Verify", self)
        self.verify_button.setObjectName("verify")
        self.remove_button = QPushButton("Remove…", self)
        self.remove_button.setObjectName("remove")
        self.use_button.clicked.connect(self.use_clicked)
        self.download_button.clicked.connect(self.download_clicked)
        self.cancel_button.clicked.connect(self.cancel_clicked)
        self.verify_button.clicked.connect(self.verify_clicked)
        self.remove_button.clicked.connect(self.remove_clicked)

        body = QWidget(self)
        column = QVBoxLayout(body)
        column.setContentsMargins(4, 4, 12, 4)
        column.setSpacing(8)
        title_row = QHBoxLayout()
        title_row.addWidget(self.title, 1)
        title_row.addWidget(self.loaded_label, 0, Qt.AlignmentFlag.AlignVCenter)
        column.addLayout(title_row)
        for w in (self.summary, self.notes, self.licence):
            column.addWidget(w)
        progress_row = QVBoxLayout()
        progress_row.setSpacing(4)
        progress_row.addWidget(self.progress)
        progress_row.addWidget(self.progress_label)
        column.addLayout(progress_row)
        column.addWidget(self.fit)
        column.addWidget(self.where)
        column.addWidget(self.header_box)
        column.addWidget(self.settings_box)
        column.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidget(body)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.verify_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll, 1)
        layout.addLayout(buttons)
        self.show_details(None, LoadSettings())

    # -- showing ---------------------------------------------------------------------------
    def show_details(self, d: ModelDetails | None, settings: LoadSettings) -> None:
        """Everything about one model (None: nothing selected) and the settings form."""
        self.setEnabled(d is not None)
        if d is None:
            self.title.setText("No model selected")
            for w in (
                self.loaded_label,
                self.summary,
                self.notes,
                self.licence,
                self.fit,
                self.where,
                self.progress,
                self.progress_label,
            ):
                w.hide()
            self.header_box.hide()
            self._set_buttons(None)
            return
        r = d.row
        self.title.setText(r.name)
        self.loaded_label.setVisible(r.loaded)
        self.summary.setText(" · ".join(t for t in (r.facts, r.state) if t))
        self.summary.show()
        self.notes.setText(d.notes)
        self.notes.setVisible(bool(d.notes))
        self.licence.setText(f"Licence: {d.licence}")
        self.licence.show()
        self.progress.setVisible(d.progress >= 0)
        self.progress.setValue(max(0, d.progress))
        self.progress_label.setText(d.progress_text)
        self.progress_label.setVisible(bool(d.progress_text))
        self._show_fit(d)
        self._show_metadata(d)
        self._show_settings(d, settings)
        self._set_buttons(d)

    def _show_fit(self, d: ModelDetails) -> None:
        background, text = VERDICT_TONES.get(d.verdict or "", ("muted", "text"))
        set_style(self.fit, f"#fit {{ background: ${background}_tint; color: ${text}; border-radius: 6px; }}")
        self.fit.setText(d.fit_text)
        self.fit.setVisible(bool(d.fit_text))
        self.where.setText(d.where)
        self.where.setVisible(bool(d.where) and bool(d.fit_text))

    def _show_metadata(self, d: ModelDetails) -> None:
        self.header_box.show()
        self.header_note.setText(d.metadata_note)
        self.header_note.setVisible(bool(d.metadata_note))
        if d.metadata == self._metadata:
            return
        self._metadata = list(d.metadata)
        while self.header_form.rowCount():
            self.header_form.removeRow(0)
        for name, value in d.metadata:
            shown = _label(self.header_box, selectable=True)
            shown.setText(value)
            self.header_form.addRow(f"{name}:", shown)

    def _show_settings(self, d: ModelDetails, s: LoadSettings) -> None:
        top = d.trained_context or MAX_CONTEXT
        self._set_spin(self.ctx, top, min(s.n_ctx, top))
        self.ctx.setToolTip(
            f"How much of the conversation the model sees at once, up to the {top:,} tokens it "
            "was trained for. More needs more memory."
            if d.trained_context
            else "How much of the conversation the model sees at once. More needs more memory."
        )
        threads = 0 if s.n_threads is None else s.n_threads
        self._set_spin(self.threads, max(self.threads.maximum(), threads), threads)
        layers_top = d.block_count + 1 if d.block_count else _MAX_GPU_LAYERS
        self._set_spin(self.gpu, layers_top, -1 if s.n_gpu_layers is None else s.n_gpu_layers)
        self.gpu.setEnabled(d.gpu.enabled)
        self.gpu.setToolTip(d.gpu.why or "Layers to run on the GPU; Auto puts as many there as its free memory holds.")
        index = _FLASH_VALUES.index(s.flash_attn)
        if index != self.flash.currentIndex():
            self.flash.setCurrentIndex(index)  # `activated` reports only a person's choice

    @staticmethod
    def _set_spin(spin: QSpinBox, top: int, value: int) -> None:
        """A programmatic change, not reported as an edit, and only where something differs
        (re-setting the same value would reformat the text under someone's cursor)."""
        spin.blockSignals(True)
        try:
            if spin.maximum() != top:
                spin.setMaximum(top)
            if spin.value() != value:
                spin.setValue(value)
        finally:
            spin.blockSignals(False)

    def _set_buttons(self, d: ModelDetails | None) -> None:
        pairs: list[tuple[QPushButton, Action | None]] = [
            (self.use_button, d.use if d else None),
            (self.download_button, d.download if d else None),
            (self.cancel_button, d.cancel if d else None),
            (self.verify_button, d.verify if d else None),
            (self.remove_button, d.remove if d else None),
        ]
        for button, action in pairs:
            button.setVisible(action is not None and action.shown)
            button.setEnabled(action is not None and action.enabled)
            button.setToolTip(action.why if action is not None else "")
        if d is not None:
            self.use_button.setText("Reload with these settings" if d.row.loaded else "Use this model")
