"""The search panel's view-model: what the person typed, the hits for it, and what to say.

Owns the debounce (a query runs once typing pauses for DEBOUNCE_MS) and the ordering of
answers: each query gets a number, and an answer is shown only if no newer query has been
answered already, so a slow early query never replaces what a later one found. The search
itself is an async function (Store.search, on the store's reader threads).
Must not: touch widgets, open conversations (the window does, with the hit it is given),
or block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.errors import describe
from engine.errors import HearthError
from store.search import SearchHit

__all__ = ["DEBOUNCE_MS", "SearchViewModel"]

log = logging.getLogger("hearth.ui")

DEBOUNCE_MS = 150
LIMIT = 50

SearchFn = Callable[[str], Awaitable[list[SearchHit]]]


class SearchViewModel(QObject):
    """Hits for the latest query that has been answered; `status` says what they mean."""

    results_changed = Signal()  # `hits`, `query` and `status` changed together

    def __init__(self, search: SearchFn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._search = search
        self._typed = ""
        self._issued = 0  # the number of the newest query sent
        self._shown = 0  # the number of the query whose answer is shown
        self._hits: list[SearchHit] = []
        self._query = ""  # the text whose hits are shown
        self._status = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(lambda: self.search_now(self._typed))

    @property
    def hits(self) -> list[SearchHit]:
        return list(self._hits)

    @property
    def query(self) -> str:
        return self._query

    @property
    def status(self) -> str:
        """ "" while there are hits or nothing was typed; "No matches", or why the search failed."""
        return self._status

    @property
    def pending(self) -> bool:
        """A query is waiting for typing to pause or for its answer."""
        return self._timer.isActive() or self._issued != self._shown

    def set_text(self, text: str) -> None:
        """The person typed: search once they pause. Clearing the field clears at once."""
        self._typed = text
        if not text.strip():
            self._timer.stop()
            self._issued += 1
            self._show(self._issued, text, [], "")
            return
        self._timer.start()

    def search_now(self, text: str) -> asyncio.Task[None]:
        """Send the query now (Enter before the pause, tests); returns the task answering it."""
        self._timer.stop()
        self._issued += 1
        task = asyncio.ensure_future(self._run(self._issued, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _run(self, number: int, text: str) -> None:
        try:
            hits = await self._search(text)
        except asyncio.CancelledError:
            raise
        except HearthError as e:  # e.g. StoreError: the database cannot be read
            self._show(number, text, [], e.message)
        except Exception as e:  # a bug: say so, keep the panel usable
            log.exception("search failed")
            self._show(number, text, [], f"Search failed: {describe(e)}")
        else:
            self._show(number, text, hits, "" if hits else "No matches")

    def _show(self, number: int, text: str, hits: list[SearchHit], status: str) -> None:
        if number <= self._shown:
            return  # a newer query was answered first: this answer is stale
        self._shown = number
        self._query, self._hits, self._status = text, hits, status
        self.results_changed.emit()
