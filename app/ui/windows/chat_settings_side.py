"""The chat settings panel at the right of the transcript, and what ties it to the chat shown.

Owns the panel's place in the window (a splitter beside the transcript, hidden until Chat
settings / Ctrl+Shift+S), which conversation it shows (it follows MainViewModel.current),
and the ops that save: an edit to that conversation (ConversationViewModel.set_chat_settings),
a preset to the presets file (PresetsViewModel). A pending edit is saved to the chat it was
made in before another chat is shown, and before the window closes (it calls `panel.flush`).
Must not: hold settings of its own or touch the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtWidgets import QSplitter, QWidget

from app.core.chat_settings import ChatSettings
from app.core.errors import describe
from app.core.presets import Presets
from app.ui.viewmodels.conversation import ConversationViewModel
from app.ui.viewmodels.presets import PresetsViewModel
from app.ui.widgets.chat_settings_panel import ChatSettingsPanel

if TYPE_CHECKING:
    from app.ui.ops import Ops
    from app.ui.viewmodels.main import MainViewModel

__all__ = ["PANEL_KEY", "ChatSettingsSide"]

PANEL_KEY = "view/chat_settings"  # whether the panel was open, in the window's QSettings


class ChatSettingsSide(QObject):
    """Made once by the window, after its widgets exist: `outer` is its list | chat splitter,
    `composer` takes the focus back when the panel closes, and `prefs` keeps whether it was open
    (None: not kept)."""

    def __init__(
        self,
        window: QWidget,
        outer: QSplitter,
        vm: MainViewModel,
        presets: PresetsViewModel,
        composer: QWidget,
        prefs: QSettings | None,
        ops: Ops,
        *,
        show_problem: Callable[[str], None],
        notice: Callable[[str], None],
    ) -> None:
        super().__init__(window)
        self.presets = presets
        self._composer = composer
        self._prefs = prefs
        self._ops = ops
        self._show_problem = show_problem
        self.panel = ChatSettingsPanel(window)
        self._vm: ConversationViewModel | None = None
        # The transcript's column and the panel share the chat's side of the window's splitter.
        chat = outer.widget(1)
        assert chat is not None, "the window's centre is list | chat"
        self.splitter = QSplitter(Qt.Orientation.Horizontal, window)
        outer.replaceWidget(1, self.splitter)
        self.splitter.addWidget(chat)
        self.splitter.addWidget(self.panel)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setCollapsible(0, False)
        self.splitter.setSizes([560, 300])
        self.panel.hide()
        self.panel.set_presets(presets.presets)
        self.panel.edited.connect(self._save)
        self.panel.save_preset_requested.connect(self._save_preset)
        self.panel.default_preset_requested.connect(self._make_default)
        self.panel.delete_preset_requested.connect(self._delete_preset)
        self.panel.close_requested.connect(lambda: self.set_open(False))
        presets.changed.connect(self._on_presets)
        vm.current_changed.connect(self.follow)
        vm.model_status_changed.connect(lambda *_: self.panel.set_model_context(vm.model_context))
        self.panel.set_model_context(vm.model_context)
        self.follow(vm.current)
        if presets.warning:
            notice(presets.warning)

    @property
    def is_open(self) -> bool:
        return not self.panel.isHidden()

    def toggle(self) -> None:
        self.set_open(not self.is_open)

    def set_open(self, on: bool) -> None:
        if not on:
            self.panel.flush()
        self.panel.setVisible(on)
        if on:
            self.panel.system_prompt.setFocus()
        else:
            self._composer.setFocus()
        if self._prefs is not None:
            self._prefs.setValue(PANEL_KEY, on)

    def restore(self) -> None:
        """Open it if it was open when the window last closed."""
        if self._prefs is not None and str(self._prefs.value(PANEL_KEY, "false")).lower() == "true":
            self.panel.show()

    def follow(self, vm: ConversationViewModel) -> None:
        """Show `vm`'s settings; an edit still pending goes to the chat it was made in."""
        self.panel.flush()
        old = self._vm
        if old is not None:
            old.chat_settings_changed.disconnect(self._on_vm_settings)
            old.conversation_id_changed.disconnect(self._on_vm_id)
        self._vm = vm
        vm.chat_settings_changed.connect(self._on_vm_settings)
        vm.conversation_id_changed.connect(self._on_vm_id)
        self.panel.show_settings(vm.chat_settings, saved=vm.conversation_id is not None)

    def _on_vm_settings(self, settings: ChatSettings) -> None:
        """Loaded, or put back after a failed save: shown unless the person is typing."""
        vm = self._vm
        if vm is None or self.panel.pending or settings == self.panel.current():
            return
        self.panel.show_settings(settings, saved=vm.conversation_id is not None)

    def _on_vm_id(self, conversation_id: object) -> None:
        self.panel.set_saved(conversation_id is not None)

    def _save(self, settings: ChatSettings) -> None:
        vm = self._vm
        if vm is None:
            return
        (
            self._ops.op("saving the chat's settings", lambda: vm.set_chat_settings(settings))
            .failure(lambda e: self._show_problem(f"Could not save this chat's settings: {describe(e)}"))
            .run()
        )

    # -- presets -----------------------------------------------------------------------
    def _on_presets(self, presets: Presets) -> None:
        self.panel.set_presets(presets)

    def _save_preset(self, name: str, settings: ChatSettings) -> None:
        (
            self._ops.op("saving a preset", lambda: self.presets.save_preset(name, settings))
            .success(self.panel.preset_saved)
            .failure(lambda e: self.panel.show_preset_message(describe(e), error=True))
            .run()
        )

    def _make_default(self, name: str) -> None:
        (
            self._ops.op("choosing the default preset", lambda: self.presets.set_default(name))
            .success(lambda _: self.panel.show_preset_message(f"New chats start from “{name}”."))
            .failure(lambda e: self.panel.show_preset_message(describe(e), error=True))
            .run()
        )

    def _delete_preset(self, name: str) -> None:
        (
            self._ops.op("deleting a preset", lambda: self.presets.delete_preset(name))
            .success(lambda _: self.panel.show_preset_message(f"Deleted preset “{name}”."))
            .failure(lambda e: self.panel.show_preset_message(describe(e), error=True))
            .run()
        )
