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
def test_mypy_is_clean() -> None:
    # One run (half the time of a strict run and a plain one, which checked engine/ and store/ twice):
    # pyproject.toml gives engine/, store/ and app/core/ every flag that --strict sets.
    result = _run("mypy", "app", "engine", "store", "tests/ui_fakes.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_engine_store_and_core_are_checked_as_strict_checks_them() -> None:
    from mypy.main import process_options
    from mypy.options import Options

    config = ["--config-file", str(ROOT / "pyproject.toml"), "-c", "pass"]
    _, strict = process_options(["--strict", *config])
    _, configured = process_options(config)
    default = Options()
    names = [n for n in dir(default) if not n.startswith("_") and not callable(getattr(default, n))]
    what_strict_sets = {n: getattr(strict, n) for n in names if getattr(strict, n) != getattr(default, n)}
    assert len(what_strict_sets) >= 11, what_strict_sets  # --strict's flags, as this mypy defines them
    for module in ("engine.local", "store.store", "app.core.chat_service", "engine"):
        checked = configured.clone_for_module(module)
        differs = {n: getattr(checked, n) for n, v in what_strict_sets.items() if getattr(checked, n) != v}
        assert not differs, (module, differs)
    assert configured.clone_for_module("app.ui.launch").disallow_untyped_defs is False  # the rest: plain


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted() -> None:
    """One layout for all the code (`ruff format`), so a diff shows what changed, not whose
    editor saved it: run `ruff format .` before committing."""
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr
