"""`hearth stats` on a real store: --json keys that name what they hold with hand-counted figures,
--since and --model, bad input refused with exit 2, an empty store, and a model name carrying escape
sequences shown escaped on a real terminal (a pipe and --json get it exact)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli.main import FrontEnds, main
from engine.states import GenerationState
from store import Store

HOSTILE = "\x1b]0;pwned\x07\x1b[2Jevil\u202emodel"


def _nothing(**_: object) -> int:
    raise AssertionError("no window or bench for `hearth stats`")


def hearth(*args: str, data_dir: Path) -> int:
    return main([*args, "--data-dir", str(data_dir)], front_ends=FrontEnds(window=_nothing, bench=_nothing))


def answers(data_dir: Path, model: str, states: list[tuple[GenerationState, str | None]], ttft: float = 50.0) -> None:
    with Store.open(data_dir / "hearth.db") as store:
        for state, why in states:
            ids = asyncio.run(store.begin_turn(None, "Hello?", model)).ids
            store.finalize(
                ids.generation_id,
                text="Hi.",
                state=state,
                cancel_reason=why if state == GenerationState.CANCELLED else None,
                error_code=why if state == GenerationState.FAILED else None,
                metrics={"ttft_ms": ttft, "command_latency_ms": 3.0},
                final_token_at=time.perf_counter(),
            ).result(timeout=5)


def test_json_keys_name_what_they_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = GenerationState
    answers(tmp_path, "small", [(s.COMPLETED, None)] * 3 + [(s.CANCELLED, "user"), (s.FAILED, "context_full")])
    answers(tmp_path, "lan: big", [(s.COMPLETED, None), (s.CANCELLED, "timeout")], ttft=400.0)

    assert hearth("stats", "--json", data_dir=tmp_path) == 0
    out = json.loads(capsys.readouterr().out)
    small, big = out["routes"]
    assert small["model"] == small["route"] == "small"
    assert (small["answers"], small["completed"], small["stream_completion_rate"]) == (5, 3, 0.6)
    assert small["ended"] == {"user": 1, "timeout": 0, "failed": {"context_full": 1}, "interrupted": 0}
    assert small["ttft_ms"] == {"p50": 50.0, "p95": 50.0, "count": 5}
    assert small["retrieval_ms"] == {"p50": None, "p95": None, "count": 0}
    assert big["ended"]["timeout"] == 1 and big["stream_completion_rate"] == 0.5
    assert [a["ttft_ms"] for a in out["slowest"]][:2] == [400.0, 400.0]
    assert {"conversation_id", "message_id"} <= set(out["slowest"][0])

    assert hearth("stats", "--json", "--model", "lan: big", data_dir=tmp_path) == 0
    assert [r["model"] for r in json.loads(capsys.readouterr().out)["routes"]] == ["lan: big"]
    assert hearth("stats", "--json", "--since", "2999-01-01", data_dir=tmp_path) == 0
    assert json.loads(capsys.readouterr().out)["routes"] == []


def test_the_table_and_an_empty_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hearth("stats", data_dir=tmp_path) == 0
    assert "No answers since" in capsys.readouterr().out
    answers(tmp_path, "small", [(GenerationState.COMPLETED, None), (GenerationState.FAILED, "unreachable")])
    assert hearth("stats", "--since", "24h", data_dir=tmp_path) == 0
    out = capsys.readouterr().out
    assert "stream completion rate 50.0%" in out and "failed 1 (unreachable 1)" in out
    assert "time to first token" in out and "Slowest answers" in out


@pytest.mark.parametrize("since", ["7x", "yesterday", "-3d", "2026-13-01"], ids=["unit", "word", "negative", "month"])
def test_bad_since_is_refused_with_exit_2(tmp_path: Path, since: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert hearth("stats", f"--since={since}", data_dir=tmp_path) == 2
    err = capsys.readouterr().err
    assert f"--since {since!r} is not a time" in err and "7d" in err
    assert not (tmp_path / "hearth.db").exists()  # refused before opening anything


@pytest.mark.slow
def test_a_model_name_with_escapes_is_escaped_on_a_terminal(tmp_path: Path) -> None:
    from test_cli_terminal import RAW, on_terminal  # the pty runner the other terminal tests use

    answers(tmp_path, HOSTILE, [(GenerationState.COMPLETED, None)])
    code, shown = on_terminal("stats", data_dir=tmp_path)
    assert code == 0
    assert b"\\x1b]0;pwned\\x07\\x1b[2Jevil\\u202emodel" in shown
    assert not any(raw in shown for raw in RAW)
    code, shown = on_terminal("stats", "--json", data_dir=tmp_path)
    assert code == 0 and not any(raw in shown for raw in RAW)
    assert json.loads(shown)["routes"][0]["model"] == HOSTILE  # still the exact name to a parser


def test_json_and_help_say_how_the_percentiles_were_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answers(tmp_path, "small", [(GenerationState.COMPLETED, None)] * 2, ttft=61.0)
    assert hearth("stats", "--json", data_dir=tmp_path) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["percentiles"] == "histogram, ±3%" and out["routes"][0]["ttft_ms"]["p50"] == 61.0
    assert hearth("stats", "--json", "--exact", data_dir=tmp_path) == 0
    assert json.loads(capsys.readouterr().out)["percentiles"] == "exact"
    with pytest.raises(SystemExit):
        hearth("stats", "--help", data_dir=tmp_path)
    assert "±3%" in capsys.readouterr().out


@pytest.mark.slow
def test_the_command_imports_neither_sqlmodel_nor_other_commands(tmp_path: Path) -> None:
    answers(tmp_path, "small", [(GenerationState.COMPLETED, None)])
    probe = (
        "import sys, runpy; sys.argv = ['hearth', 'stats', '--data-dir', sys.argv[1]]\n"
        "try:\n    runpy.run_module('app', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlmodel', 'jinja2', 'app.cli.ask_tools', 'app.core.models') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stderr
