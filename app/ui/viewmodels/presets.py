"""The chat presets as the window sees them: the list, the default, and changes to them.

Owns a PresetsFile (app.core.presets) and the Presets last read or written. Changes run off
the UI thread (the file is fsynced) and report the new list through `changed`. Must not
touch widgets, or a conversation's settings (ConversationViewModel.set_chat_settings does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from app.core.chat_settings import ChatSettings
from app.core.errors import InputError
from app.core.presets import Presets, PresetsFile

__all__ = ["PresetsViewModel"]


class PresetsViewModel(QObject):
    changed = Signal(object)  # Presets: after a preset was saved or deleted, or the default changed

    def __init__(self, presets_file: PresetsFile | None, parent: QObject | None = None) -> None:
        """`presets_file` None: the built-in presets only (tests of the chat alone)."""
        super().__init__(parent)
        self._file = presets_file
        # Read once at start-up, like settings.json: a small local file.
        self._presets = presets_file.load() if presets_file is not None else Presets()
        self.warning: str | None = presets_file.warning if presets_file is not None else None

    @property
    def presets(self) -> Presets:
        return self._presets

    def default_settings(self) -> ChatSettings:
        """What a new chat starts from."""
        return self._presets.default

    async def save_preset(self, name: str, settings: ChatSettings) -> str:
        """Save (or replace) a preset of one's own; returns its name as saved. InputError for
        a bad name or bad settings, OSError when the file cannot be written."""
        presets = await self._change(lambda f: f.save_preset(name, settings))
        found = presets.find(name)
        return found.name if found is not None else name

    async def set_default(self, name: str) -> None:
        await self._change(lambda f: f.set_default(name))

    async def delete_preset(self, name: str) -> None:
        await self._change(lambda f: f.delete_preset(name))

    async def _change(self, change: Callable[[PresetsFile], Presets]) -> Presets:
        if self._file is None:
            raise InputError("bad_input", "Presets cannot be saved in this window (it has no data folder).")
        presets_file = self._file
        presets: Presets = await asyncio.to_thread(change, presets_file)
        self.warning = presets_file.warning
        self._presets = presets
        self.changed.emit(presets)
        return presets
