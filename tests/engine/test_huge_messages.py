"""One huge message must not make a conversation unusable: every door (the window's message box,
`hearth ask`, import, the API) takes messages up to store.limits.MAX_MESSAGE_BYTES and says why
it refuses a longer one; a huge message saved before that limit existed is left out of the
prompt without being read, and search shows a few hundred characters of it, not all of it.

Real model, real store, real processes; the window test runs the real app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.commands import ChatMessage, Generate, LoadModel, Measure, Sampling
from engine.events import Failed, Final, Started
from engine.local import LocalModel
from engine.prompt_size import least_tokens
from engine.states import GenerationState
from store import Store, StoreError
from store.limits import MAX_MESSAGE_BYTES
from store.search import SNIPPET_CHARS

N_CTX = 512
HUGE = "lorem ipsum dolor sit amet " * (30 * 1024 * 1024 // 27)  # 30 MB, as an older import saved it
OVER = "x" * (MAX_MESSAGE_BYTES + 1)  # one byte over the limit
REFUSAL = "This message is 4 MB; Hearth takes messages up to 4 MB. Shorten it, or split it into several messages."


@pytest.fixture(scope="module")
def model(model_path: Path) -> Iterator[LocalModel]:
    m = LocalModel(LoadModel(str(model_path), n_ctx=N_CTX, n_threads=1))
    yield m
    m.close()


def _chat(*middle: ChatMessage, last: str = "What is two plus two?") -> tuple[ChatMessage, ...]:
    return (
        ChatMessage("system", "You answer briefly."),
        ChatMessage("user", "Hello."),
        ChatMessage("assistant", "Hello! How can I help?"),
        *middle,
        ChatMessage("user", last),
    )


def _generate(model: LocalModel, messages: tuple[ChatMessage, ...], policy: str = "rolling") -> list[object]:
    cmd = Generate(1, messages, dataclasses.replace(Sampling.greedy(8), overflow=policy))
    events: list[object] = []
    model.generate(cmd, threading.Event(), events.append, time.perf_counter())
    return events


# --- the prompt: what cannot fit is measured by its bytes -------------------------------------


def test_a_huge_saved_message_is_left_out_at_once_and_the_turn_answers(model: LocalModel) -> None:
    """It took 11 s and 750 MB per turn at 10 MB, and never finished at 100 MB: every turn
    tokenized the whole message, several times over."""
    messages = _chat(ChatMessage("user", HUGE), ChatMessage("assistant", "That is a lot of Latin."))
    started_at = time.monotonic()
    events = _generate(model, messages)
    measured = model.measure(Measure(7, messages, dataclasses.replace(Sampling.greedy(8), overflow="rolling")))
    assert time.monotonic() - started_at < 10  # not minutes
    started, final = next(e for e in events if isinstance(e, Started)), events[-1]
    assert isinstance(final, Final) and final.stats.completion_tokens > 0, events
    assert 3 in started.omitted and started.prompt_tokens < N_CTX  # the huge one is not sent
    assert measured.left_out == started.omitted and measured.prompt_tokens > N_CTX  # the meter agrees


def test_a_huge_message_under_stop_or_as_the_last_message_is_refused_at_once(model: LocalModel) -> None:
    started_at = time.monotonic()
    stop = _generate(model, _chat(ChatMessage("user", HUGE), ChatMessage("assistant", "Noted.")), policy="stop")
    last = _generate(model, _chat(last=HUGE))
    assert time.monotonic() - started_at < 10
    for events in (stop, last):
        assert len(events) == 1 and isinstance(events[0], Failed) and events[0].code == "context_full", events
    assert isinstance(stop[0], Failed) and "(at least " in stop[0].message  # counted by its bytes
    assert isinstance(last[0], Failed) and "Your message is too long" in last[0].message


@pytest.mark.parametrize(
    "text",
    [
        "plain English words, as people write them. " * 200,
        " " * 5000,
        "=" * 5000,
        "\n" * 5000,
        "aaaa" * 2000,
        "Grüße, café, naïve: ÀÉÎÕÜ " * 200,
        "日本語のテキストです。" * 300,
        "🙂🚀👩‍👩‍👧" * 500,
        "".join(chr(c) for c in range(32, 0x3000, 7)),
    ],
    ids=["english", "spaces", "equals", "newlines", "letters", "accents", "japanese", "emoji", "mixed"],
)
def test_the_byte_bound_never_exceeds_the_real_token_count(model: LocalModel, text: str) -> None:
    """The bound leaves out only what really cannot fit: it must never count more tokens than
    the tokenizer makes."""
    real = len(model.tokenize_prompt(Generate(1, (ChatMessage("user", text),))))
    assert least_tokens(text, model._longest_piece()) <= real


# --- search -------------------------------------------------------------------------------------


def test_search_shows_a_few_hundred_characters_of_a_message_with_a_huge_word(tmp_path: Path) -> None:
    """FTS5 bounds a snippet in words: one 3 MB "word" made a 3 MB snippet (100 MB at 100 MB)."""
    with Store.open(tmp_path / "hearth.db") as store:
        words = "see " + "x" * 3_000_000 + " lighthouse keeper and more words after it"
        ids = asyncio.run(store.create_turn(None, words, "smol"))
        hits = [h for h in asyncio.run(store.search("lighthouse")) if h.message_id == ids.user_message_id]
        prefix = [h for h in asyncio.run(store.search("xxxx")) if h.message_id == ids.user_message_id]
    assert hits and prefix
    for hit in (hits[0], prefix[0]):
        assert len(hit.snippet) <= SNIPPET_CHARS + 2  # and an ellipsis at each end cut off
        assert hit.highlights and all(0 <= a < b <= len(hit.snippet) for a, b in hit.highlights)
    assert [hits[0].snippet[a:b] for a, b in hits[0].highlights] == ["lighthouse"]
    assert set(prefix[0].snippet[slice(*prefix[0].highlights[0])]) == {"x"}  # the match, cut to what is shown


# --- the doors ------------------------------------------------------------------------------------


def test_the_chat_service_and_the_store_refuse_a_message_over_the_limit_by_name(data_dir: Path) -> None:
    """The window's message box and `hearth ask` send through the service; the API saves through
    the store. Nothing is saved from a refused message; one at the limit is taken."""
    from app.core.chat_service import ChatService
    from app.core.errors import InputError
    from engine.client import AsyncEngine

    async def body(store: Store) -> tuple[list[str], list[str], int]:
        service = ChatService(store, AsyncEngine())  # no model: the size is checked first
        said: list[str] = []
        for attempt in (service.start_turn(None, OVER), service.start_edit(1, OVER)):
            with pytest.raises(InputError) as refused:
                await attempt
            said.append(refused.value.message)
        codes = []
        for attempt in (store.begin_turn(None, OVER, "m"), store.create_turn(None, OVER, "m")):
            with pytest.raises(StoreError) as refused_too:
                await attempt
            codes.append(refused_too.value.code)
        before = len(await store.list_conversations())
        await store.begin_turn(None, "é" * (MAX_MESSAGE_BYTES // 2), "m")  # exactly the limit, in bytes
        return said, codes, before

    with Store.open(data_dir / "hearth.db") as store:
        said, codes, before = asyncio.run(body(store))
    assert said == [REFUSAL, REFUSAL] and codes == ["message_too_long", "message_too_long"]
    assert before == 0  # nothing was saved from the refused ones


@pytest.mark.slow
def test_hearth_ask_refuses_a_message_over_the_limit_before_loading_anything(data_dir: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "app", "ask", "-", "--data-dir", str(data_dir)],
        input=b"y" * (5 * 1024 * 1024),
        capture_output=True,
        timeout=60,
    )
    err = r.stderr.decode()
    assert r.returncode == 2 and "This message is 5 MB; Hearth takes messages up to 4 MB" in err, err
    assert "Traceback" not in err and not (data_dir / "hearth.db").exists()


@pytest.mark.slow
def test_an_import_keeps_a_huge_message_cut_to_the_limit_and_reports_it(data_dir: Path, tmp_path: Path) -> None:
    """Cut, not left out: the answer keeps its question, the start of the text stays, and the
    report counts it as a problem (exit 1)."""
    huge = "The log begins. " + "z" * (9 * 1024 * 1024)
    export = {
        "format": "hearth.conversation",
        "version": 1,
        "title": "A pasted log",
        "created_at": 1.7e9,
        "messages": [
            {"id": 1, "parent_id": None, "role": "user", "content": huge, "created_at": 1.7e9},
            {"id": 2, "parent_id": 1, "role": "assistant", "content": "That log is long.", "created_at": 1.7e9 + 1},
        ],
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    r = subprocess.run(
        [sys.executable, "-m", "app", "import", str(path), "--data-dir", str(data_dir)],
        capture_output=True,
        timeout=120,
    )
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 1 and "1 message cut to 4 MB, the most Hearth keeps in one message" in out, out
    with sqlite3.connect(data_dir / "hearth.db") as db:
        rows = db.execute("SELECT role, content FROM message ORDER BY id").fetchall()
    assert [role for role, _ in rows] == ["user", "assistant"] and rows[1][1] == "That log is long."
    kept = rows[0][1]
    assert kept.startswith("The log begins. zzz") and len(kept.encode()) <= MAX_MESSAGE_BYTES
    assert kept.endswith("[Hearth cut this message here: it was 9 MB, and Hearth keeps messages up to 4 MB.]")


def test_the_api_refuses_a_message_over_the_limit_with_a_400_naming_it() -> None:
    from app.server.wire import ApiError, parse_chat_request

    body = json.dumps(
        {
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "user", "content": [{"type": "text", "text": OVER}]},
            ],
        }
    )
    with pytest.raises(ApiError) as refused:
        parse_chat_request(body.encode())
    assert refused.value.status == 400 and refused.value.api_code == "message_too_long"
    assert refused.value.param == "messages[1].content" and REFUSAL in refused.value.message


def test_the_window_says_why_it_cannot_send_a_message_over_the_limit(qtbot, app_factory, data_dir: Path) -> None:
    from PySide6.QtCore import Qt
    from ui_fakes import run

    app = app_factory()
    text = "a pasted line of a very long log file\n" * (MAX_MESSAGE_BYTES // 38 + 1)
    app.window.composer.setPlainText(text)
    qtbot.keyClick(app.window.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: app.window.banner.isVisible(), timeout=10_000)
    assert app.window.banner.text().startswith("This message is 4 MB; Hearth takes messages up to 4 MB.")
    assert app.window.composer.toPlainText() == text  # kept, to shorten or split
    assert run(qtbot, app.store.list_conversations()) == []  # nothing saved
    app.close()


@pytest.fixture
def loop(qapp):  # the window test's running qasync loop (tests/real_app.py)
    from ui_fakes import running_loop

    with running_loop(qapp) as running:
        yield running


def test_a_turn_in_a_conversation_holding_a_huge_message_answers_through_the_service(
    model_path: Path, data_dir: Path
) -> None:
    """Through the engine process, as the window and `hearth ask --conversation` do."""
    from app.core.chat_service import ChatService
    from engine.client import AsyncEngine

    async def body(store: Store) -> tuple[object, int]:
        service = ChatService(store, AsyncEngine())
        try:
            await service.load(str(model_path), n_ctx=1024)
            first = await service.start_turn(None, "Hello.", sampling=Sampling.greedy(4))
            async for _ in first:
                pass
            await first.saved
            cid = first.ids.conversation_id
            with sqlite3.connect(store.db_path) as db:  # as an import before the size limit left it
                db.execute("UPDATE message SET content = ? WHERE id = ?", (HUGE, first.ids.user_message_id))
            turn = await service.start_turn(cid, "What is two plus two?", sampling=Sampling.greedy(4))
            started_at = time.monotonic()
            async for _ in turn:
                pass
            await turn.saved
            return turn.outcome, time.monotonic() - started_at
        finally:
            service.engine.close()

    with Store.open(data_dir / "hearth.db") as store:
        outcome, took = asyncio.run(body(store))
    assert outcome.state is GenerationState.COMPLETED  # type: ignore[attr-defined]
    assert took < 20  # not minutes
