"""Shared fixtures. Every test gets its own data dir (never the user's real one); Qt runs
offscreen; the bundled model is the real one installed at set-up, never a stand-in."""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Every Hearth process a test starts keeps its engine to itself: one test's `hearth ask` must
# never answer through another test's window or server (app.core.engine_share). The tests of
# sharing turn it on for their own processes, each with a share folder of its own.
os.environ["HEARTH_NO_SHARE"] = "1"
# Two test workers share the cores, each often with a model decoding on two threads: llama.cpp's
# OpenMP workers would spin at every barrier while their partner waits for a core. Sleeping
# instead saves ~6% of the suite's CPU (two model-heavy files side by side: 144 CPU-s against
# 154); what the tests check does not depend on it. A test about spinning can set its own.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from app.core.paths import default_model_path

# Fixtures that bring the bundled model (its file, an engine with it loaded, a server on it).
_MODEL_FIXTURES = frozenset({"model_path", "app_factory", "llama_server", "llama_server_keyed", "served"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The markers the fast loop selects on (CONTRIBUTING.md): `model` for a test that uses the
    bundled model (by its fixtures, or marked by hand where a `hearth` process loads it), `qt` for
    one that needs Qt, and `fast` for each that is neither `model`, `slow` nor `bundle`."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _MODEL_FIXTURES and item.get_closest_marker("model") is None:
            item.add_marker(pytest.mark.model)
        if names & {"qtbot", "qapp"}:
            item.add_marker(pytest.mark.qt)
        if not any(item.get_closest_marker(m) for m in ("model", "slow", "bundle")):
            item.add_marker(pytest.mark.fast)
    _longest_files_first(items)


# Seconds per file from a full run (tests/file_durations.py writes it); a file not in it is
# ranked by its markers, at rough seconds per test of each kind on 2 cores.
_DURATIONS = Path(__file__).with_name("file_durations.json")
_COST = {"bundle": 60.0, "slow": 15.0, "model": 3.0}


def _longest_files_first(items: list[pytest.Item]) -> None:
    """Whole files, the longest (by their markers) first, each file's tests in their own order.

    pytest-xdist hands out whole files (`--dist loadfile`, packaging/bootstrap.sh) in this order:
    a file of minutes handed out last keeps one worker busy alone while the other has finished,
    so the long ones go first and the many short ones even out the end."""
    measured = json.loads(_DURATIONS.read_text(encoding="utf-8")) if _DURATIONS.is_file() else {}
    cost: dict[str, float] = {}
    for item in items:
        kind = next((k for k in _COST if item.get_closest_marker(k)), None)
        file = item.nodeid.split("::", 1)[0]
        cost[file] = cost.get(file, 0.0) + (_COST[kind] if kind else 0.05)
    cost = {file: measured.get(file, guess) for file, guess in cost.items()}  # a measured file by its time
    rank = {file: i for i, file in enumerate(sorted(cost, key=lambda f: -cost[f]))}
    items.sort(key=lambda item: rank[item.nodeid.split("::", 1)[0]])  # stable: a file keeps its order


@pytest.fixture(scope="session", autouse=True)
def _frozen_imports() -> None:
    """What collection imported lives for the whole run: out of the collector's way, so the
    collection after each test (below) costs what that test left behind, not 45 ms."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _collect_on_the_main_thread() -> Iterator[None]:
    """Reference cycles are collected here, on the main thread, after each test, and never by
    the automatic collector in whatever thread allocates (a store reader, an engine pipe
    reader): a window or view-model freed there leaves Qt timers pointing at freed memory
    and a segfault a few tests later (app/ui/main_thread_gc.py does the same for the app)."""
    gc.disable()
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def _pointer_out_of_the_way() -> None:
    """Offscreen Qt keeps one pointer position for the whole run: a window shown where an
    earlier test left it gets an Enter event, and the conversation list holds its rows still.
    Each test starts with the pointer off every window (tests that need it move it)."""
    if "PySide6.QtWidgets" in sys.modules:
        from PySide6.QtCore import QPoint
        from PySide6.QtGui import QCursor

        QCursor.setPos(QPoint(-10_000, -10_000))


@pytest.fixture(autouse=True)
def _clipboard_emptied() -> Iterator[None]:
    """What a test copied is dropped after it: offscreen Qt deletes the clipboard's data after
    Python has finalized, and data made in Python (a Copy in the transcript) then segfaulted the
    worker on its way out, a crash xdist charged to whatever test that worker ran last."""
    yield
    if "PySide6.QtWidgets" in sys.modules:
        from app.ui.qt_support import release_clipboard

        release_clipboard()


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HEARTH_DATA_DIR at a fresh folder so no test touches a person's data."""
    d = tmp_path / "hearth-data"
    monkeypatch.setenv("HEARTH_DATA_DIR", str(d))
    return d


@pytest.fixture(scope="session")
def model_path() -> Path:
    path = default_model_path()
    if not path.is_file():
        pytest.fail(f"the bundled model is not installed ({path}); run: bash packaging/bootstrap.sh test")
    return path


@pytest.fixture
def loop(qapp: object) -> Iterator[object]:
    """A running qasync event loop on the test's QApplication: window and view-model tests."""
    from ui_fakes import running_loop

    with running_loop(qapp) as running:  # type: ignore[arg-type]
        yield running


@pytest.fixture
def not_gguf_file(tmp_path: Path) -> Path:
    """A file with a model's name that is really a text file."""
    p = tmp_path / "notes.gguf"
    p.write_text("these are my notes, not a model\n" * 100)
    return p


from cpu_record import pytest_runtest_protocol  # noqa: E402,F401 - HEARTH_TEST_CPU=FILE: each test's CPU seconds
from leftovers import leftover_processes, mark_session  # noqa: E402 - processes that outlive the run

mark_session()  # here, in the controller, before xdist starts a worker: every process after inherits it


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Processes the run started that are still alive at its end (tests/leftovers.py)."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller reports for the whole run
        return
    left = leftover_processes()
    if left:
        terminalreporter.section("processes that outlived the run")
        for line in left:
            terminalreporter.write_line(line)


from crash_scheduling import pytest_xdist_make_scheduler  # noqa: E402,F401 - a worker's crash ends the run, not hangs it
from keychains import memory_keychain, no_keychain  # noqa: E402,F401 - fixtures: keyring backends for tests
from llama_server import llama_server, llama_server_keyed  # noqa: E402,F401 - fixtures for remote-mode tests
from real_app import app_factory  # noqa: E402,F401 - fixture: the real app (store, engine, window) on a data dir
