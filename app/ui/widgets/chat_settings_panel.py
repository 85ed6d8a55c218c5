"""The chat settings side panel: a preset picker, "Save as preset…", and the six settings.

A form, nothing more: it shows the ChatSettings it is given and reports what the person
changed. Edits are reported `DEBOUNCE_MS` after the last key press, and only when every field
is valid; a field's problem is shown under it once the person has changed it. Picking a preset
is reported at once. Must not: save anything, or know which conversation it shows (the
window's ChatSettingsSide does both).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chat_settings import FIELD_LABELS, LIMITS, OVERFLOW_CHOICES, ChatSettings, context_note
from app.core.presets import Presets
from app.ui.theme import set_style

__all__ = ["DEBOUNCE_MS", "ChatSettingsPanel"]

DEBOUNCE_MS = 400
_CUSTOM = "Custom"

_HELP = {
    "system_prompt": "Instructions the model reads before the conversation, on every turn.",
    "temperature": "Randomness: 0 always picks the likeliest word; higher is more varied.",
    "top_p": "Only the likeliest words that together make up this share are considered.",
    "max_tokens": "The longest answer, in tokens; a longer one stops and can be continued.",
    "repeat_penalty": "Discourages repeating the last 64 tokens; 1.0 turns it off. Small models loop without it.",
    "context_length": "How much of the model's context this chat may use; 0 for all of it. It cannot exceed "
    "what the model was loaded with (Models → Manage models).",
    "overflow": "What happens when the conversation no longer fits the context. Nothing saved is deleted: the "
    "turns left out are only not sent to the model. Summarize: once the chat fills half the context, the "
    "model writes a summary of the oldest turns in the background, and sends it in their place.",
}


def _narrow_combo(parent: QWidget) -> QComboBox:
    """A choice list as narrow as its column: a long choice is cut in the box (the popup and
    the tooltip show it whole) instead of widening the panel past the window's edge."""
    combo = QComboBox(parent)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    return combo


def _fit_popup(combo: QComboBox) -> None:
    """The popup list is as wide as its longest choice (it may pass the panel's edge)."""
    view = combo.view()
    widest = max((view.fontMetrics().horizontalAdvance(combo.itemText(i)) for i in range(combo.count())), default=0)
    view.setMinimumWidth(widest + 2 * view.frameWidth() + 24)  # the item's margins and check mark


def _error_label(parent: QWidget) -> QLabel:
    label = QLabel(parent)
    label.setWordWrap(True)
    set_style(label, "color: $error;")
    label.hide()
    return label


class ChatSettingsPanel(QFrame):
    edited = Signal(object)  # ChatSettings: valid values the person typed (debounced) or a preset picked
    save_preset_requested = Signal(str, object)  # name, ChatSettings
    default_preset_requested = Signal(str)  # new chats start from this preset
    delete_preset_requested = Signal(str)
    close_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatSettingsPanel")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(260)
        self._presets = Presets()
        self._settings = ChatSettings()
        self._model_context: int | None = None
        self._filling = False  # values are being shown, not typed
        self._saved = False  # the chat shown exists (else: a new chat, kept until its first message)
        self._touched: set[str] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.flush)
        self._build()

    # -- building ----------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        header.setContentsMargins(10, 8, 6, 0)
        title = QLabel("Chat settings", self)
        font = QFont(title.font())
        font.setBold(True)
        title.setFont(font)
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide the chat settings (Ctrl+Shift+S)")
        close.clicked.connect(self.close_requested)
        header.addWidget(title, 1)
        header.addWidget(close)
        outer.addLayout(header)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        # A form in a side column scrolls down, never sideways: every field fits its width
        # (labels wrap, the choice lists show their full text in the popup and the tooltip).
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget(self.scroll_area)
        self._form = QVBoxLayout(body)
        self._form.setContentsMargins(10, 4, 10, 10)
        self._form.setSpacing(4)
        self._build_presets(body)
        self.system_prompt = QPlainTextEdit(body)
        self.system_prompt.setPlaceholderText("None: the model's own default. E.g. “Answer briefly, in French.”")
        self.system_prompt.setMaximumHeight(120)
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.textChanged.connect(lambda: self._changed("system_prompt"))
        self.temperature = self._double(body, "temperature", 0.05, 2)
        self.top_p = self._double(body, "top_p", 0.01, 2)
        self.max_tokens = self._int(body, "max_tokens", 64)
        self.repeat_penalty = self._double(body, "repeat_penalty", 0.05, 2)
        self.context_length = self._int(body, "context_length", 256)
        self.overflow = _narrow_combo(body)
        for key, text in OVERFLOW_CHOICES.items():
            self.overflow.addItem(text, key)
            self.overflow.setItemData(self.overflow.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
        _fit_popup(self.overflow)
        self.overflow.currentIndexChanged.connect(lambda _i: self._changed("overflow"))
        self.overflow.currentTextChanged.connect(lambda text: self.overflow.setToolTip(f"{text}.\n{_HELP['overflow']}"))
        self.context_note = QLabel(body)
        self.context_note.setWordWrap(True)
        set_style(self.context_note, "color: $muted;")
        self.errors: dict[str, QLabel] = {}
        for name, widget in (
            ("system_prompt", self.system_prompt),
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("max_tokens", self.max_tokens),
            ("repeat_penalty", self.repeat_penalty),
            ("context_length", self.context_length),
            ("overflow", self.overflow),
        ):
            label = QLabel(FIELD_LABELS[name], body)
            label.setWordWrap(True)
            label.setToolTip(_HELP[name])
            widget.setToolTip(_HELP[name])
            label.setBuddy(widget)
            self._form.addSpacing(6)
            self._form.addWidget(label)
            self._form.addWidget(widget)
            if name == "context_length":
                self._form.addWidget(self.context_note)
            self.errors[name] = _error_label(body)
            self._form.addWidget(self.errors[name])
        self.overflow.setToolTip(f"{self.overflow.currentText()}.\n{_HELP['overflow']}")
        self.where = QLabel(body)  # saved with this chat / kept until the first message
        self.where.setWordWrap(True)
        set_style(self.where, "color: $muted;")
        self._form.addSpacing(10)
        self._form.addWidget(self.where)
        self._form.addStretch(1)
        self.scroll_area.setWidget(body)
        outer.addWidget(self.scroll_area, 1)

    def _build_presets(self, body: QWidget) -> None:
        label = QLabel("Preset", body)
        self.preset = _narrow_combo(body)
        self.preset.setToolTip("Named settings. New chats start from the default one.")
        self.preset.activated.connect(self._preset_picked)
        label.setBuddy(self.preset)
        self.save_as_button = QPushButton("Save as preset…", body)
        self.save_as_button.clicked.connect(self._ask_name)
        self.more_button = QToolButton(body)
        self.more_button.setText("⋯")
        self.more_button.setToolTip("More preset actions")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.more_button)
        self.make_default_action = menu.addAction("Use this preset for new chats")
        self.make_default_action.triggered.connect(lambda: self.default_preset_requested.emit(self.preset_name()))
        self.delete_action = menu.addAction("Delete this preset")
        self.delete_action.triggered.connect(lambda: self.delete_preset_requested.emit(self.preset_name()))
        self.more_button.setMenu(menu)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_as_button, 1)
        buttons.addWidget(self.more_button)
        self.name_row = QWidget(body)
        row = QHBoxLayout(self.name_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.name_edit = QLineEdit(self.name_row)
        self.name_edit.setPlaceholderText("Name of the new preset")
        self.name_edit.returnPressed.connect(self._save_as)
        save = QPushButton("Save", self.name_row)
        save.clicked.connect(self._save_as)
        cancel = QPushButton("Cancel", self.name_row)
        cancel.clicked.connect(self.name_row.hide)
        row.addWidget(self.name_edit, 1)
        row.addWidget(save)
        row.addWidget(cancel)
        self.name_row.hide()
        self.preset_message = QLabel(body)
        self.preset_message.setWordWrap(True)
        self.preset_message.hide()
        self._form.addWidget(label)
        self._form.addWidget(self.preset)
        self._form.addLayout(buttons)
        self._form.addWidget(self.name_row)
        self._form.addWidget(self.preset_message)

    def _double(self, parent: QWidget, name: str, step: float, decimals: int) -> QDoubleSpinBox:
        box = QDoubleSpinBox(parent)
        low, high = LIMITS[name]
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(decimals)
        box.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        box.valueChanged.connect(lambda _v: self._changed(name))
        return box

    def _int(self, parent: QWidget, name: str, step: int) -> QSpinBox:
        box = QSpinBox(parent)
        low, high = LIMITS[name]
        box.setRange(int(low), int(high))
        box.setSingleStep(step)
        box.setGroupSeparatorShown(True)
        box.valueChanged.connect(lambda _v: self._changed(name))
        return box

    def add_row(self, widget: QWidget) -> None:
        """A row the window adds (the chat's documents), above the line on where settings are kept."""
        self._form.insertWidget(self._form.indexOf(self.where) - 1, widget)

    # -- showing -----------------------------------------------------------------------
    def show_settings(self, settings: ChatSettings, *, saved: bool) -> None:
        """Show a chat's settings (switching chats, a preset picked, a save put back); a
        pending edit is dropped, so call `flush` first to keep it. `saved`: the chat exists."""
        self._timer.stop()
        self._settings = settings
        self._touched.clear()
        self._filling = True
        try:
            if self.system_prompt.toPlainText() != settings.system_prompt:
                self.system_prompt.setPlainText(settings.system_prompt)
            self.temperature.setValue(settings.temperature)
            self.top_p.setValue(settings.top_p)
            self.max_tokens.setValue(settings.max_tokens)
            self.repeat_penalty.setValue(settings.repeat_penalty)
            self.context_length.setValue(settings.context_length)
            self.overflow.setCurrentIndex(max(0, self.overflow.findData(settings.overflow)))
        finally:
            self._filling = False
        for label in self.errors.values():
            label.hide()
        self.set_saved(saved)
        self._sync_presets()
        self._sync_context()

    def set_saved(self, saved: bool) -> None:
        self._saved = saved
        self.where.setText(
            "Saved with this chat; used by every answer in it."
            if saved
            else "A new chat: these are kept with it when you send the first message."
        )

    def set_presets(self, presets: Presets) -> None:
        self._presets = presets
        self._sync_presets()

    def set_model_context(self, n_ctx: int | None) -> None:
        self._model_context = n_ctx
        self._sync_context()
        if "context_length" in self._touched:
            self._validate()

    def show_preset_message(self, text: str, *, error: bool = False) -> None:
        self.preset_message.setText(text)
        set_style(self.preset_message, "color: $error;" if error else "color: $muted;")
        self.preset_message.setVisible(bool(text))

    def preset_name(self) -> str:
        return str(self.preset.currentData() or "")

    @property
    def pending(self) -> bool:
        """An edit is waiting for its debounce."""
        return self._timer.isActive()

    def current(self) -> ChatSettings:
        """The values in the fields (possibly invalid)."""
        return ChatSettings(
            system_prompt=self.system_prompt.toPlainText(),
            temperature=self.temperature.value(),
            top_p=self.top_p.value(),
            max_tokens=self.max_tokens.value(),
            repeat_penalty=self.repeat_penalty.value(),
            context_length=self.context_length.value(),
            overflow=str(self.overflow.currentData()),
        )

    def _sync_presets(self) -> None:
        match = self._presets.matching(self._settings)
        self.preset.blockSignals(True)
        self.preset.clear()
        if match is None:
            self.preset.addItem(_CUSTOM, "")
        for p in self._presets.presets:
            self.preset.addItem(f"{p.name} (default)" if p.name == self._presets.default_name else p.name, p.name)
        self.preset.setCurrentIndex(max(0, self.preset.findData(match or "")))
        self.preset.setToolTip(f"{self.preset.currentText()}.\nNamed settings. New chats start from the default one.")
        _fit_popup(self.preset)
        self.preset.blockSignals(False)
        chosen = self._presets.find(match) if match else None
        self.make_default_action.setEnabled(chosen is not None and chosen.name != self._presets.default_name)
        self.delete_action.setEnabled(chosen is not None and not chosen.builtin)

    def _sync_context(self) -> None:
        n = self._model_context
        self.context_length.setSpecialValueText(f"All ({n:,} tokens)" if n else "All of the model's")
        self.context_note.setText(context_note(self.context_length.value(), n))
        self.context_note.setVisible(bool(self.context_note.text()))  # no empty line's gap

    # -- what the person does ----------------------------------------------------------
    def _changed(self, name: str) -> None:
        if self._filling:
            return
        self._touched.add(name)
        if name == "context_length":
            self._sync_context()
        if self._validate():
            self._settings = self.current()
            self._sync_presets()
            self._timer.start()
        else:
            self._timer.stop()

    def _validate(self) -> bool:
        problems = self.current().problems(model_context=self._model_context)
        for name, label in self.errors.items():
            text = problems.get(name, "") if name in self._touched else ""
            label.setText(text)
            label.setVisible(bool(text))
        return not problems

    def flush(self) -> None:
        """Report a pending valid edit now (the debounce ran out, or another chat is shown)."""
        if self._timer.isActive():
            self._timer.stop()
        if not self._touched or self._filling:
            return
        settings = self.current()
        if settings.problems(model_context=self._model_context):
            return
        self._touched.clear()
        self.edited.emit(settings)

    def _preset_picked(self, index: int) -> None:
        name = self.preset.itemData(index)
        preset = self._presets.find(name) if name else None
        if preset is None:
            return
        self.show_settings(preset.settings, saved=self._saved)
        self.edited.emit(preset.settings)

    def _ask_name(self) -> None:
        self.name_row.show()
        self.show_preset_message("")
        self.name_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def _save_as(self) -> None:
        settings = self.current()
        problems = settings.problems()
        if problems:
            self.show_preset_message(" ".join(problems.values()), error=True)
            return
        self.save_preset_requested.emit(self.name_edit.text(), settings)

    def preset_saved(self, name: str) -> None:
        """The preset was saved: hide the name row and show it picked."""
        self.name_row.hide()
        self.name_edit.clear()
        self.show_preset_message(f"Saved preset “{name}”.")
