"""The one way a window runs background work: build an Op, then run it.

    self.ops.op("backing up", lambda: self.vm.backup(dest)) \\
        .success(lambda path: ...) \\
        .failure(lambda error: ...) \\
        .disabling(self.backup_action) \\
        .run()

`work` is a coroutine function awaited on the loop. What it calls (a view-model) does its
blocking part in a worker thread (asyncio.to_thread) and must not touch widgets; `success`,
`failure` and `finally_` run on the UI thread once it ends. Failures are shown by default
(`describe`'s words, through the `report` callable the runner was given: the main window's
problem line, a dialog's message strip); a failure handler replaces that. Anything that is
not a HearthError (a bug) is also logged with its traceback, or by type only for `quiet`
runners, whose errors may quote a secret. Work cancelled by the window closing calls
neither handler. The widgets given to `disabling` are disabled while it runs and enabled
again whatever happens, so no button stays grey after a failure.

The Anki `QueryOp`/`CollectionOp` idea, on asyncio instead of a thread pool: Hearth's
store and engine already answer on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from app.core.errors import describe
from engine.errors import HearthError

__all__ = ["Op", "Ops"]

log = logging.getLogger("hearth.ui")

T = TypeVar("T")


class _Enableable(Protocol):
    def setEnabled(self, enabled: bool) -> None: ...


class Ops:
    """A window's running ops: kept alive until they end; failures reported through `report`."""

    def __init__(self, report: Callable[[str], None], *, quiet: bool = False) -> None:
        self._report = report
        self._quiet = quiet
        self._running: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._running)

    def op(self, what: str, work: Callable[[], Awaitable[T]]) -> Op[T]:
        """`what` names the work in the log ("saving the provider")."""
        return Op(self, what, work)

    async def wait(self) -> None:
        """Until every running op has ended (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)


class Op[T]:
    def __init__(self, runner: Ops, what: str, work: Callable[[], Awaitable[T]]) -> None:
        self._runner = runner
        self._what = what
        self._work = work
        self._on_success: Callable[[T], None] | None = None
        self._on_failure: Callable[[BaseException], None] | None = None
        self._on_finally: Callable[[], None] | None = None
        self._disabled: tuple[_Enableable, ...] = ()

    def success(self, fn: Callable[[T], None]) -> Op[T]:
        self._on_success = fn
        return self

    def failure(self, fn: Callable[[BaseException], None]) -> Op[T]:
        """Replaces the default (the runner's report of `describe(error)`)."""
        self._on_failure = fn
        return self

    def finally_(self, fn: Callable[[], None]) -> Op[T]:
        """After success or failure (and after cancellation), on the UI thread."""
        self._on_finally = fn
        return self

    def disabling(self, *widgets: _Enableable) -> Op[T]:
        self._disabled = widgets
        return self

    def run(self) -> asyncio.Task[None]:
        for w in self._disabled:
            w.setEnabled(False)
        task = asyncio.ensure_future(self._run())
        self._runner._running.add(task)
        task.add_done_callback(self._runner._running.discard)
        return task

    async def _run(self) -> None:
        try:
            result = await self._work()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - every failure is reported; bugs also logged
            self._log(error)
            if self._on_failure is not None:
                self._on_failure(error)
            else:
                self._runner._report(describe(error))
        else:
            if self._on_success is not None:
                self._on_success(result)
        finally:
            for w in self._disabled:
                with contextlib.suppress(RuntimeError):  # a widget deleted as the window closed
                    w.setEnabled(True)
            if self._on_finally is not None:
                self._on_finally()

    def _log(self, error: BaseException) -> None:
        if isinstance(error, HearthError):
            log.info("%s failed: %s (%s)", self._what, error.code, type(error).__name__)
        elif self._runner._quiet:
            log.error("%s failed: %s", self._what, type(error).__name__)
        else:
            log.error("%s failed", self._what, exc_info=error)
