"""The main window: conversation list | route picker + transcript + composer, a status
line, and the Models menu that opens the model manager (so does clicking the model name
below) and the Providers window (so does "Providers…" in the route picker).

Owns layout and wiring: it makes the widgets, hands each helper beside it (app.ui.windows)
exactly the widgets, view-models and callables it uses, forwards what the person does to the
MainViewModel and shows what the view-models report. Async handlers are Ops (app/ui/ops.py)
with a failure handler, so a failure never leaves a control disabled.
Must not: hold chat state (the view-models do), talk to the engine or store directly, or
install process-wide hooks (app.ui.launch does that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QMainWindow,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import describe
from app.core.policies import Policy
from app.core.routes import RouteChoice
from app.ui.ops import Ops
from app.ui.viewmodels.conversation import ConversationViewModel
from app.ui.viewmodels.documents import DocumentsViewModel
from app.ui.viewmodels.main import MainViewModel
from app.ui.viewmodels.models import ModelManagerViewModel
from app.ui.viewmodels.presets import PresetsViewModel
from app.ui.viewmodels.providers import ProvidersViewModel
from app.ui.viewmodels.stats import StatsStore
from app.ui.viewmodels.tools import ToolsViewModel
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
from app.ui.widgets.route_picker import policy_text
from app.ui.windows.answer_queue import AnswerQueue
from app.ui.windows.app_dialogs import AppDialogs
from app.ui.windows.chat_documents_side import ChatDocumentsSide
from app.ui.windows.chat_settings_side import ChatSettingsSide
from app.ui.windows.chat_tool_turns import ChatToolTurns
from app.ui.windows.chat_tools_side import ChatToolsSide
from app.ui.windows.documents_window import DocumentsWindow
from app.ui.windows.drafts import Drafts
from app.ui.windows.edit_mode import EditBar, EditMode
from app.ui.windows.escape_key import EscapeKey
from app.ui.windows.exchange_actions import ExchangeActions
from app.ui.windows.list_actions import ListActions
from app.ui.windows.message_commands import MessageCommands
from app.ui.windows.meter_control import MeterControl
from app.ui.windows.model_windows import ModelWindows
from app.ui.windows.search_opener import SearchOpener
from app.ui.windows.serve_control import ServeControl
from app.ui.windows.share_control import ShareControl
from app.ui.windows.stats_opener import StatsOpener
from app.ui.windows.text_zoom import TextZoom
from app.ui.windows.turn_control import TurnControl
from app.ui.windows.window_actions import WindowActions, bind
from app.ui.windows.window_prefs import WindowLayout

__all__ = ["MainWindow"]

log = logging.getLogger("hearth.ui")

_LOCAL_PLACEHOLDER = "Ask anything. The model runs on this computer: nothing you type leaves it."


def _placeholder(provider: str | None, policy: Policy | None) -> str:
    """The empty transcript's hint: where what the person types goes (a policy may send it out)."""
    servers = (
        [r.provider for r in policy.routes if r.provider] if policy is not None else [provider] if provider else []
    )
    if not servers:
        return _LOCAL_PLACEHOLDER
    if policy is None or policy.kind == "deep":
        return f"Ask anything. Answers come from {servers[0]}: what you type here is sent to that server."
    return f"Ask anything. Answers may come from {', '.join(servers)}: what you type here may be sent there."


class MainWindow(QMainWindow):
    closed = Signal()  # the person closed the window; app.ui.launch shuts down after it

    def __init__(
        self,
        vm: MainViewModel,
        parent: QWidget | None = None,
        *,
        models: ModelManagerViewModel | None = None,
        providers: ProvidersViewModel | None = None,
        prefs: QSettings | None = None,
        presets: PresetsViewModel | None = None,
        serving: ServeControl | None = None,
        documents: DocumentsViewModel | None = None,
        sharing: ShareControl | None = None,
        tools: ToolsViewModel | None = None,
        max_tool_steps: Callable[[], int] | None = None,
        stats: StatsStore | None = None,
    ) -> None:
        super().__init__(parent)
        self.vm = vm
        self.serving = serving  # None: the window does not serve other apps (tests of the chat alone)
        self.sharing = sharing  # None: the window never hosts its engine for other Hearth processes
        self.models_vm = models  # None: no model library (tests of the chat alone)
        self.providers_vm = providers  # None: this computer's model only (no remote mode)
        self.documents_vm = documents  # None: no documents (tests of the chat alone)
        self._stats_store = stats  # None: no Statistics window (tests of the chat alone)
        self._shown: ConversationViewModel | None = None
        self._save_problem = False
        self._route_problem = False  # the banner says the conversation's provider is gone
        self.ops = Ops(self.show_problem)
        self.setWindowTitle("Hearth")
        self.resize(1040, 720)
        self._build()
        notice = self.status.show_notice
        if serving is not None:
            serving.changed.connect(lambda _on, text, _problem: notice(text))
        if sharing is not None:
            sharing.notice.connect(notice)
        vm.conversations_changed.connect(
            lambda rows: self.conversations.set_rows(rows, more=self.vm.has_more_conversations)
        )
        # A chat that did not exist appears at once, pointer or not (it is the one the person just
        # started, forked or imported); a known row that a turn moves holds still under the pointer.
        vm.conversation_changed.connect(lambda change: self.conversations.upsert(change.row, by_person=change.created))
        vm.current_changed.connect(self._show_conversation)  # first: the helpers below find the chat drawn
        vm.model_status_changed.connect(self._on_model_status)
        vm.answering_changed.connect(self.conversations.model.set_answering)  # a dot on each chat answering
        vm.notice.connect(notice)
        vm.save_health_changed.connect(self._on_save_health)
        self.conversations.conversation_chosen.connect(self.open_conversation)
        self.conversations.new_chat_requested.connect(self._new_chat)
        self.conversations.rename_requested.connect(self._rename)
        self.edit_mode = EditMode(self.composer, self.edit_bar, self)  # editing a sent message
        self.drafts = Drafts(self, vm, self.composer, prefs, cancel_edit=self.edit_mode.cancel)  # kept in prefs
        self.meter_control = MeterControl(self, vm, self.composer, self.meter, self.edit_mode)  # the context meter
        self.turns = TurnControl(
            self,
            vm,
            self.composer,
            self.meter_control,
            self.edit_mode,
            self.ops,
            send=self.send_button,
            stop=self.stop_button,
            resume=self.continue_button,
            banner=self.banner,
            shown=lambda: self._shown,
            draft_sent=self.drafts.sent,
            show_problem=self.show_problem,
            provider_failed=self._provider_failed,
        )
        self.meter_control.measured.connect(self.turns.sync_controls)
        self.message_commands = MessageCommands(
            self, vm, self.edit_mode, self.turns, self.ops, show_problem=self.show_problem, notice=notice
        )
        self.transcript.action_requested.connect(self.message_commands.run)
        self.transcript.notice.connect(notice)  # "Code copied"
        self.composer.edit_last_requested.connect(self.message_commands.edit_last)
        self.route_picker.route_chosen.connect(self._choose_route)
        self.route_picker.policy_chosen.connect(self._choose_policy)
        self.route_picker.manage_requested.connect(self.model_windows.open_providers)
        if providers is not None:
            providers.rows_changed.connect(self._on_providers)
            # E.g. a broken providers.toml read at start-up, while the Providers window is closed.
            providers.message.connect(self._provider_message)
            self._on_providers()
        self._show_conversation(vm.current)
        self._on_model_status(*vm.model_status)
        self.conversations.set_rows(vm.conversations, more=vm.has_more_conversations)
        # Pages, pins, deletes and their undo; Back up…, Export… and Import…; "Waiting for the other answer".
        self.list_actions = ListActions(
            self,
            self.statusBar(),
            vm,
            self.conversations,
            self.ops,
            show_problem=self.show_problem,
            open_conversation=self.open_conversation,
        )
        self.exchange = ExchangeActions(
            self, self.conversations_menu, vm, self.ops, show_problem=self.show_problem, notice=notice
        )
        self.answer_queue = AnswerQueue(self, vm, self.status, self.transcript)
        self.turns.sync_controls()
        self._keys(prefs)
        # The side panel of per-chat settings; presets None: the built-in ones only.
        outer = self.centralWidget()
        assert isinstance(outer, QSplitter), "the window's centre is list | chat"
        self.chat_settings = ChatSettingsSide(
            self,
            outer,
            vm,
            presets or PresetsViewModel(None, self),
            self.composer,
            prefs,
            self.ops,
            show_problem=self.show_problem,
            notice=notice,
        )
        self.chat_settings.restore()
        if documents is not None:  # its Documents row, and files dropped on the chat
            self.chat_documents = ChatDocumentsSide(
                self,
                self.chat_settings.panel,
                vm,
                documents,
                (self.transcript, self.composer),
                self.ops,
                show_problem=self.show_problem,
                notice=notice,
            )
        # The Tools window (Models → Tools…) and each chat's Tools section; None: no tools (tests of the chat alone).
        self.chat_tools = (
            ChatToolsSide(self, self.chat_settings.panel, vm, tools, self.ops, show_problem=self.show_problem)
            if tools is not None
            else None
        )
        # A message sent in a chat with tools chosen: its tools, the consent dialog, "Always allow".
        self.tool_turns = (
            ChatToolTurns(self, vm, tools, self.chat_tools, max_steps=max_tool_steps)
            if tools is not None and self.chat_tools is not None
            else None
        )
        self.model_windows.menu.addAction(
            "Tools…", lambda: self.chat_tools and self.chat_tools.open_tools()
        ).setEnabled(tools is not None)
        # Measured on the loop's first turn, also where a draft put back above restarted the typing pause.
        self.meter_control.soon()
        self.layout_prefs = WindowLayout(
            self,
            (outer, self.chat_settings.splitter),
            prefs,  # size, place, splitters
            shown=lambda: self.vm.current.conversation_id,
        )
        for save in (self.drafts.save, self.chat_settings.panel.flush, self.layout_prefs.save):
            self.closed.connect(save)  # each chat's draft, an edit still waiting in the panel, the layout
        # The message box has the focus from the first frame, so what is typed at once lands there
        # (ChatSettingsSide moved the chat column into its splitter above, which drops the focus;
        # left to Qt, it went to "+ New chat", and Space pressed it).
        self.composer.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def _keys(self, prefs: QSettings | None) -> None:
        """The window-wide keys (app.ui.shortcuts), what they open, and the View and Help menus."""
        self.zoom = TextZoom(self, (self.transcript, self.composer), prefs)  # kept in prefs (None: not kept)
        self.search = SearchOpener(self, self.vm, self.transcript, self.ops, show_problem=self.show_problem)
        self.dialogs = AppDialogs(
            self, self.zoom, self.serving, prefs, self.sharing
        )  # Settings, Keyboard shortcuts, About
        actions = WindowActions(self)
        actions.add("search", "Search…", self.search.open_search)
        self.stats = StatsOpener(
            self, self.vm, self._stats_store, self.transcript, self.ops, show_problem=self.show_problem
        )
        actions.add(
            "focus_composer",
            "Focus the message box",
            lambda: self.composer.setFocus(Qt.FocusReason.ShortcutFocusReason),
        )
        actions.add("copy_last_answer", "Copy last answer", self.message_commands.copy_last_answer)
        self.escape = EscapeKey(self, actions, self.vm, self.edit_mode)  # Esc: the "stop" action
        actions.add("regenerate_last", "Regenerate last answer", self.message_commands.regenerate_last)
        actions.add("chat_settings", "Chat settings…", self.toggle_chat_settings)
        actions.add("zoom_in", "Zoom in", self.zoom.zoom_in)
        actions.add("zoom_out", "Zoom out", self.zoom.zoom_out)
        actions.add("zoom_reset", "Actual size", self.zoom.reset)
        actions.add("settings", "Settings…", self.dialogs.show_settings).setMenuRole(QAction.MenuRole.PreferencesRole)
        actions.add("shortcuts_help", "Keyboard shortcuts", self.dialogs.show_shortcuts)
        actions.add("quit", "Quit", self.close)
        about = QAction("About Hearth", self)
        about.setObjectName("about")
        about.triggered.connect(self.dialogs.show_about)
        bar = self.menuBar()
        actions.menu(
            bar,
            "&View",
            ["zoom_in", "zoom_out", "zoom_reset", None, "search", self.stats.action, "chat_settings", None, "settings"],
        )
        actions.menu(bar, "&Help", ["shortcuts_help", about])

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
        self.conversations_menu = self.menuBar().addMenu("&Conversations")  # filled by ExchangeActions
        self.status = StatusLine(self)
        self.statusBar().addWidget(self.status, 1)
        self.statusBar().setSizeGripEnabled(False)
        self.model_windows = ModelWindows(
            self,
            self.menuBar(),
            self.models_vm,
            self.providers_vm,
            self.status.model_label,
            shown_provider=self._shown_provider,
        )
        self.documents_window = DocumentsWindow(self, self.model_windows.menu, self.statusBar(), self.documents_vm)

    # -- showing state -----------------------------------------------------------------
    def _show_conversation(self, vm: ConversationViewModel) -> None:
        old = self._shown
        self.drafts.switch(old, vm)
        if old is not None:
            old.reset.disconnect(self._rerender)
            old.message_added.disconnect(self.transcript.append_message)
            old.text_appended.disconnect(self.transcript.append_text)
            old.tool_steps_changed.disconnect(self.transcript.show_tool_steps)
            old.message_finished.disconnect(self.transcript.finish_message)
            old.conversation_id_changed.disconnect(self.conversations.select)
            old.reset.disconnect(self.turns.sync_controls)
            old.reasoning_appended.disconnect(self.transcript.append_reasoning)
            old.reasoning_replaced.disconnect(self.transcript.replace_reasoning)
            old.text_replaced.disconnect(self.transcript.replace_text)
            old.reading.disconnect(self.transcript.set_live_note)
            old.route_changed.disconnect(self._show_route)
        self._shown = vm
        vm.reset.connect(self.turns.sync_controls)  # an opened conversation may end in an unfinished answer
        vm.reset.connect(self._rerender)
        vm.message_added.connect(self.transcript.append_message)
        vm.text_appended.connect(self.transcript.append_text)
        vm.tool_steps_changed.connect(self.transcript.show_tool_steps)
        vm.message_finished.connect(self.transcript.finish_message)
        vm.conversation_id_changed.connect(self.conversations.select)
        vm.reasoning_appended.connect(self.transcript.append_reasoning)
        vm.reasoning_replaced.connect(self.transcript.replace_reasoning)
        vm.text_replaced.connect(self.transcript.replace_text)
        vm.reading.connect(self.transcript.set_live_note)
        vm.route_changed.connect(self._show_route)
        self._show_route(vm.route)
        self._rerender()
        self.turns.sync_controls()
        self.conversations.select(vm.conversation_id)
        self.composer.setFocus()

    def _shown_provider(self) -> str | None:
        return self._shown.route.provider if self._shown is not None else None

    def _rerender(self) -> None:
        if self._shown is not None:
            self.transcript.show_messages(self._shown.messages)

    def _show_route(self, route: RouteChoice) -> None:
        """The picker, the status line and the transcript's hint follow the shown conversation."""
        provider, model = route.provider, route.model
        policy = self._shown.policy if self._shown is not None else None
        self.route_picker.set_route(provider, model, policy)
        text, tooltip = self.providers_vm.route_text(provider, model) if self.providers_vm else ("", "")
        if policy is not None:
            text, tooltip = (
                policy_text(policy),
                "The chat's model policy: each answer says which model answered and why",
            )
        self.status.set_route(text, tooltip)
        self.transcript.setPlaceholderText(_placeholder(provider, policy))

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

    def _provider_failed(self) -> None:
        self._route_problem = True

    def _on_save_health(self, ok: bool, message: str) -> None:
        """Saves failing (disk full, read-only): say so and keep it up until they work again."""
        if not ok:
            self._save_problem = True
            self.show_problem(message)
        elif self._save_problem:
            self._save_problem = False
            self.banner.hide()
            self.status.show_notice("Saving works again: everything is saved.")

    def toggle_chat_settings(self) -> None:
        """Ctrl+Shift+S: show or hide the chat's settings panel."""
        self.chat_settings.toggle()

    def _choose_policy(self, policy: Policy) -> None:
        vm = self._shown
        if vm is None:
            return

        def shown_again() -> None:  # on failure the picker goes back to the saved choice
            if vm is self._shown:
                self._show_route(vm.route)

        (
            self.ops.op("saving the conversation's model policy", lambda: vm.set_choice(policy))
            .failure(lambda e: self.show_problem(f"Could not save this conversation's model policy: {describe(e)}"))
            .finally_(shown_again)
            .run()
        )

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

        (
            self.ops.op("saving the conversation's provider", lambda: vm.set_route(provider, model or None))
            .success(chosen)
            .failure(lambda e: self.show_problem(f"Could not save this conversation's provider: {describe(e)}"))
            .finally_(shown_again)
            .run()
        )

    def open_conversation(self, conversation_id: int) -> None:
        """Open it, or say why it could not be opened."""
        (
            self.ops.op(f"opening conversation {conversation_id}", lambda: self.vm.open_conversation(conversation_id))
            .failure(lambda e: self.show_problem(f"Could not open that conversation: {describe(e)}"))
            .run()
        )

    def _rename(self, conversation_id: int, title: str) -> None:
        (
            self.ops.op("renaming a conversation", lambda: self.vm.rename_conversation(conversation_id, title))
            .failure(lambda e: self.show_problem(f"Could not rename it: {describe(e)}"))
            .run()
        )

    def _new_chat(self) -> None:
        self.vm.new_chat()
        self.composer.setFocus()

    def closeEvent(self, event: QCloseEvent) -> None:
        event.accept()
        self.closed.emit()
