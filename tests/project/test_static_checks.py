"""The static checks CI runs with the tests: mypy (strict on engine/, store/ and app/core/,
plain on the rest of app/ and the UI test doubles, which it checks against the Protocols the
view-models need), ruff's wider rule set (complexity, blind excepts, bugbear, ...) and ruff's formatter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("mypy", "--strict", "engine", "store", "app/core"),
        ("mypy", "app", "tests/ui_fakes.py"),
    ],
    ids=["strict-engine-store-core", "app-and-ui-fakes"],
)
def test_mypy_is_clean(args: tuple[str, ...]) -> None:
    result = _run(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted() -> None:
    """One layout for all the code (`ruff format`), so a diff shows what changed, not whose
    editor saved it: run `ruff format .` before committing."""
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
