"""Before Qt loads its X11 plugin: are the system libraries that plugin needs on this machine?

Owns: the check and the message. Qt's xcb plugin links to a dozen X libraries that bare
desktops (Debian 12 above all) may lack: libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1...
Without them Qt prints "Could not load the Qt platform plugin" and aborts the process (exit
134), which says nothing a person can act on. Each library is opened here first (dlopen, the
same loader Qt uses), and the missing ones are named with the packages that hold them. The
installer bundle carries these libraries; a source install takes them from the system.
Must not: import Qt widgets or create a QApplication (this runs before both).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = [
    "X11_LIBRARIES",
    "missing_libraries_message",
    "missing_x11_libraries",
    "plugin_problem",
    "uses_xcb",
    "x11_problem",
]

# What Qt 6's xcb plugin (libqxcb.so and libQt6XcbQpa.so.6) and QtGui need beyond libc and Qt
# itself (`readelf -d` on them), and the Debian/Ubuntu package of each.
X11_LIBRARIES: dict[str, str] = {
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libfontconfig.so.1": "libfontconfig1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libGL.so.1": "libgl1",
    "libEGL.so.1": "libegl1",
}


def uses_xcb(env: Mapping[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will load its X11 (xcb) plugin: Linux or BSD, and QT_QPA_PLATFORM xcb, or
    unset with an X display and no Wayland session (Qt 6 prefers Wayland there)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform.startswith(("win", "cygwin", "darwin")):
        return False
    chosen = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if chosen:
        return chosen == "xcb"
    wayland = bool(env.get("WAYLAND_DISPLAY")) and env.get("XDG_SESSION_TYPE", "").lower() == "wayland"
    return bool(env.get("DISPLAY")) and not wayland


def _loads(name: str) -> bool:
    # In the installer's bundle the libraries lie beside Hearth (PyInstaller's folder), where
    # the loader's own search may not look.
    bundled = Path(getattr(sys, "_MEIPASS", "")) / name if getattr(sys, "frozen", False) else None
    for candidate in ([str(bundled)] if bundled is not None and bundled.is_file() else []) + [name]:
        try:
            ctypes.CDLL(candidate)
        except OSError:
            continue
        return True
    return False


def missing_x11_libraries(loads: Callable[[str], bool] = _loads) -> list[str]:
    """The libraries of X11_LIBRARIES that cannot be loaded, in the table's order."""
    return [name for name in X11_LIBRARIES if not loads(name)]


def missing_libraries_message(missing: list[str]) -> str:
    packages = " ".join(X11_LIBRARIES[name] for name in missing)
    return (
        f"hearth: the window cannot open: Qt's X11 support needs system libraries that are missing: "
        f"{', '.join(missing)}.\n"
        f"  - On Debian or Ubuntu, install them:   sudo apt install {packages}\n"
        f"  - On other systems, install the packages that provide {', '.join(missing)}\n"
        "  - Or use Hearth's installer (its bundle carries them),\n"
        '    or ask from the terminal: hearth ask "PROMPT"\n'
    )


def plugin_problem() -> str | None:
    """The loader's own words when Qt's xcb plugin itself cannot be loaded (a library this table
    does not know of is missing), else None. Loading it here is what Qt would do next anyway."""
    from PySide6.QtCore import QLibraryInfo  # QtCore only: no QApplication, no plugin loaded yet

    path = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms" / "libqxcb.so"
    if not path.is_file():
        return None  # a Qt built without it says so itself
    try:
        ctypes.CDLL(str(path))
    except OSError as e:
        return (
            f"hearth: the window cannot open: Qt's X11 plugin cannot be loaded ({e}). Install the package "
            "that provides the library it names, or use Hearth's installer, which carries it.\n"
        )
    return None


def x11_problem(env: Mapping[str, str] | None = None) -> str | None:
    """What to tell a person when the window's X11 support cannot load, or None when it can
    (or when Qt will not use X11 at all)."""
    if not uses_xcb(env):
        return None
    missing = missing_x11_libraries()
    return missing_libraries_message(missing) if missing else plugin_problem()
