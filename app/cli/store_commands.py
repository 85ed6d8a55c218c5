"""The commands that need the store or a settings file only (no model, no catalog), run without
the rest of the CLI: app/cli/main.py runs them as soon as app/cli/parser.py has read the line (by
the command's parser alone), before it imports the model catalog and the settings a model needs.
Must not: import a command's module before its name is seen on the command line.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

__all__ = ["command_names", "runner_for"]


class _Command(NamedTuple):
    module: str  # where its runner lives
    run: str  # run_X(args, data_dir) -> exit code


_CONVERSATIONS = _Command("app.cli.conversations", "run_conversations")
_EXCHANGE = _Command("app.cli.exchange", "run_exchange")
# The names of the conversation and exchange commands, as their modules' COMMANDS list them
# (tests/cli/test_cli_parsers.py checks that the two agree).
_COMMANDS: dict[str, _Command] = {
    **dict.fromkeys(("list", "show", "search", "rename", "pin", "unpin", "rm", "backup"), _CONVERSATIONS),
    **dict.fromkeys(("export", "import"), _EXCHANGE),
    "docs": _Command("app.cli.docs", "run_docs"),
    "tools": _Command("app.cli.tools", "run_tools"),
    "stats": _Command("app.cli.stats", "run_stats"),
    "presets": _Command("app.cli.chat_options", "run_presets"),
}


def command_names() -> tuple[str, ...]:
    return tuple(_COMMANDS)


def runner_for(command: str | None) -> Callable[[argparse.Namespace, Path], int] | None:
    """The runner of a store-only command, or None for any other."""
    spec = _COMMANDS.get(command or "")
    if spec is None:
        return None
    run: Callable[[argparse.Namespace, Path], int] = getattr(importlib.import_module(spec.module), spec.run)
    return run
