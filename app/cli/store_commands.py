"""The commands that need the store or a settings file only (no model, no catalog), parsed and run
without the rest of the CLI.

Building every command's parser imports every command's module (the tool loop, the model catalog,
the benchmarks): `hearth list` took 1,026 ms with it and 939 ms without, `hearth docs list` 1,093 and
933 (a new process each, medians of 7, a quiet 2-core machine). A command
line that names one of these commands, with nothing but `--data-dir` before the name, is read by
that command's parser alone, into the namespace the whole parser gives (tests/cli/test_cli_parsers.py
compares them); any other command line goes to app/cli/parser.py (its command's parser alone, else the whole one).
Must not: import a command's module before its name is seen on the command line.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, NoReturn

from app.cli.options import common_options, data_dir_only

__all__ = ["command_names", "parse_alone", "runner_for"]


class _Command(NamedTuple):
    module: str  # where its parser and runner live
    add_parser: str  # add_X(sub, parent): its parser (some add several commands)
    parent: str  # "common": the options every command takes; "data_dir": --data-dir alone
    run: str  # run_X(args, data_dir) -> exit code


_CONVERSATIONS = _Command("app.cli.conversations", "add_conversation_parsers", "common", "run_conversations")
_EXCHANGE = _Command("app.cli.exchange", "add_exchange_parsers", "common", "run_exchange")
# The names of the conversation and exchange commands, as their modules' COMMANDS list them
# (tests/cli/test_cli_parsers.py checks that the two agree).
_COMMANDS: dict[str, _Command] = {
    **dict.fromkeys(("list", "show", "search", "rename", "pin", "unpin", "rm", "backup"), _CONVERSATIONS),
    **dict.fromkeys(("export", "import"), _EXCHANGE),
    "docs": _Command("app.cli.docs", "add_docs_parser", "data_dir", "run_docs"),
    "tools": _Command("app.cli.tools", "add_tools_parser", "data_dir", "run_tools"),
    "stats": _Command("app.cli.stats", "add_stats_parser", "data_dir", "run_stats"),
    "presets": _Command("app.cli.chat_options", "add_presets_parser", "data_dir", "run_presets"),
}
# The top-level options' defaults, as the whole parser leaves them when none is given.
_TOP_DEFAULTS = dict.fromkeys(("model", "threads", "ctx", "gpu_layers", "flash_attn", "chat_template"))


def command_names() -> tuple[str, ...]:
    return tuple(_COMMANDS)


def runner_for(command: str | None) -> Callable[[argparse.Namespace, Path], int] | None:
    """The runner of a store-only command, or None for any other."""
    spec = _COMMANDS.get(command or "")
    if spec is None:
        return None
    run: Callable[[argparse.Namespace, Path], int] = getattr(importlib.import_module(spec.module), spec.run)
    return run


class _Refusing(argparse.ArgumentParser):
    """Raises instead of printing a usage line and exiting: the whole parser then reads the command
    line again and refuses it with the usage a person knows (every command and option in it)."""

    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)


def parse_alone(argv: list[str]) -> argparse.Namespace | None:
    """`hearth [--data-dir DIR] NAME ...` for a store-only NAME, parsed by NAME's parser alone; None
    for any other command line (another option before the name, another command, none) and for one
    this parser refuses."""
    i = 0
    while i < len(argv) and argv[i] not in _COMMANDS:
        if argv[i] == "--data-dir":
            i += 2
        elif argv[i].startswith("--data-dir="):
            i += 1
        else:
            return None  # another option (or --help) before the name: the whole parser, as ever
    if i >= len(argv):
        return None
    spec = _COMMANDS[argv[i]]
    p = _Refusing(prog="hearth", parents=[data_dir_only(top=True)])
    p.set_defaults(**_TOP_DEFAULTS)
    parent = common_options(top=False) if spec.parent == "common" else data_dir_only(top=False)
    getattr(importlib.import_module(spec.module), spec.add_parser)(p.add_subparsers(dest="command"), parent)
    try:
        return p.parse_args(argv)
    except argparse.ArgumentError:
        return None
