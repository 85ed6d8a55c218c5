"""A store-only command read by its own parser (app/cli/store_commands.py) means what the whole
parser says it means, and such a command does not import the rest of the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.cli import conversations, exchange
from app.cli.main import _parser
from app.cli.store_commands import command_names, parse_alone, runner_for


@pytest.mark.parametrize(
    "argv",
    [
        ["stats"],
        ["stats", "--json", "--since", "all", "--exact"],
        ["--data-dir", "D", "stats", "--model", "m", "--route", "r", "--slowest", "3", "--by", "total"],
        ["--data-dir=D", "stats", "--series", "day", "--json", "--data-dir", "E"],
        ["list"],
        ["list", "--all", "--messages", "--conversation", "2"],
        ["--data-dir", "D", "show", "7", "--model", "x", "--threads", "2"],
        ["search", "lighthouse keeper", "--json"],
        ["rename", "3", "A new title"],
        ["rm", "3", "--yes"],
        ["backup", "out.db"],
        ["export", "4", "--format", "json"],
        ["import", "chat.json"],
        ["docs", "add", "notes", "--collection", "home", "--background"],
        ["docs", "search", "when was it lit", "--json", "--collection", "sea"],
        ["--data-dir", "D", "docs", "list", "--json", "--data-dir", "E"],
        ["tools", "list"],
        ["presets"],
    ],
    ids=lambda argv: "-".join(a.strip("-") for a in argv)[:60],
)
def test_one_commands_parser_reads_a_command_line_as_the_whole_parser_does(argv: list[str]) -> None:
    alone = parse_alone(argv)
    assert alone is not None and vars(alone) == vars(_parser().parse_args(argv))


def test_other_command_lines_get_the_whole_parser() -> None:
    for argv in (["ask", "list"], ["--model", "x", "list"], ["--help"], ["models", "list"], ["doctor"], []):
        assert parse_alone(argv) is None, argv


def test_the_store_only_names_are_the_commands_own() -> None:
    # the names store_commands lists for each module are exactly the ones that module's parser adds
    for module in (conversations, exchange):
        listed = {name for name in command_names() if runner_for(name).__module__ == module.__name__}
        assert listed == set(module.COMMANDS), module.__name__


@pytest.mark.parametrize(
    "argv", [["list", "--no-such-option"], ["show", "seven"], ["docs", "search"], ["stats", "--by", "x"]]
)
def test_a_command_line_its_parser_refuses_goes_to_the_whole_parser(argv: list[str]) -> None:
    # which says what is wrong with the usage a person knows, every command and option in it
    assert parse_alone(argv) is None


@pytest.mark.slow  # a Python process
def test_listing_imports_neither_the_tool_loop_nor_the_catalog_nor_the_benchmarks(data_dir: object) -> None:
    # data_dir (the fixture) points HEARTH_DATA_DIR at a fresh folder, which the child inherits
    code = (
        "import sys, json; from app.main import main;"
        "rc = main(['list']);"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('app.'))),"
        " file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stderr.strip().splitlines()[-1])
    for heavy in ("app.cli.ask_tools", "app.cli.models", "app.cli.bench_overhead", "app.core.tools", "app.core.models"):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in loaded), (heavy, loaded)
