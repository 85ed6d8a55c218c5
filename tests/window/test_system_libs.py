"""A machine without the X libraries Qt's X11 plugin needs: `hearth` names them and the
packages to install, and exits 2, instead of Qt's raw "Could not load the Qt platform plugin"
and an abort (exit 134). Seen on Debian 12 without libxcb-cursor0, libxcb-icccm4 and
libxcb-keysyms1, on the source install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.ui.system_libs import X11_LIBRARIES, missing_x11_libraries, uses_xcb, x11_problem


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        pytest.param({"DISPLAY": ":0"}, "linux", True, id="x11"),
        pytest.param({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, "linux", False, id="offscreen"),
        pytest.param({"QT_QPA_PLATFORM": "xcb"}, "linux", True, id="xcb-asked"),
        pytest.param({"QT_QPA_PLATFORM": "xcb:foo=1"}, "linux", True, id="xcb-with-options"),
        pytest.param(
            {"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"},
            "linux",
            False,
            id="wayland-session",
        ),
        pytest.param({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux", True, id="x11-session-with-wayland"),
        pytest.param({}, "linux", False, id="nothing"),
        pytest.param({"DISPLAY": ":0"}, "darwin", False, id="macos"),
        pytest.param({"DISPLAY": ":0"}, "win32", False, id="windows"),
    ],
)
def test_whether_qt_will_load_its_x11_plugin(env: dict[str, str], platform: str, expected: bool) -> None:
    assert uses_xcb(env, platform) is expected


def _broken(tmp_path: Path, *names: str) -> dict[str, str]:
    """An environment in which these libraries cannot load: a file of that name that is not a
    library comes first on the loader's path (so the test does not depend on this machine)."""
    libs = tmp_path / "libs"
    libs.mkdir()
    for name in names:
        (libs / name).write_text("not a library\n")
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    return {**env, "DISPLAY": ":93", "LD_LIBRARY_PATH": str(libs)}


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's X11 plugin is Linux/BSD only")
def test_missing_x_libraries_are_named_with_their_packages_and_exit_2(tmp_path: Path) -> None:
    env = _broken(tmp_path, "libxcb-icccm.so.4", "libxcb-keysyms.so.1")
    data = tmp_path / "data"
    r = subprocess.run(
        [sys.executable, "-m", "app", "--data-dir", str(data)], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2, r.stderr
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in r.stderr
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in r.stderr
    assert "Could not load the Qt platform plugin" not in r.stderr
    assert not (data / "hearth.db").exists()  # it stopped before opening anything


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's X11 plugin is Linux/BSD only")
def test_a_machine_with_the_libraries_gets_no_false_alarm() -> None:
    # CI installs them (packaging/system-deps.sh); a machine without them must be told which.
    missing = missing_x11_libraries()
    problem = x11_problem({"DISPLAY": ":0"})
    if missing:
        assert problem is not None and all(X11_LIBRARIES[m] in problem for m in missing)
    else:
        assert problem is None
