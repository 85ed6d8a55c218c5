"""A worker that dies mid-run ends the run with the test it died in named (tests/crash_scheduling.py).

With xdist's own file scheduling this run never ends: the dead worker's six finished files come
back as empty work units and the replacement waits for work that never comes (CI hit it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

_TESTS = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """This process's environment without pytest's own (PYTEST_ADDOPTS, an xdist worker's id):
    the run below is a session of its own."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, "PYTHONPATH": str(_TESTS)}


def _run(folder: Path, *plugin: str) -> subprocess.CompletedProcess[str]:
    for i in range(1, 7):
        (folder / f"test_a{i}.py").write_text("def test_passes():\n    pass\n")
    (folder / "test_b.py").write_text("import os\n\ndef test_dies():\n    os._exit(1)\n\ndef test_after():\n    pass\n")
    (folder / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "1", "--dist", "loadfile", "-p", "no:cacheprovider", *plugin],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_crashed_worker_fails_its_test_once_and_the_run_ends(tmp_path: Path) -> None:
    done = _run(tmp_path, "-p", "crash_scheduling")
    out = done.stdout
    assert done.returncode == 1, out
    assert "1 failed, 7 passed" in out, out  # the rest of its file ran on the replacement
    assert "FAILED test_b.py::test_dies" in out, out
    assert "worker 'gw0' crashed while running 'test_b.py::test_dies'" in out, out


def test_files_are_handed_out_in_the_order_the_suite_ranked_them(tmp_path: Path) -> None:
    """tests/conftest.py ranks the longest files first; xdist would put the files with the most
    tests first instead, whatever they cost."""
    (tmp_path / "test_a_few.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "test_b_many.py").write_text("".join(f"def test_{i}():\n    pass\n" for i in range(5)))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "1", "--dist", "loadfile", "-v", "-p", "crash_scheduling"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout
    ran = [line for line in done.stdout.splitlines() if " PASSED " in line]
    assert "test_a_few.py::test_one" in ran[0], ran
