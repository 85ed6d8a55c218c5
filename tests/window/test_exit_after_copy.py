"""A process that copied from the window ends cleanly (exit 0), not with SIGSEGV on its way out.

Offscreen Qt keeps the clipboard's data in a C++ static that is deleted after Python has
finalized; the transcript's Copy hands Qt data made in Python, whose deletion then called into the
finished interpreter. It cost the suite a worker now and then (xdist charged the crash to whatever
test that worker had run last) and would cost any offscreen run of the window the same.
`release_clipboard` (called when the window's loop ends, and after every test by tests/conftest.py)
empties the clipboard while Python still runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    from app.ui.qt_support import ensure_application, release_clipboard
    from app.ui.widgets.transcript import TranscriptView
    from PySide6.QtGui import QGuiApplication, QKeySequence
    from PySide6.QtTest import QTest
    from PySide6.QtCore import Qt

    app = ensure_application()
    view = TranscriptView()
    view.setPlainText("What the person copies.")
    view.show()
    view.selectAll()
    QTest.keyClick(view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)  # the transcript's own Copy
    assert QGuiApplication.clipboard().text() == "What the person copies.", QGuiApplication.clipboard().text()
    if sys.argv[1] == "released":
        release_clipboard()
        assert QGuiApplication.clipboard().text() == ""
    print("ended", flush=True)
    """
)


def _run(mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.mark.slow  # two Python processes that import Qt
def test_a_process_that_copied_and_released_the_clipboard_exits_cleanly() -> None:
    released = _run("released")
    assert released.stdout.strip() == "ended", released.stderr
    assert released.returncode == 0, f"exit {released.returncode}: {released.stderr[-2000:]}"
    # Without the release the same process dies at exit: the test above would pass without
    # checking anything if this Qt no longer crashed (then the release is only tidiness).
    kept = _run("kept")
    assert kept.stdout.strip() == "ended", kept.stderr
    assert kept.returncode in (0, -11), kept.returncode
