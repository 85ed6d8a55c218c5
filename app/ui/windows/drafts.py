"""Drafts: the unsent text of each chat's message box.

Owns which text the message box holds for which chat. Leaving a chat keeps what its box
held; showing a chat puts its own draft back (a new chat has one too), so text typed in one
chat never follows the person into another. An edit in progress (edit_mode) belongs to the
message being edited: leaving the chat cancels it, and the draft it had set aside comes back
first.

Drafts survive a restart: they are kept in the window prefs (`<data dir>/window.ini`, group
"drafts") as the person leaves a chat and when the window closes (it calls `save`), because
a half-written message lost to a closed window is work lost, and the text is the person's
own, on their own disk beside the conversations themselves. Only drafts up to KEEP_CHARS
characters are kept there (window.ini is read whole at every start; a pasted book would slow each one),
at most KEEP_DRAFTS of them, the most recently left; longer ones last until the app quits.
Must not: send anything, or touch the store (a draft is not a message).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSettings

if TYPE_CHECKING:
    from app.ui.viewmodels.conversation import ConversationViewModel
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.widgets import Composer

__all__ = ["GROUP", "KEEP_CHARS", "KEEP_DRAFTS", "Drafts"]

GROUP = "drafts"
KEEP_CHARS = 100_000
KEEP_DRAFTS = 50
_NEW = "new"  # the key of a new chat's draft (it has no id yet)

Key = int | None  # a conversation id; None: the new chat not sent yet


class Drafts(QObject):
    """The window's drafts, one per chat; the shown chat's lives in the message box itself."""

    def __init__(
        self,
        parent: QObject,
        vm: MainViewModel,
        composer: Composer,
        prefs: QSettings | None,
        *,
        cancel_edit: Callable[[], None],
    ) -> None:
        """`cancel_edit`: ends an edit in progress, putting back the draft it set aside."""
        super().__init__(parent)
        self._vm = vm
        self._box = composer
        self._cancel_edit = cancel_edit
        self._prefs = prefs  # None: kept for this run only (tests of the chat alone)
        self._texts: dict[Key, str] = self._read()
        vm.deletions.deleted.connect(lambda cid, _n: self._forget(cid))

    def text(self, conversation_id: Key) -> str:
        """The draft kept for a chat that is not shown ("" if none)."""
        return self._texts.get(conversation_id, "")

    def switch(self, old: ConversationViewModel | None, new: ConversationViewModel) -> None:
        """The window shows `new` instead of `old`: keep the box's text for `old`, show `new`'s."""
        box = self._box
        if old is not None:
            self._cancel_edit()  # puts back the draft the edit set aside
            self._keep(old.conversation_id, box.toPlainText())
        text = self._texts.pop(new.conversation_id, "")
        self._write(new.conversation_id, "")  # it lives in the box now
        if text != box.toPlainText():
            box.setPlainText(text)
            box.moveCursor(box.textCursor().MoveOperation.End)

    def sent(self, vm: ConversationViewModel, key: Key, text: str) -> None:
        """`text`, typed in chat `vm` (then `key`), went out: it is no longer a draft, whether
        it is still in the box or the person moved on while it was being sent."""
        if vm is self._vm.current:
            self._box.clear()
        elif self._texts.get(key) == text:
            self._forget(key)

    def save(self) -> None:
        """The window closes: keep the shown chat's draft with the others."""
        shown = self._vm.current
        self._cancel_edit()
        self._keep(shown.conversation_id, self._box.toPlainText())
        if self._prefs is not None:
            self._prefs.sync()

    # -- kept in memory and in window.ini ------------------------------------------------
    def _keep(self, key: Key, text: str) -> None:
        self._texts.pop(key, None)
        if text.strip():
            self._texts[key] = text  # last: the most recently left
        self._write(key, text if text.strip() else "")
        if self._prefs is not None:
            kept = [k for k, t in self._texts.items() if len(t) <= KEEP_CHARS]
            for stale in kept[:-KEEP_DRAFTS]:
                self._prefs.remove(f"{GROUP}/{_name(stale)}")

    def _forget(self, conversation_id: Key) -> None:
        """Sent, or the chat is deleted for good: the draft goes."""
        self._texts.pop(conversation_id, None)
        self._write(conversation_id, "")

    def _write(self, key: Key, text: str) -> None:
        if self._prefs is None:
            return
        name = f"{GROUP}/{_name(key)}"
        if text and len(text) <= KEEP_CHARS:
            self._prefs.setValue(name, text)
        elif self._prefs.contains(name):
            self._prefs.remove(name)

    def _read(self) -> dict[Key, str]:
        """What the last run left; a hand-edited key or value is skipped, never a failed start."""
        if self._prefs is None:
            return {}
        texts: dict[Key, str] = {}
        self._prefs.beginGroup(GROUP)
        try:
            for name in self._prefs.childKeys():
                value = self._prefs.value(name)
                if (name == _NEW or name.isdigit()) and isinstance(value, str) and value.strip():
                    texts[None if name == _NEW else int(name)] = value
        finally:
            self._prefs.endGroup()
        return texts


def _name(key: Key) -> str:
    return _NEW if key is None else str(key)
