"""Keeps the context meter current: after every change to what the next prompt would be.

That is: typing (once it stops for a moment), another chat shown, a branch switched, a message
deleted or an answer started or ended (the view-model's reset and finished signals), an edit begun
or ended (the prompt is then the path up to the edited message plus the new text), the chat's
settings (context length, overflow policy, system prompt), its route, and the model. Changes
that arrive together are measured once. Each measurement asks the engine (tokenizing only,
beside any running answer); an answer that arrives after a newer question is dropped. The
meter then says whether the next turn can be sent, and the window's controls follow it.

A draft not measured yet (a paste a moment ago, or text shortened after a refusal) that might not
fit is measured at once when the person sends it, and sent only if it fits (`settled`, `unsure`,
`measure_now`); `measured` tells the window's controls to follow.
Must not: block the UI thread, or touch the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance
from shiboken6 import isValid

from engine.events import Measured

if TYPE_CHECKING:
    from app.ui.viewmodels.conversation import ConversationViewModel
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets import Composer
    from app.ui.widgets.context_meter import ContextMeter
    from app.ui.windows.edit_mode import EditMode

__all__ = ["DEBOUNCE_MS", "MeterControl"]

log = logging.getLogger("hearth.ui")

DEBOUNCE_MS = 300  # typing: measure once it pauses
SLACK_TOKENS = 8  # `unsure`: what a tokenizer may add to a text beyond one token per byte


def _report(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("showing the context meter failed", exc_info=task.exception())


class MeterControl(QObject):
    """Measures for `meter` what the next prompt would be: the chat shown, with the box's text."""

    measured = Signal()  # the meter shows a new measurement (the Send button follows it)

    def __init__(
        self, parent: QObject, vm: MainViewModel, composer: Composer, meter: ContextMeter, edit: EditMode
    ) -> None:
        super().__init__(parent)
        self._main = vm
        self._composer = composer
        self._meter = meter
        self._edit = edit
        self._asked = 0  # the latest question; older answers are dropped
        self._answered = 0  # the question whose answer the meter shows
        self._last: Measured | None = None  # that answer, when it measured something
        self._then: Callable[[], None] | None = None  # run once the latest question is answered
        self._vm: ConversationViewModel | None = None
        self._task: asyncio.Task[None] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.refresh)
        composer.textChanged.connect(lambda: self._timer.start(DEBOUNCE_MS))
        vm.current_changed.connect(self._follow)
        vm.busy_changed.connect(lambda busy: None if busy else self.soon())
        vm.model_status_changed.connect(self.soon)
        edit.editing_changed.connect(self.soon)
        self._follow(vm.current)

    def _follow(self, vm: ConversationViewModel) -> None:
        """Listen to the chat shown (only): what changes its next prompt."""
        old, self._vm = self._vm, vm
        for signal in self._signals(old):
            signal.disconnect(self.soon)
        for signal in self._signals(vm):
            signal.connect(self.soon)
        self.soon()

    @staticmethod
    def _signals(vm: ConversationViewModel | None) -> tuple[SignalInstance, ...]:
        if vm is None:
            return ()
        # reset: a branch switched, a message deleted, a turn started (send, edit, regenerate,
        # Continue) or the chat read again; message_finished: an answer ended.
        return (vm.reset, vm.message_finished, vm.chat_settings_changed, vm.route_changed)

    def soon(self, *_: object) -> None:
        """Measure on the loop's next turn: the changes made together are measured once."""
        self._timer.start(0)

    def refresh(self) -> None:
        self._timer.stop()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a window drawn without an asyncio loop (a probe, a test): nothing to ask with
            return
        self._asked += 1
        self._task = loop.create_task(self._measure(self._asked))  # kept: the loop holds tasks weakly
        self._task.add_done_callback(_report)

    @property
    def refusal(self) -> str:
        """Why the meter says the next turn cannot be sent; "" when it can."""
        return self._meter.refusal

    @property
    def settled(self) -> bool:
        """The meter shows the latest measurement: nothing changed since it was asked for."""
        return not self._timer.isActive() and self._answered == self._asked

    def unsure(self, draft: str) -> bool:
        """The meter has not measured `draft` yet (it changed a moment ago) and it might not fit:
        the last measurement refused the turn, or, by its bytes, the draft could take the rest of
        the context (a token covers at least one byte). False when nothing was measured (a remote
        route, no model): the turn itself then says what is wrong."""
        last = self._last
        if last is None or self.settled:
            return False
        return bool(self._meter.refusal) or (
            last.prompt_tokens + len(draft.encode("utf-8")) + SLACK_TOKENS >= last.n_ctx - 1
        )

    def measure_now(self, then: Callable[[], None]) -> None:
        """Measure at once, then call `then` (e.g. send again, now that the meter knows)."""
        self._then = then
        self.refresh()

    async def _measure(self, asked: int) -> None:
        vm = self._main.current
        policy, model_context = vm.chat_settings.overflow, self._main.model_context
        measured: Measured | None = None
        try:
            measured = await vm.measure(self._composer.toPlainText(), self._edit.editing)
        except Exception:  # the meter then hides and holds nothing back; the turn itself will say what is wrong
            log.exception("measuring the context failed")
        if asked != self._asked or not isValid(self):  # a newer question, or the window closed meanwhile
            return
        self._answered = asked
        self._last = measured if measured is not None and not measured.error and measured.n_ctx else None
        self._meter.show_measure(measured, policy, model_context)
        self.measured.emit()
        then, self._then = self._then, None
        if then is not None:
            then()
