"""A command line read by its command's parser alone (app/cli/parser.py) means what the whole parser
says it means, and a command imports no other command's module."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from app.cli import conversations, exchange
from app.cli.parser import COMMANDS, build_parser, parse
from app.cli.store_commands import command_names, runner_for


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
def test_a_store_only_command_line_read_alone_means_what_the_whole_parser_says(argv: list[str]) -> None:
    assert vars(parse(argv)) == vars(build_parser().parse_args(argv))


def test_the_store_only_names_are_the_commands_own() -> None:
    # the names store_commands lists for each module are exactly the ones that module's parser adds
    for module in (conversations, exchange):
        listed = {name for name in command_names() if runner_for(name).__module__ == module.__name__}
        assert listed == set(module.COMMANDS), module.__name__


def _app_modules_after(argv: list[str]) -> list[str]:
    """The app's modules imported by a fresh process that ran `hearth ARGV` (with the data_dir
    fixture, HEARTH_DATA_DIR points at a fresh folder, which the child inherits)."""
    code = (
        f"import sys, json; from app.main import main; rc = main({argv!r});"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('app.'))), file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stderr.strip().splitlines()[-1]))


@pytest.mark.slow  # a Python process
def test_listing_imports_neither_the_tool_loop_nor_the_catalog_nor_the_benchmarks(data_dir: object) -> None:
    loaded = _app_modules_after(["list"])
    for heavy in ("app.cli.ask_tools", "app.cli.models", "app.cli.bench_overhead", "app.core.tools", "app.core.models"):
        assert not any(m == heavy or m.startswith(heavy + ".") for m in loaded), (heavy, loaded)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--model", "x", "--threads", "2"],
        ["ask", "Hi", "--max-tokens", "3", "--temperature", "0", "--json"],
        ["--model", "ask", "ask", "list"],  # a value that looks like a command's name
        ["--data-dir", "D", "ask", "-", "--conversation", "4", "--tools", "clock", "--model", "m"],
        ["--threads", "2", "bench", "render", "--json", "--runs", "1"],
        ["models", "list"],
        ["models", "pull", "smollm2-360m"],
        ["doctor", "--json"],
        ["providers", "list"],
        ["serve", "--port", "0", "--no-share"],
        ["--ctx", "2048", "list", "--all"],
        ["docs", "list"],
        ["export", "4", "--format", "md"],
    ],
    ids=lambda argv: "-".join(a.strip("-") for a in argv)[:60] or "window",
)
def test_a_command_line_read_by_its_commands_parser_alone_means_what_the_whole_parser_says(argv: list[str]) -> None:
    assert vars(parse(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ["ask", "--no-such-option"],
        ["bogus"],
        ["models", "nope"],
        ["--help"],
        ["-h", "ask"],
        ["ask", "-h"],
        ["list", "--no-such-option"],
        ["show", "seven"],
        ["docs", "search"],
        ["stats", "--by", "x"],
    ],
)
def test_a_line_the_commands_parser_refuses_or_help_gets_what_the_whole_parser_says(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as alone:
        parse(argv)
    said = capsys.readouterr()
    with pytest.raises(SystemExit) as whole:
        build_parser().parse_args(argv)
    assert (alone.value.code, said) == (whole.value.code, capsys.readouterr())


def test_the_parser_registry_names_each_commands_own_names() -> None:
    for names, add in COMMANDS:
        p = argparse.ArgumentParser()
        add(p.add_subparsers(dest="command"), argparse.ArgumentParser(add_help=False))
        (sub,) = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        assert tuple(sub.choices) == names, add.__name__


@pytest.mark.slow  # a Python process
def test_asking_imports_no_other_commands_modules(data_dir: object) -> None:
    loaded = _app_modules_after(["ask", "Hi", "--max-tokens", "1", "--no-share"])
    for other in ("app.cli.docs", "app.cli.bench_overhead", "app.cli.doctor", "app.cli.providers", "app.cli.serve"):
        assert other not in loaded, (other, loaded)
