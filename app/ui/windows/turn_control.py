"""Send, Continue and the answers they start: the window's controls while a turn starts.

Owns the Send, Stop and Continue buttons' state (`sync_controls`: they follow the chat shown,
the message box and the context meter), the one turn starting at a time (`sending`), and
saying why a turn could not start. Each turn is an Op (app/ui/ops.py): the work awaits the
view-model, the handlers run on the UI thread, and the finally_ step frees the controls
whatever happened.
Must not: talk to the store or the engine (the view-models do), or decide what fits in the
context (the meter does: `MeterGate`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject

from app.core.errors import ProviderError, describe
from app.core.model_state import ModelState
from engine.errors import HearthError

if TYPE_CHECKING:
    from PySide6.QtWidgets import QPushButton

    from app.ui.ops import Ops
    from app.ui.viewmodels.conversation import ConversationViewModel
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets import Composer, ErrorBanner
    from app.ui.windows.edit_mode import EditMode

__all__ = ["MeterGate", "TurnControl"]


class MeterGate(Protocol):
    """What Send asks of the context meter (MeterControl)."""

    @property
    def refusal(self) -> str: ...

    @property
    def settled(self) -> bool: ...

    def unsure(self, draft: str) -> bool: ...

    def measure_now(self, then: Callable[[], None]) -> None: ...


class TurnControl(QObject):
    """One window's turns; `shown` is the chat on screen (None before the first is shown)."""

    def __init__(
        self,
        parent: QObject,
        vm: MainViewModel,
        composer: Composer,
        meter: MeterGate,
        edit: EditMode,
        ops: Ops,
        *,
        send: QPushButton,
        stop: QPushButton,
        resume: QPushButton,
        banner: ErrorBanner,
        shown: Callable[[], ConversationViewModel | None],
        draft_sent: Callable[[ConversationViewModel, int | None, str], None],
        show_problem: Callable[[str], None],
        provider_failed: Callable[[], None],
    ) -> None:
        super().__init__(parent)
        self._vm = vm
        self._composer = composer
        self._meter = meter
        self._edit = edit
        self._ops = ops
        self._send_button, self._stop_button, self._continue_button = send, stop, resume
        self._banner = banner
        self._shown = shown
        self._draft_sent = draft_sent
        self._show_problem = show_problem
        self._provider_failed = provider_failed  # the banner now says the chat's provider is gone
        self._sending = False
        vm.busy_changed.connect(self.sync_controls)
        composer.submitted.connect(self.send)
        composer.textChanged.connect(self.sync_controls)
        send.clicked.connect(self.send)
        stop.clicked.connect(vm.stop)
        resume.clicked.connect(self.continue_answer)

    @property
    def sending(self) -> bool:
        """A turn is starting: its controls are held until it has."""
        return self._sending

    def sync_controls(self) -> None:
        busy = self._vm.busy
        refusal = self._meter.refusal  # the context meter measured a turn the engine would refuse
        self._send_button.setEnabled(not busy and not self._sending and self._composer.has_content() and not refusal)
        self._send_button.setToolTip(refusal)
        self._composer.set_submit_enabled(not busy and not self._sending)  # send asks the meter
        self._stop_button.setVisible(busy)
        self._stop_button.setEnabled(busy)
        shown = self._shown()
        can_continue = not busy and not self._sending and shown is not None and shown.can_continue
        self._continue_button.setVisible(can_continue)
        self._continue_button.setEnabled(can_continue)

    def send(self) -> None:
        """What is in the message box: a new message, or the edited one as a new branch."""
        text = self._composer.toPlainText()
        if self._sending or self._vm.busy or not text.strip():
            return
        if self._meter.refusal and self._meter.settled:  # the meter says why
            return
        if self._meter.unsure(text):  # e.g. a paste a moment ago: sent once the meter says it fits
            self._meter.measure_now(then=self.send)
            return
        self._sending = True
        self.sync_controls()
        editing = self._edit.editing
        vm = self._vm
        shown = vm.current
        key = shown.conversation_id  # its draft's, should the person move on before it is sent
        (
            self._ops.op("sending", lambda: vm.send(text) if editing is None else vm.edit(editing, text))
            .success(lambda _: self._sent(shown, key, text))
            .failure(lambda e: self.report("Could not send", e))  # the text stays in the composer
            .finally_(self._started)
            .run()
        )

    def _sent(self, vm: ConversationViewModel, key: int | None, text: str) -> None:
        self._edit.sent()
        self._draft_sent(vm, key, text)
        if self._vm.model_status[0] != ModelState.ERROR:
            self._banner.hide()

    def start(self, what: str, work: Callable[[], Awaitable[None]]) -> None:
        """Start an answer (regenerate) as Send does: controls held until it has started."""
        if self._sending or self._vm.busy:
            self._show_problem("One answer at a time: wait for the current one to finish, or press Stop.")
            return
        self._sending = True
        self.sync_controls()
        (
            self._ops.op(what, work)
            .failure(lambda e: self.report(f"Could not start {what}", e))
            .finally_(self._started)
            .run()
        )

    def continue_answer(self) -> None:
        """Resume the last answer where it stopped."""
        shown = self._shown()
        if self._sending or self._vm.busy or shown is None or not shown.can_continue:
            return
        self._sending = True
        self.sync_controls()
        (
            self._ops.op("continuing", shown.continue_last)
            .failure(lambda e: self.report("Could not continue", e))
            .finally_(self._started)
            .run()
        )

    def report(self, doing: str, error: BaseException) -> None:
        """The store refused, a provider is gone, the engine died: say so; nothing changes."""
        if isinstance(error, HearthError):
            if isinstance(error, ProviderError):
                self._provider_failed()
            self._show_problem(error.message)
        else:
            self._show_problem(f"{doing}: {describe(error)}")

    def _started(self) -> None:
        self._sending = False
        self.sync_controls()
