"""Qt plumbing shared by the window and its entry point: display check, event loop, excepthook.

Owns: deciding whether a Qt window can open at all, building the qasync event loop, and
routing uncaught exceptions (qasync sends task exceptions to `sys.excepthook`) to the log
and to a callback that shows them in the status line.
Must not: create widgets, touch the engine or the store, or exit the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtWidgets import QApplication
from qasync import QEventLoop

from app.core.errors import describe

__all__ = [
    "NO_DISPLAY_MESSAGE",
    "display_available",
    "ensure_application",
    "install_excepthook",
    "new_event_loop",
]

log = logging.getLogger("hearth.ui")

NO_DISPLAY_MESSAGE = """\
hearth: no display found, so the window cannot open (DISPLAY and WAYLAND_DISPLAY are unset).
  - Ask from the terminal instead:   hearth ask "PROMPT"
  - Or run the window off-screen:    QT_QPA_PLATFORM=offscreen hearth
  - Or in a virtual X server:        xvfb-run hearth
"""

ExceptHook = Callable[[type[BaseException], BaseException, TracebackType | None], Any]


def display_available(env: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """False only where Qt would abort for lack of a display: Linux/BSD with no X11 or
    Wayland display and no explicit QT_QPA_PLATFORM (offscreen, vnc, ... are the user's call)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "cygwin", "darwin")):
        return True
    return any(env.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"))


def ensure_application(argv: list[str] | None = None) -> QApplication:
    """The process's QApplication, created once with Hearth's names."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
        app.setApplicationName("Hearth")
        app.setOrganizationName("Hearth")
        app.setApplicationDisplayName("Hearth")
        # Matches hearth.desktop, so desktops (Wayland's app id included) show the entry's name and icon.
        app.setDesktopFileName("hearth")
        icon = Path(__file__).with_name("assets") / "hearth.png"
        if icon.is_file():
            app.setWindowIcon(QIcon(str(icon)))
    assert isinstance(app, QApplication)
    return app


def release_clipboard() -> None:
    """Empty the clipboard while Python still runs, where Qt's generic clipboard holds it.

    The offscreen and minimal platforms keep the clipboard's data in a C++ static that is deleted
    after Python has finalized; data made in Python (the transcript's Copy, the access token's) then
    calls into the finished interpreter and the process dies with SIGSEGV on its way out (found as
    a test worker lost at exit). The real platforms (xcb, Wayland, Windows, macOS) hand what was
    copied to the desktop's clipboard instead, so it is left alone there."""
    if QGuiApplication.instance() is not None and QGuiApplication.platformName() in ("offscreen", "minimal"):
        QGuiApplication.clipboard().clear()


def new_event_loop(app: QApplication, report: Callable[[str], None]) -> QEventLoop:
    """A qasync loop on `app` whose unhandled task errors are logged and reported, not fatal."""
    loop = QEventLoop(app)

    def on_error(loop_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, asyncio.CancelledError):
            return
        log.error("unhandled error in the event loop: %s", context.get("message"), exc_info=exc)
        report(describe(exc) if isinstance(exc, BaseException) else str(context.get("message")))

    loop.set_exception_handler(on_error)
    return loop


def install_excepthook(report: Callable[[str], None]) -> Callable[[], None]:
    """Log uncaught exceptions and show a one-line summary through `report` instead of dying.

    Returns a function that restores the previous hook.
    """
    previous: ExceptHook = sys.excepthook

    def hook(etype: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(etype, KeyboardInterrupt):
            previous(etype, value, tb)
            return
        log.error("uncaught exception", exc_info=(etype, value, tb))
        try:
            report(describe(value))
        except Exception:  # the reporter itself failed (widget gone at shutdown): log only
            log.exception("could not show the error in the window")

    sys.excepthook = hook

    def restore() -> None:
        sys.excepthook = previous

    return restore
