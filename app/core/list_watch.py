"""Keeping a conversation list in step with what other processes save: a poll, once a second.

A window's own writes update its list directly (each returns the row it changed). Everything
else that saves to the same database does not tell it: `hearth ask`, `hearth import`, another
window, and the window's own server (Settings → Other apps), which saves through the same Store
outside any view-model. So `ListWatch` asks the store every `every_s` whether anything was
saved since it last looked (`Store.data_version`, one PRAGMA on a reader thread: microseconds),
and only when something was, reads what changed (`Store.conversation_changes`: new and active
rows since the last read plus the rows the list holds, see store.changes) and hands that to the
list, which compares and updates only the rows that really differ.

Choices:
- One path for every writer, the window's server included: a direct notice from the server
  would arrive a second sooner, but is a second path to keep right; the poll already sees it.
- The poll goes on while the window is hidden or minimised: it costs microseconds a second,
  and a window shown again is already current, with no catch-up path of its own to get wrong.
- A bulk change (more rows than store.changes reads at once) re-reads the list's first page,
  in this same task, so a poll's answer can never land on top of a newer read.

Owns the loop and where the last read left off. Must not touch Qt or the rows themselves (the
callbacks do), or stop on a failed read: it says so once in the log, and tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Protocol

from store.changes import ListChanges, ListMark
from store.errors import StoreError

__all__ = ["EVERY_S", "ListSource", "ListWatch"]

log = logging.getLogger("hearth.list")

EVERY_S = 1.0


class ListSource(Protocol):
    """What the watch needs of store.Store."""

    async def data_version(self) -> int: ...

    async def conversation_changes(self, mark: ListMark | None, held: Collection[int] = ...) -> ListChanges: ...


class ListWatch:
    """Polls `store` and reports changes to `apply`; `held()` gives the ids the list shows now."""

    def __init__(
        self,
        store: ListSource,
        held: Callable[[], Collection[int]],
        apply: Callable[[ListChanges], None],
        reread: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        self._held = held
        self._apply = apply
        self._reread = reread  # reads the list afresh (and calls `start_here` first)
        self._last: ListChanges | None = None
        self.reads = 0
        """Change reads done (not counting `start_here`): what a poll costs when something changed."""

    async def start_here(self) -> None:
        """Changes from now on are news: call it just before the list is read afresh."""
        self._last = await self._store.conversation_changes(None)

    async def poll(self) -> bool:
        """Look once; True when something had been saved and the changes were read."""
        if self._last is None:
            await self.start_here()
            return False
        last = self._last
        if await self._store.data_version() == last.version:
            return False
        changes = await self._store.conversation_changes(last.mark, self._held())
        self.reads += 1
        if self._last is not last:  # the list was read afresh meanwhile: that read is newer
            return True
        self._last = changes
        if changes.overflow:
            await self._reread()
        else:
            self._apply(changes)
        return True

    async def run(self, every_s: float = EVERY_S) -> None:
        """Poll until cancelled, or until the store is closed."""
        failing = False
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.poll()
            except StoreError as e:
                if e.code == "closed":
                    return
                failing = _failed(failing, e)
            except Exception as e:  # noqa: BLE001 - a failed look must not end the watch
                failing = _failed(failing, e)
            else:
                if failing:
                    log.info("reading changes to the conversation list works again")
                failing = False


def _failed(already: bool, error: BaseException) -> bool:
    if not already:  # once per run of failures, not once a second
        log.warning("could not read changes to the conversation list (will retry): %r", error)
    return True
