"""`hearth pin | unpin | list --limit | --all` on a real store (in process: no model, no Qt)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app.main import main
from engine.states import GenerationState
from store import Store


def hearth(capsys: pytest.CaptureFixture[str], data_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--data-dir", str(data_dir)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def chats(tmp_path: Path) -> tuple[Path, list[int]]:
    made = []
    with Store.open(tmp_path / "hearth.db") as store:
        for n in range(5):
            start = asyncio.run(store.begin_turn(None, f"chat number {n}", "smol"))
            store.finalize(
                start.ids.generation_id,
                text="ok",
                state=GenerationState.COMPLETED,
                metrics={},
                final_token_at=time.perf_counter(),
            ).result(5)
            made.append(start.ids.conversation_id)
    return tmp_path, made


def test_pin_puts_a_chat_first_with_a_marker_and_unpin_puts_it_back(capsys, chats) -> None:
    data_dir, made = chats
    code, _out, err = hearth(capsys, data_dir, "pin", str(made[1]))
    assert code == 0 and "pinned to the top" in err
    _code, out, _err = hearth(capsys, data_dir, "list")
    lines = out.splitlines()
    assert lines[0] == f"{made[1]}\tchat number 1\tpinned"
    assert [int(line.split("\t")[0]) for line in lines] == [made[1], made[4], made[3], made[2], made[0]]
    assert all(not line.endswith("pinned") for line in lines[1:])
    code, _out, err = hearth(capsys, data_dir, "unpin", str(made[1]))
    assert code == 0 and "no longer pinned" in err
    _code, out, _err = hearth(capsys, data_dir, "list")
    assert [int(line.split("\t")[0]) for line in out.splitlines()] == list(reversed(made))
    code, _out, err = hearth(capsys, data_dir, "pin", "999")
    assert code == 2 and "no conversation 999" in err


def test_list_shows_the_newest_few_and_says_how_to_see_all(capsys, chats) -> None:
    data_dir, made = chats
    _code, out, err = hearth(capsys, data_dir, "list", "--limit", "2")
    assert [int(line.split("\t")[0]) for line in out.splitlines()] == [made[4], made[3]]
    assert "--all" in err
    _code, out, err = hearth(capsys, data_dir, "list", "--all")
    assert len(out.splitlines()) == 5 and "--all" not in err
    _code, out, err = hearth(capsys, data_dir, "list", "--limit", "5")
    assert len(out.splitlines()) == 5 and err == ""
    code, _out, err = hearth(capsys, data_dir, "list", "--limit", "0")
    assert code == 2 and "--limit must be at least 1" in err
    _code, out, _err = hearth(capsys, data_dir, "list", "--conversation", str(made[0]))
    assert out.splitlines()[0] == f"{made[0]}\tchat number 0"
