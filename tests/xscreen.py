"""A virtual X display (Xvfb) and a watcher that sees when a window has been painted on it.

Used by the bundle's smoke test and tests/bench/bench_startup.py: the app under test runs as its
own process (a bundle with its own Qt); this watcher, in another process with the test
environment's Qt, grabs the whole screen until something is drawn, and saves the picture.

    python tests/xscreen.py :99 shot.png [--timeout 60]   # prints {"painted_at": unix time}
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def xvfb(display: str = ":97", size: str = "1280x800x24") -> Iterator[str]:
    """Run Xvfb on `display` (a black screen) for the duration of the block."""
    if shutil.which("Xvfb") is None:
        raise FileNotFoundError("Xvfb is not installed (apt-get install xvfb)")
    proc = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", size, "-br", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock = Path("/tmp/.X11-unix") / f"X{display.lstrip(':')}"
    deadline = time.monotonic() + 10
    while not sock.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        if proc.poll() is not None:
            raise RuntimeError(f"Xvfb {display} did not start (exit {proc.returncode})")
        _until_serving(display, proc, deadline)
        yield display
    finally:
        proc.terminate()
        proc.wait(10)


def wait_for_window_manager(display: str, manager: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Return once the window manager on `display` manages windows (it has set the root
    window's _NET_SUPPORTING_WM_CHECK): a window mapped before that gets no frame, and the
    manager moves it when it adds one. Without xprop, waits a second."""
    if shutil.which("xprop") is None:
        time.sleep(1)
        return
    deadline = time.monotonic() + timeout
    env = {**os.environ, "DISPLAY": display}
    while time.monotonic() < deadline and manager.poll() is None:
        probe = subprocess.run(
            ["xprop", "-root", "_NET_SUPPORTING_WM_CHECK"], env=env, capture_output=True, text=True, timeout=10
        )
        if "window id" in probe.stdout:
            return
        time.sleep(0.05)
    raise RuntimeError(f"the window manager on {display} did not start (exit {manager.poll()})")


def _until_serving(display: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Wait until the server accepts clients: its socket appears before it listens, and a client
    started in between (a window manager, on a busy machine) fails to open the display."""
    if shutil.which("xprop") is None:
        return
    env = {**os.environ, "DISPLAY": display}
    while time.monotonic() < deadline and proc.poll() is None:
        if subprocess.run(["xprop", "-root"], env=env, capture_output=True, timeout=10).returncode == 0:
            return
        time.sleep(0.05)


def start_watcher(display: str, shot: Path, timeout: float = 60) -> subprocess.Popen[str]:
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    return subprocess.Popen(
        [sys.executable, __file__, display, str(shot), "--timeout", str(timeout)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def watch(shot: Path, timeout: float) -> dict[str, float]:
    """Grab the screen until a window covers part of it; then once more, settled, into `shot`."""
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication([sys.argv[0], "-platform", "xcb"])
    screen = app.primaryScreen()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        img = screen.grabWindow(0).toImage().scaled(160, 100)
        lit = sum(1 for y in range(img.height()) for x in range(img.width()) if img.pixelColor(x, y).value() > 40)
        if lit > img.width() * img.height() // 10:
            painted_at = time.time()
            time.sleep(1.5)  # let the first answer's placeholder and the model status settle
            screen.grabWindow(0).save(str(shot))
            return {"painted_at": painted_at}
        time.sleep(0.02)
    screen.grabWindow(0).save(str(shot))
    return {"painted_at": 0.0}


if __name__ == "__main__":
    timeout = float(sys.argv[sys.argv.index("--timeout") + 1]) if "--timeout" in sys.argv else 60.0
    print(json.dumps(watch(Path(sys.argv[2]), timeout)))
