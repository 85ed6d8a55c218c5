"""Says so when the chat shown waits for this computer's model.

The local model answers one chat at a time: a chat sent to it while it answers another waits
its turn (chats answered by a remote provider never wait; MainViewModel.waiting_for counts, from
the engine's own word once it came, which also counts answers that `hearth ask`, `hearth serve`
or another window sharing the engine sent first).
While the chat shown waits, the status line says "Waiting for the other answer (1 ahead)", and
so does the note beside its answer in the transcript, until its turn comes. Stop (Esc) takes
it out of the queue before it starts, as it stops an answer that runs.
Must not: decide the order, or stop or send anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from app.ui.widgets.status import waiting_text

if TYPE_CHECKING:
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets import StatusLine, TranscriptView

__all__ = ["AnswerQueue"]


class AnswerQueue(QObject):
    """Made by the window after it connected to `vm.current_changed`, so the chat is drawn first."""

    def __init__(self, parent: QObject, vm: MainViewModel, status: StatusLine, transcript: TranscriptView) -> None:
        super().__init__(parent)
        self._vm = vm
        self._status = status
        self._transcript = transcript
        self._noted = False  # the transcript's live note says "waiting" (ours to clear, not a reading note)
        vm.answering_changed.connect(self.show)
        vm.current_changed.connect(self.show)
        self.show()

    def show(self, *_: object) -> None:
        vm = self._vm.current
        text = waiting_text(self._vm.waiting_for(vm) if vm.streaming else 0)
        self._status.set_waiting(text)
        if text or self._noted:
            self._transcript.set_live_note(text)
        self._noted = bool(text)
