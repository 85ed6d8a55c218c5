"""The window helpers' narrow interfaces, read from the source (tests/project/test_layers.py's way).

The helpers beside MainWindow in app/ui/windows/ get what they use (widgets, view-models,
callables, a small Protocol) from the window's wiring: none imports MainWindow (not even for
type checking), so none can reach through the window into its members or into another helper;
and no module there reads or calls another object's `_private` member. A failing test names the
file, the line and what it reaches.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WINDOWS = ROOT / "app" / "ui" / "windows"
MAIN_WINDOW = "app.ui.windows.main_window"


def imports_of(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module or module.name) for every import, also under TYPE_CHECKING or in a function."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to app.ui.windows (the package of every module read here)
                package = ["app", "ui", "windows"][: 4 - node.level]
                base = ".".join([*package, base] if base else package)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def main_window_uses(source: str) -> list[str]:
    """Where a module imports the main window's module or names MainWindow."""
    tree = ast.parse(source)
    found = [
        f"line {line} imports {name}"
        for line, name in imports_of(tree)
        if name == MAIN_WINDOW or name.startswith(MAIN_WINDOW + ".") or name.endswith(".MainWindow")
    ]
    found += [
        f"line {node.lineno} names MainWindow"
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id == "MainWindow"
    ]
    return found


def private_reaches(source: str) -> list[str]:
    """Where a module reads or calls `x._name` on anything but `self` or `cls` (dunders aside)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append(f"line {node.lineno} reaches {ast.unparse(node)}")
    return found


def _helpers() -> list[Path]:
    return sorted(p for p in WINDOWS.glob("*.py") if p.name != "main_window.py")


@pytest.mark.parametrize("path", _helpers(), ids=lambda p: p.name)
def test_a_helper_does_not_know_the_main_window(path: Path) -> None:
    assert main_window_uses(path.read_text(encoding="utf-8")) == [], (
        f"{path.name}: a window helper gets what it uses from the window's wiring, not the window"
    )


@pytest.mark.parametrize("path", sorted(WINDOWS.glob("*.py")), ids=lambda p: p.name)
def test_no_window_module_reaches_into_another_objects_private_members(path: Path) -> None:
    assert private_reaches(path.read_text(encoding="utf-8")) == [], f"{path.name}: make it public, or pass a callable"


def test_the_checks_see_what_they_must_refuse() -> None:
    """Guards the guards: the shapes the helpers had before they were narrowed are caught."""
    old = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from app.ui.windows.main_window import MainWindow\n"
        "class ListActions:\n"
        "    def __init__(self, window: MainWindow) -> None:\n"
        "        self.window = window\n"
        "    def restored(self, row):\n"
        "        self.window._open(row.id)\n"
    )
    assert main_window_uses(old) == [
        "line 3 imports app.ui.windows.main_window",
        "line 3 imports app.ui.windows.main_window.MainWindow",
        "line 5 names MainWindow",
    ]
    assert private_reaches(old) == ["line 8 reaches self.window._open"]
    assert main_window_uses("from . import main_window\n") == ["line 1 imports app.ui.windows.main_window"]
    assert private_reaches("self._timer.start()\ncls._made\nx.__class__\n") == []
