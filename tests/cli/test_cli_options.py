"""Options work before and after the command's name, and bad values are refused with a reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.parser import build_parser

COMMON = [
    ("--data-dir", "/tmp/x", "data_dir", "/tmp/x"),
    ("--model", "m.gguf", "model", "m.gguf"),
    ("--threads", "3", "threads", 3),
    ("--ctx", "2048", "ctx", 2048),
    ("--gpu-layers", "7", "gpu_layers", 7),
    ("--flash-attn", None, "flash_attn", True),
    ("--no-flash-attn", None, "flash_attn", False),
]
COMMANDS = [
    ["ask", "hi"],
    ["list"],
    ["backup", "out.db"],
    ["bench"],
    ["doctor"],
    ["models", "list"],
    ["models", "info", "x"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
@pytest.mark.parametrize("option", COMMON, ids=lambda o: o[0])
def test_a_common_option_counts_before_and_after_the_command(command: list[str], option: tuple) -> None:
    flag, value, dest, expected = option
    given = [flag] + ([value] if value is not None else [])
    before = build_parser().parse_args([*given, *command])
    after = build_parser().parse_args([*command, *given])
    assert getattr(before, dest) == expected and getattr(after, dest) == expected


def test_after_the_command_wins_over_before_it() -> None:
    assert build_parser().parse_args(["--data-dir", "a", "list", "--data-dir", "b"]).data_dir == "b"


def test_providers_take_the_data_dir_before_and_after() -> None:
    assert build_parser().parse_args(["--data-dir", "a", "providers", "list"]).data_dir == "a"
    assert build_parser().parse_args(["providers", "list", "--data-dir", "b"]).data_dir == "b"


def _hearth(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_a_data_dir_before_ask_is_where_the_chat_is_saved(tmp_path: Path, data_dir: Path) -> None:
    mine = tmp_path / "private"
    r = _hearth("--data-dir", str(mine), "ask", "Hi", "--max-tokens", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert (mine / "hearth.db").is_file() and not data_dir.exists()  # not $HEARTH_DATA_DIR
    assert "Hi" in _hearth("--data-dir", str(mine), "list").stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["ask", "hi", "--max-tokens", "0"], "--max-tokens: must be 1 or more"),
        (["ask", "hi", "--max-tokens", "-3"], "--max-tokens: must be 1 or more"),
        (["ask", "hi", "--temperature", "-1"], "--temperature: must be between 0 and 5"),
        (["--threads", "0", "list"], "--threads: must be 1 or more"),
        (["list", "--conversation", "77"], "there is no conversation 77"),
        (["ask", "hi", "--model", "qwen-9000"], "There is no model 'qwen-9000'"),
    ],
    ids=["max-tokens-0", "max-tokens-negative", "temperature", "threads", "no-such-chat", "no-such-model-id"],
)
def test_bad_values_are_refused_with_a_reason_and_exit_2(args: list[str], words: str, data_dir: Path) -> None:
    r = _hearth(*args, "--data-dir", str(data_dir))
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_a_model_path_that_is_missing_still_says_file_not_found(data_dir: Path, tmp_path: Path) -> None:
    r = _hearth("ask", "hi", "--model", str(tmp_path / "gone.gguf"), "--json", "--data-dir", str(data_dir))
    assert r.returncode == 2 and "gone.gguf" in r.stderr and "There is no model" not in r.stderr
    assert not r.stdout or json.loads(r.stdout)
