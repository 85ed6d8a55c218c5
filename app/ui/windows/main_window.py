"""The main window: conversation list | route picker + transcript + composer, a status
line, and the Models menu that opens the model manager (so does clicking the model name
below) and the Providers window (so does "Providers…" in the route picker).

Owns layout and wiring: it forwards what the person does to the MainViewModel and shows
what the view-models report. Async handlers use try/except/else/finally so a failure
never leaves Send disabled or Stop showing.
Must not: hold chat state (the view-models do), talk to the engine or store directly, or
install process-wide hooks (app.ui.launch does that).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QHelpEvent, QKeyEvent, QMouseEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QMainWindow,
    QPushButton,
    QSplitter,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import HearthError, ProviderError, describe
from app.core.model_state import ModelState
from app.core.routes import RouteChoice
from app.ui.ops import Ops
from app.ui.viewmodels.main import ConversationViewModel, MainViewModel
from app.ui.viewmodels.models import ModelManagerViewModel
from app.ui.viewmodels.presets import PresetsViewModel
from app.ui.viewmodels.providers import ProvidersViewModel
from app.ui.widgets import (
    Composer,
    ConversationList,
    ErrorBanner,
    RouteOption,
    RoutePicker,
    StatusLine,
    TranscriptView,
)
from app.ui.widgets.context_meter import ContextMeter
from app.ui.windows.answer_queue import AnswerQueue
from app.ui.windows.chat_settings_side import ChatSettingsSide
from app.ui.windows.drafts import Drafts
from app.ui.windows.exchange_actions import ExchangeActions
from app.ui.windows.list_actions import ListActions
from app.ui.windows.message_commands import EditBar, MessageCommands
from app.ui.windows.meter_control import MeterControl
from app.ui.windows.model_manager import ModelManagerDialog
from app.ui.windows.providers_dialog import ProvidersDialog
from app.ui.windows.serve_control import ServeControl
from app.ui.windows.window_keys import WindowKeys, bind
from app.ui.windows.window_prefs import WindowLayout

__all__ = ["MainWindow"]

log = logging.getLogger("hearth.ui")

_LOCAL_PLACEHOLDER = "Ask anything. The model runs on this computer: nothing you type leaves it."


class MainWindow(QMainWindow):
    closed = Signal()  # the person closed the window; app.ui.launch shuts down after it

    def __init__(self, vm: MainViewModel, parent: QWidget | None = None, *,
                 models: ModelManagerViewModel | None = None, providers: ProvidersViewModel | None = None,
                 prefs: QSettings | None = None, presets: PresetsViewModel | None = None,
                 serving: ServeControl | None = None) -> None:
        super().__init__(parent)
        self.vm = vm
        self.serving = serving  # None: the window does not serve other apps (tests of the chat alone)
        self.models_vm = models  # None: no model library (tests of the chat alone)
        self.providers_vm = providers  # None: this computer's model only (no remote mode)
        self.model_manager: ModelManagerDialog | None = None  # made on first use, then reused
        self.providers_dialog: ProvidersDialog | None = None
        self._shown: ConversationViewModel | None = None
        self._sending = False
        self._save_problem = False
        self._route_problem = False  # the banner says the conversation's provider is gone
        self.ops = Ops(self.show_problem)
        self.backup_dialog: QFileDialog | None = None  # while the person picks where to back up
        self.setWindowTitle("Hearth")
        self.resize(1040, 720)
        self._build()
        if serving is not None:
            serving.changed.connect(lambda _on, text, _problem: self.status.show_notice(text))
        vm.conversations_changed.connect(lambda rows: self.conversations.set_rows(
            rows, more=self.vm.has_more_conversations))
        # A chat that did not exist appears at once, pointer or not (it is the one the person just
        # started, forked or imported); a known row that a turn moves holds still under the pointer.
        vm.conversation_changed.connect(lambda change: self.conversations.upsert(change.row, by_person=change.created))
        vm.current_changed.connect(self._show_conversation)
        vm.model_status_changed.connect(self._on_model_status)
        vm.busy_changed.connect(self._sync_controls)
        vm.answering_changed.connect(self.conversations.model.set_answering)  # a dot on each chat answering
        vm.notice.connect(self.status.show_notice)
        vm.save_health_changed.connect(self._on_save_health)
        self.conversations.conversation_chosen.connect(self._open)
        self.conversations.new_chat_requested.connect(self._new_chat)
        self.conversations.rename_requested.connect(self._rename)
        self.composer.submitted.connect(self._send)
        self.message_commands = MessageCommands(self)
        self.transcript.action_requested.connect(self.message_commands.run)
        self.transcript.notice.connect(self.status.show_notice)  # "Code copied"
        self.composer.edit_last_requested.connect(self.message_commands.edit_last)
        self.composer.textChanged.connect(self._sync_controls)
        self.send_button.clicked.connect(self._send)
        self.stop_button.clicked.connect(self.vm.stop)
        self.continue_button.clicked.connect(self._continue)
        self.route_picker.route_chosen.connect(self._choose_route)
        self.route_picker.manage_requested.connect(self.open_providers)
        if providers is not None:
            providers.rows_changed.connect(self._on_providers)
            # E.g. a broken providers.toml read at start-up, while the Providers window is closed.
            providers.message.connect(self._provider_message)
            self._on_providers()
        self.drafts = Drafts(self, prefs)  # each chat's unsent text, kept in prefs across runs
        self._show_conversation(vm.current)
        self._on_model_status(*vm.model_status)
        self.conversations.set_rows(vm.conversations, more=vm.has_more_conversations)
        self.list_actions = ListActions(self)  # pages, pins, deletes and their undo
        self.exchange = ExchangeActions(self)  # Export… and Import… in the Conversations menu
        self.answer_queue = AnswerQueue(self)  # "Waiting for the other answer (1 ahead)"
        self._sync_controls()
        self.keys = WindowKeys(self, prefs)  # prefs: where the zoom is kept (None: not kept)
        # The side panel of per-chat settings; presets None: the built-in ones only.
        self.chat_settings = ChatSettingsSide(self, presets or PresetsViewModel(None, self))
        self.chat_settings.restore()
        self.meter_control = MeterControl(self)  # the context meter under the message box
        self.layout_prefs = WindowLayout(self, prefs)  # size, place and splitters, as the last run left them
        # The message box has the focus from the first frame, so what is typed at once lands there
        # (ChatSettingsSide moved the chat column into its splitter above, which drops the focus;
        # left to Qt, it went to "+ New chat", and Space pressed it).
        self.composer.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def _provider_message(self, kind: str, text: str) -> None:
        if kind == "error":
            self.status.show_notice(text)

    def _build(self) -> None:
        self.conversations = ConversationList(self)
        self.banner = ErrorBanner(self)
        self.route_picker = RoutePicker(self)
        self.route_picker.setVisible(self.providers_vm is not None)
        self.transcript = TranscriptView(self)
        self.composer = Composer(self)
        self.edit_bar = EditBar(self)
        self.send_button = QPushButton("Send", self)
        self.send_button.setObjectName("send")
        self.send_button.setDefault(True)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setObjectName("stop")
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.continue_button = QPushButton("Continue", self)
        self.continue_button.setObjectName("continue")
        self.continue_button.setToolTip("Resume the last answer where it stopped")
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.continue_button)
        buttons.addStretch(1)
        composer_row = QHBoxLayout()
        composer_row.addWidget(self.composer, 1)
        composer_row.addLayout(buttons)
        chat = QWidget(self)
        column = QVBoxLayout(chat)
        column.setContentsMargins(4, 8, 8, 8)
        column.addWidget(self.banner)
        column.addWidget(self.route_picker)
        column.addWidget(self.transcript, 1)
        column.addWidget(self.edit_bar)
        column.addLayout(composer_row)
        self.meter = ContextMeter(chat)
        column.addWidget(self.meter)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.conversations)
        splitter.addWidget(chat)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([240, 800])
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)
        new_chat = bind(QAction("New chat", self), "new_chat")
        new_chat.triggered.connect(self._new_chat)
        self.addAction(new_chat)
        self.conversations.new_button.setToolTip(f"New chat ({new_chat.shortcut().toString()})")
        self.backup_action = QAction("Back up conversations…", self)
        self.backup_action.triggered.connect(self._backup)
        self.conversations_menu = self.menuBar().addMenu("&Conversations")
        self.conversations_menu.addAction(self.backup_action)
        self.manage_models_action = bind(QAction("Manage models…", self), "manage_models")
        self.manage_models_action.triggered.connect(self.open_model_manager)
        self.manage_models_action.setEnabled(self.models_vm is not None)
        self.providers_action = bind(QAction("Providers…", self), "providers")
        self.providers_action.triggered.connect(self.open_providers)
        self.providers_action.setEnabled(self.providers_vm is not None)
        models_menu = self.menuBar().addMenu("&Models")
        models_menu.addAction(self.manage_models_action)
        models_menu.addAction(self.providers_action)
        self.status = StatusLine(self)
        self.statusBar().addWidget(self.status, 1)
        self.statusBar().setSizeGripEnabled(False)
        if self.models_vm is not None:
            # The model's name in the status line is where people look when it is wrong.
            self.status.model_label.setCursor(Qt.CursorShape.PointingHandCursor)
            self.status.model_label.installEventFilter(self)

    def open_model_manager(self) -> ModelManagerDialog | None:
        if self.models_vm is None:
            return None
        if self.model_manager is None:
            self.model_manager = ModelManagerDialog(self.models_vm, self)
        self.model_manager.show()
        self.model_manager.raise_()
        self.model_manager.activateWindow()
        return self.model_manager

    def open_providers(self) -> ProvidersDialog | None:
        if self.providers_vm is None:
            return None
        if self.providers_dialog is None:
            self.providers_dialog = ProvidersDialog(self.providers_vm, self)
        if self._shown is not None and self._shown.route.provider:
            self.providers_dialog.select(self._shown.route.provider)
        self.providers_dialog.show()
        self.providers_dialog.raise_()
        self.providers_dialog.activateWindow()
        return self.providers_dialog

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Clicking the model name in the status line opens the manager."""
        if watched is self.status.model_label:
            if (event.type() == QEvent.Type.MouseButtonRelease and isinstance(event, QMouseEvent)
                    and event.button() == Qt.MouseButton.LeftButton):
                self.open_model_manager()
                return True
            if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent) \
                    and not self.status.model_label.toolTip():  # a load error's tooltip wins
                shortcut = self.manage_models_action.shortcut().toString()
                QToolTip.showText(event.globalPos(), f"Manage models ({shortcut})", self.status.model_label)
                return True
        return super().eventFilter(watched, event)

    # -- showing state -----------------------------------------------------------------
    def _show_conversation(self, vm: ConversationViewModel) -> None:
        old = self._shown
        self.drafts.switch(old, vm)
        if old is not None:
            old.reset.disconnect(self._rerender)
            old.message_added.disconnect(self.transcript.append_message)
            old.text_appended.disconnect(self.transcript.append_text)
            old.message_finished.disconnect(self.transcript.finish_message)
            old.conversation_id_changed.disconnect(self.conversations.select)
            old.reset.disconnect(self._sync_controls)
            old.reasoning_appended.disconnect(self.transcript.append_reasoning)
            old.reasoning_replaced.disconnect(self.transcript.replace_reasoning)
            old.text_replaced.disconnect(self.transcript.replace_text)
            old.reading.disconnect(self.transcript.set_live_note)
            old.route_changed.disconnect(self._show_route)
        self._shown = vm
        vm.reset.connect(self._sync_controls)  # an opened conversation may end in an unfinished answer
        vm.reset.connect(self._rerender)
        vm.message_added.connect(self.transcript.append_message)
        vm.text_appended.connect(self.transcript.append_text)
        vm.message_finished.connect(self.transcript.finish_message)
        vm.conversation_id_changed.connect(self.conversations.select)
        vm.reasoning_appended.connect(self.transcript.append_reasoning)
        vm.reasoning_replaced.connect(self.transcript.replace_reasoning)
        vm.text_replaced.connect(self.transcript.replace_text)
        vm.reading.connect(self.transcript.set_live_note)
        vm.route_changed.connect(self._show_route)
        self._show_route(vm.route)
        self._rerender()
        self._sync_controls()
        self.conversations.select(vm.conversation_id)
        self.composer.setFocus()

    def _rerender(self) -> None:
        if self._shown is not None:
            self.transcript.show_messages(self._shown.messages)

    def _show_route(self, route: RouteChoice) -> None:
        """The picker, the status line and the transcript's hint follow the shown conversation."""
        provider, model = route.provider, route.model
        self.route_picker.set_route(provider, model)
        text, tooltip = self.providers_vm.route_text(provider, model) if self.providers_vm else ("", "")
        self.status.set_route(text, tooltip)
        self.transcript.setPlaceholderText(
            f"Ask anything. Answers come from {provider}: what you type here is sent to that server."
            if provider else _LOCAL_PLACEHOLDER)

    def _on_providers(self) -> None:
        if self.providers_vm is None:
            return
        self.route_picker.set_options(
            [
                RouteOption(r.name, r.config.model, self.providers_vm.route_text(r.name, None)[1])
                for r in self.providers_vm.rows
            ]
        )
        if self._shown is not None:
            self._show_route(self._shown.route)

    def _on_model_status(self, state: str, name: str, error: str) -> None:
        self.route_picker.set_local_name(name)
        self.status.set_model(state, name, error)
        if state == "error" and error:
            self.banner.show_message(error)
        elif state == "ready" and self.vm.model_note:
            self.banner.show_note(self.vm.model_note)
        elif state in ("loading", "ready"):
            self.banner.hide()

    def show_problem(self, message: str) -> None:
        """A message the person must see: in the banner and the status line."""
        self.banner.show_message(message)
        self.status.show_notice(message)

    def _on_save_health(self, ok: bool, message: str) -> None:
        """Saves failing (disk full, read-only): say so and keep it up until they work again."""
        if not ok:
            self._save_problem = True
            self.show_problem(message)
        elif self._save_problem:
            self._save_problem = False
            self.banner.hide()
            self.status.show_notice("Saving works again: everything is saved.")

    def _sync_controls(self) -> None:
        busy = self.vm.busy
        refusal = self.meter.refusal  # the context meter measured a turn the engine would refuse
        self.send_button.setEnabled(not busy and not self._sending and self.composer.has_content() and not refusal)
        self.send_button.setToolTip(refusal)
        self.composer.set_submit_enabled(not busy and not self._sending)  # _send asks the meter
        self.stop_button.setVisible(busy)
        self.stop_button.setEnabled(busy)
        can_continue = not busy and not self._sending and self._shown is not None and self._shown.can_continue
        self.continue_button.setVisible(can_continue)
        self.continue_button.setEnabled(can_continue)

    # -- what the person does ----------------------------------------------------------
    # Each action is an Op (app/ui/ops.py): the work awaits the view-model, the handlers run
    # on the UI thread, and the finally_ step frees the controls whatever happened.
    def _send(self) -> None:
        text = self.composer.toPlainText()
        if self._sending or self.vm.busy or not text.strip():
            return
        if self.meter.refusal and self.meter_control.settled:  # the meter says why
            return
        if self.meter_control.unsure(text):  # e.g. a paste a moment ago: sent once the meter says it fits
            self.meter_control.measure_now(then=self._send)
            return
        self._sending = True
        self._sync_controls()
        editing = self.message_commands.editing
        shown = self.vm.current
        key = shown.conversation_id  # its draft's, should the person move on before it is sent
        (self.ops.op("sending", lambda: self.vm.send(text) if editing is None else self.vm.edit(editing, text))
         .success(lambda _: self._sent(shown, key, text))
         .failure(lambda e: self._turn_failed("Could not send", e))  # the text stays in the composer
         .finally_(self._turn_started)
         .run())

    def _sent(self, vm: ConversationViewModel, key: int | None, text: str) -> None:
        self.message_commands.sent()
        self.drafts.sent(vm, key, text)
        if self.vm.model_status[0] != ModelState.ERROR:
            self.banner.hide()

    def _turn_failed(self, doing: str, error: BaseException) -> None:
        """The store refused, a provider is gone, the engine died: say so; nothing changes."""
        if isinstance(error, HearthError):
            self._route_problem = self._route_problem or isinstance(error, ProviderError)
            self.show_problem(error.message)
        else:
            self.show_problem(f"{doing}: {describe(error)}")

    def _turn_started(self) -> None:
        self._sending = False
        self._sync_controls()

    # For MessageCommands (app/ui/windows/message_commands.py), which runs the message actions.
    def start_turn_op(self, what: str, work: Callable[[], Awaitable[None]]) -> None:
        """Start an answer (regenerate) as Send does: controls held until it has started."""
        if self._sending or self.vm.busy:
            self.show_problem("One answer at a time: wait for the current one to finish, or press Stop.")
            return
        self._sending = True
        self._sync_controls()
        (self.ops.op(what, work)
         .failure(lambda e: self._turn_failed(f"Could not start {what}", e))
         .finally_(self._turn_started)
         .run())

    def regenerate_last(self) -> None:
        """A new answer in place of the last one (the old one stays as a branch)."""
        if self.vm.current.messages:
            self.start_turn_op("regenerating", lambda: self.vm.regenerate(None))

    def edit_last(self) -> None:
        """Put your last message in the composer to edit and resend it."""
        self.message_commands.edit_last()

    def toggle_chat_settings(self) -> None:
        """Ctrl+Shift+S: show or hide the chat's settings panel."""
        self.chat_settings.toggle()

    def report(self, doing: str, error: BaseException) -> None:
        self._turn_failed(doing, error)

    def sync_controls(self) -> None:
        self._sync_controls()

    def continue_answer(self) -> None:
        self._continue()

    def _continue(self) -> None:
        shown = self._shown
        if self._sending or self.vm.busy or shown is None or not shown.can_continue:
            return
        self._sending = True
        self._sync_controls()
        (self.ops.op("continuing", shown.continue_last)
         .failure(lambda e: self._turn_failed("Could not continue", e))
         .finally_(self._turn_started)
         .run())

    def _choose_route(self, provider: str | None, model: str) -> None:
        vm = self._shown
        if vm is None:
            return

        def chosen(_: None) -> None:
            if self._route_problem:  # "no longer configured": the person just chose another
                self._route_problem = False
                self.banner.hide()

        def shown_again() -> None:  # on failure the picker goes back to the saved route
            if vm is self._shown:
                self._show_route(vm.route)

        (self.ops.op("saving the conversation's provider", lambda: vm.set_route(provider, model or None))
         .success(chosen)
         .failure(lambda e: self.show_problem(f"Could not save this conversation's provider: {describe(e)}"))
         .finally_(shown_again)
         .run())

    def _backup(self) -> None:
        """Ask where, without a nested event loop (open(), not exec()): an answer may be
        streaming meanwhile, and a modal loop inside a coroutine breaks qasync."""
        suggested = f"hearth-backup-{time.strftime('%Y%m%d-%H%M')}.db"
        dialog = QFileDialog(self, "Back up conversations", str(Path.home() / suggested), "Hearth database (*.db)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("db")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.backup_to(Path(path)))
        self.backup_dialog = dialog
        dialog.open()

    def backup_to(self, dest: Path) -> asyncio.Task[None]:
        return (self.ops.op("backing up", lambda: self.vm.backup(dest))
                .failure(lambda e: self.show_problem(f"Backup failed: {describe(e)}"))
                .disabling(self.backup_action)
                .run())

    def _open(self, conversation_id: int) -> None:
        (self.ops.op(f"opening conversation {conversation_id}", lambda: self.vm.open_conversation(conversation_id))
         .failure(lambda e: self.show_problem(f"Could not open that conversation: {describe(e)}"))
         .run())

    def _rename(self, conversation_id: int, title: str) -> None:
        (self.ops.op("renaming a conversation", lambda: self.vm.rename_conversation(conversation_id, title))
         .failure(lambda e: self.show_problem(f"Could not rename it: {describe(e)}"))
         .run())

    def _new_chat(self) -> None:
        self.vm.new_chat()
        self.composer.setFocus()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.message_commands.editing is not None:
            event.accept()
            self.message_commands.cancel_edit()
            return
        if event.key() == Qt.Key.Key_Escape and self.vm.busy:
            event.accept()
            self.vm.stop()
            return
        super().keyPressEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        event.accept()
        self.closed.emit()
