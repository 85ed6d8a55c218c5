"""The layers' import contracts, read from the source (every import, also those inside functions).

    app.main  ->  app.ui      ->  app.core  ->  store  ->  engine
              ->  app.cli     ->  app.core
              ->  app.server  ->  app.core

Only app.ui imports Qt. A failing test names the file, the line and the rule it breaks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
QT = ("PySide6", "shiboken6", "qasync", "pytestqt")


@dataclass(frozen=True)
class Contract:
    layer: str  # a package, dotted
    forbidden: tuple[str, ...]  # packages it must never import
    why: str


CONTRACTS = [
    Contract("engine", ("app", "store", *QT), "the engine runs in its own process and knows nothing above it"),
    Contract("store", ("app", *QT), "the store may use engine's public types, nothing above"),
    Contract("app.core", ("app.ui", "app.cli", "app.main", "app.server", *QT), "the core is Qt-free and shared"),
    Contract(
        "app.cli", ("app.ui", "app.main", "app.server", *QT), "the CLI uses the core; app.main hands it the window"
    ),
    Contract("app.server", ("app.ui", "app.cli", "app.main", *QT), "the HTTP server uses the core only"),
    Contract("app.ui", ("app.cli", "app.main", "app.server"), "the window uses the core, never the terminal commands"),
]


def imported_modules(source: str, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in `source`, the file of `module`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing module's package
                parts = module.split(".")[: -node.level]
                base = ".".join([*parts, base] if base else parts)
            # `from app import ui` imports app.ui: count each name as a possible submodule too
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def violations(source: str, module: str) -> list[str]:
    broken: dict[tuple[int, str], str] = {}  # one per line and rule
    for contract in CONTRACTS:
        if module != contract.layer and not module.startswith(contract.layer + "."):
            continue
        for line, name in sorted(imported_modules(source, module), key=lambda found: len(found[1])):
            for bad in contract.forbidden:
                if (name == bad or name.startswith(bad + ".")) and (line, bad) not in broken:
                    broken[line, bad] = (
                        f"{module} line {line} imports {name}: {contract.layer} must not import {bad} ({contract.why})"
                    )
    return sorted(broken.values())


def _modules() -> list[tuple[str, Path]]:
    out = []
    for top in ("engine", "store", "app"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out.append((".".join(parts), path))
    return out


MODULES = _modules()


def test_every_module_sits_in_a_layer() -> None:
    """A new folder under app/ must be given a contract (or be app.main / app.__main__)."""
    layers = {c.layer for c in CONTRACTS} | {"app", "app.main", "app.__main__"}
    loose = [
        m
        for m, _ in MODULES
        if not any(m == layer or m.startswith(layer + ".") for layer in layers - {"app"})
        and m not in {"app", "app.main", "app.__main__"}
    ]
    assert loose == [], f"modules outside every layer (add them to CONTRACTS): {loose}"


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_layer_imports_only_what_it_may(module: str, path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8"), module) == []


@pytest.mark.slow
def test_only_the_ui_imports_qt() -> None:
    qt_users = sorted(
        {
            m
            for m, path in MODULES
            for _, name in imported_modules(path.read_text(encoding="utf-8"), m)
            if name.split(".")[0] in QT
        }
    )
    assert qt_users and all(m.startswith("app.ui") for m in qt_users), qt_users


@pytest.mark.parametrize(
    ("source", "module", "rule"),
    [
        ("from PySide6.QtCore import QObject\n", "app.core.chat_service", "app.core must not import PySide6"),
        ("def f():\n    from app.ui.launch import run_window\n", "app.cli.main", "app.cli must not import app.ui"),
        ("from app import ui\n", "app.core.paths", "app.core must not import app.ui"),
        ("from ..ui import widgets\n", "app.core.paths", "app.core must not import app.ui"),
        ("import store.writer\n", "engine.client", "engine must not import store"),
        ("from app.core.paths import db_path\n", "store.db", "store must not import app"),
        ("from app.ui.widgets import Composer\n", "app.server.routes", "app.server must not import app.ui"),
    ],
    ids=[
        "qt-in-core",
        "lazy-ui-in-cli",
        "from-app-import-ui",
        "relative-import",
        "store-in-engine",
        "app-in-store",
        "ui-in-server",
    ],
)
def test_a_forbidden_import_is_caught(source: str, module: str, rule: str) -> None:
    """The checker itself: each of these would have slipped past a test that cannot fail."""
    found = violations(source, module)
    assert len(found) == 1 and rule in found[0], found


def test_allowed_imports_pass() -> None:
    source = "from app.core.chat_service import ChatService\nfrom store import Store\nfrom engine.events import Final\n"
    assert violations(source, "app.ui.windows.main_window") == []
    assert violations(source.replace("from app.core.chat_service import ChatService\n", ""), "app.core.paths") == []


def test_the_hearth_command_loads_no_heavy_library_before_a_command_needs_it() -> None:
    """Every `hearth` run imports app.main: the store (SQLAlchemy), the HTTP clients, Qt and
    llama.cpp load when a command uses them, so `hearth --help` and `hearth list` start fast."""
    import subprocess
    import sys

    heavy = ("sqlalchemy", "sqlmodel", "httpx", "httpx2", "PySide6", "llama_cpp", "huggingface_hub")
    probe = f"import sys, app.main; print([m for m in {heavy!r} if m in sys.modules])"
    r = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
