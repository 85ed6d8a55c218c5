"""Export and import of conversations through the real store: Hearth JSON round trips every
branch; Markdown shows the branch shown; a ChatGPT export keeps its tree; bad files change nothing."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from app.core.errors import ExchangeError
from app.core.exchange import ImportReport, export_text, import_file
from engine.states import GenerationState
from store import Store
from store.exchange import ExchangeConversation
from store.sources import Source

FIXTURE = Path(__file__).parents[1] / "fixtures" / "chatgpt_conversations.json"


def run[T](coro: asyncio.Future[T] | asyncio.Task[T] | object) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "one" / "hearth.db") as s:
        yield s


@pytest.fixture
def other(tmp_path: Path):
    with Store.open(tmp_path / "two" / "hearth.db") as s:
        yield s


def finish(
    store: Store, generation_id: int, text: str, state: GenerationState = GenerationState.COMPLETED, **fields: object
) -> None:
    store.finalize(
        generation_id,
        text=text,
        state=state,
        final_token_at=time.perf_counter(),
        metrics=fields.pop("metrics", {}),
        **fields,
    ).result(5)  # type: ignore[arg-type]


CHAT = {
    "system_prompt": "Answer in Portuguese.",
    "temperature": 0.3,
    "top_p": 0.95,
    "max_tokens": 300,
    "repeat_penalty": 1.1,
    "context_length": 0,
    "overflow": "middle",
}


def branched(store: Store) -> int:
    """A conversation with an edit, a regeneration, reasoning, every way an answer ends, a pin
    and settings: the chat's, a provider route, and one secret-looking, as if something had put it there."""
    first = run(store.begin_turn(None, "Plan a café crawl in Lisbon ☕", "smol"))
    cid = first.ids.conversation_id
    finish(
        store,
        first.ids.generation_id,
        "Start at A Brasileira.",
        reasoning="They like coffee.",
        stop_reason="eog",
        metrics={"ttft_ms": 24.5, "tokens_per_s": 141.0, "completion_tokens": 5},
    )
    again = run(store.begin_regenerate(first.ids.assistant_message_id, "smol"))
    finish(store, again.ids.generation_id, "Manteigaria first, then", stop_reason="length")
    follow = run(store.begin_turn(cid, "Make it vegetarian", "smol"))
    finish(store, follow.ids.generation_id, "Sure —", GenerationState.CANCELLED, cancel_reason="user")
    edit = run(store.begin_edit(first.ids.user_message_id, "Plan a café crawl in Porto", "smol"))
    finish(
        store,
        edit.ids.generation_id,
        "",
        GenerationState.FAILED,
        error_code="engine",
        error_message="the engine stopped",
    )
    run(store.switch_branch(follow.ids.assistant_message_id))  # show the Lisbon branch
    run(store.pin_conversation(cid, True))
    run(
        store.update_conversation_settings(
            cid, {"provider": "lan-box", "session:lan-box": "abc123", "api_key": "sk-oops", "chat": CHAT}
        )
    )
    return cid


def canonical(c: ExchangeConversation) -> dict[str, object]:
    """What must survive a round trip, with message ids replaced by their positions."""
    pos = {m.key: i for i, m in enumerate(c.messages)}
    settings = {k: v for k, v in c.settings.items() if k != "import_key"}
    return {
        "title": c.title,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "pinned_at": c.pinned_at,
        "settings": settings,
        "leaf": pos.get(c.leaf_key or ""),
        "messages": [
            (pos.get(m.parent_key or ""), m.role, m.content, m.reasoning, m.created_at, m.updated_at, m.generation)
            for m in c.messages
        ],
    }


def write(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
    return path


def export_json(store: Store, cid: int) -> dict[str, object]:
    return json.loads(run(export_text(store, cid, "json"))[1])


def test_json_round_trip_keeps_every_branch_the_leaf_states_and_chat_settings(store, other, tmp_path) -> None:
    cid = branched(store)
    exported = export_json(store, cid)
    assert exported["format"] == "hearth.conversation" and exported["version"] == 1
    assert "api_key" not in exported["settings"] and exported["settings"]["provider"] == "lan-box"
    report = run(import_file(other, write(tmp_path / "x.json", exported)))
    assert report.text() == "1 conversation imported (7 messages)"
    [imported] = report.imported
    before, after = run(store.export_conversation(cid)), run(other.export_conversation(imported.conversation_id))
    expected = canonical(before)
    # The chat settings travel; the route (provider, its session) is this machine's, not the file's to set.
    expected["settings"] = {"chat": CHAT}
    assert canonical(after) == expected
    # The window and the prompt see the same branch shown, with the same siblings.
    shown = [(m.role, m.content, m.state, len(m.siblings)) for m in run(store.messages(cid))]
    assert [
        (m.role, m.content, m.state, len(m.siblings)) for m in run(other.messages(imported.conversation_id))
    ] == shown
    assert [s.reason for s in run(import_file(other, tmp_path / "x.json")).skipped] == ["already imported"]


def test_importing_an_export_into_the_database_it_came_from_adds_nothing(store, tmp_path) -> None:
    cid = branched(store)
    report = run(import_file(store, write(tmp_path / "x.json", export_json(store, cid))))
    assert report.imported == [] and [s.reason for s in report.skipped] == ["already imported"]
    assert len(run(store.list_conversations())) == 1


def test_markdown_shows_only_the_branch_shown(store) -> None:
    cid = branched(store)
    title, md = run(export_text(store, cid, "md"))
    assert title == "Plan a café crawl in Lisbon ☕" and md.startswith("# Plan a café crawl in Lisbon ☕\n")
    assert "Manteigaria first, then" in md and "*cut off at the token limit*" in md
    assert "## You\n\n> Make it vegetarian" in md and "> Sure —\n\n*stopped*" in md
    assert "Porto" not in md and "A Brasileira" not in md and "engine stopped" not in md  # other branches
    assert md.count("## ") == 4


HOSTILE_ANSWER = (
    "## You\n\nIgnore that, here is my own turn.\n\n## Assistant\nSetext too\n===\n"
    "<!-- never closed\n```python\n# a comment, and a fence never closed\nprint('hi')\r## You\n"
)


def read_back(md: str) -> list[tuple[str, str, str]]:
    """(role heading, reasoning, text) per message, by the structure the export documents
    (app/core/exchange/markdown.py): a `## ` heading outside any quote starts a message; its
    quotes, one `> ` (or `>`) off each line, are its reasoning (inside <details>) and its text."""
    messages: list[tuple[str, str, str]] = []
    role, quotes, current, in_details, reasoning = "", [], [], False, ""
    for line in [*md.split("\n"), ""]:
        if line.startswith(">"):
            current.append(line[2:] if line.startswith("> ") else line[1:])
            continue
        if current:
            quotes.append(("details" if in_details else "text", "\n".join(current)))
            current = []
        if line.startswith("<details>"):
            in_details = True
        elif line == "</details>":
            in_details = False
        elif line.startswith("## "):
            if role:
                messages.append((role, reasoning, next((q for k, q in quotes if k == "text"), "")))
            role, quotes = line[3:], []
        reasoning = next((q for k, q in quotes if k == "details"), "")
    if role:
        messages.append((role, reasoning, next((q for k, q in quotes if k == "text"), "")))
    return messages


def test_markdown_headings_inside_answers_cannot_pass_for_turns(store) -> None:
    """An answer holding `## You`, a setext heading, an unclosed comment and an unclosed code
    fence: the export still has exactly one heading per message outside any quote, and each
    message's text reads back whole."""
    first = run(store.begin_turn(None, "Show me\n## Assistant\nin a question", "smol"))
    cid = first.ids.conversation_id
    finish(store, first.ids.generation_id, HOSTILE_ANSWER, reasoning="## You\n```\nthinking")
    second = run(store.begin_turn(cid, "And again?", "smol"))
    finish(store, second.ids.generation_id, "Fine.\n\n  indented\n\n> a quote of its own")
    _, md = run(export_text(store, cid, "md"))
    tokens = MarkdownIt("commonmark").parse(md)
    outside = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.level == 0]
    assert outside == ["Show me", "You", "Assistant", "You", "Assistant"]  # the title, then one per message
    assert read_back(md) == [
        ("You", "", "Show me\n## Assistant\nin a question"),
        ("Assistant", "## You\n```\nthinking", HOSTILE_ANSWER.replace("\r", "\n").rstrip()),
        ("You", "", "And again?"),
        ("Assistant", "", "Fine.\n\n  indented\n\n> a quote of its own"),
    ]


def test_chatgpt_export_keeps_branches_and_current_node_and_a_second_import_adds_nothing(store) -> None:
    report = run(import_file(store, FIXTURE))
    assert report.text() == (
        "3 conversations imported (11 messages), 1 skipped: no messages with text; "
        "messages left out: 2 hidden context, 1 tool output, 1 reasoning recap"
    )
    assert report.problems == 0
    rows = {r.title: r for r in run(store.list_conversations())}
    lisbon = rows["Lisbon café crawl ☕"]
    assert (lisbon.created_at, lisbon.updated_at) == (1714550400.123456, 1714551000.5)  # original times
    tree = run(store.tree(lisbon.id))
    by_text = {m.content.split()[0]: m for m in tree}
    # The edited question is a sibling of the original, the regenerated answer of the first answer.
    roots = [m for m in tree if m.parent_id is None]
    assert [m.content for m in roots] == [
        "Plan a café crawl in Lisbon for a Saturday morning",
        "Plan a café crawl in Porto instead",
    ]
    assert by_text["Start"].parent_id == by_text["Begin"].parent_id == roots[0].id
    assert by_text["Majestic"].parent_id == roots[1].id
    shown = run(store.messages(lisbon.id))  # current_node: the vegetarian follow-up of the regenerated answer
    assert [m.content.split()[0] for m in shown] == ["Plan", "Begin", "Make", "Manteigaria's"]
    assert shown[-1].state == GenerationState.COMPLETED and shown[-1].stop_reason == "length"
    assert shown[1].siblings == (by_text["Start"].id, by_text["Begin"].id)
    porto = by_text["Majestic"]
    assert porto.state == GenerationState.CANCELLED
    sine = run(store.messages(rows["Plot a sine wave"].id))
    assert [m.role for m in sine] == ["user", "assistant"]  # code, tool run and reply: one answer
    assert sine[0].content.startswith("[image not imported]") and "like the one in this chart" in sine[0].content
    assert sine[1].content.startswith("```python\nimport numpy") and sine[1].content.endswith("0 to 2π.")
    sky = run(store.messages(rows["Σ Why is the sky blue? 空"].id))
    assert "空が青いのは" in sky[1].content and sky[1].reasoning.startswith("Shorter wavelengths")
    assert run(store.search("Manteigaria"))  # the search index has the imported text

    again = run(import_file(store, FIXTURE))
    assert again.imported == [] and Counter(s.reason for s in again.skipped) == {
        "already imported": 3,
        "no messages with text": 1,
    }
    assert len(run(store.list_conversations())) == 3


def test_a_chatgpt_chat_exported_from_hearth_still_meets_its_original(store, other, tmp_path) -> None:
    run(import_file(store, FIXTURE))
    lisbon = next(r for r in run(store.list_conversations()) if r.title.startswith("Lisbon"))
    path = write(tmp_path / "lisbon.json", export_json(store, lisbon.id))
    assert len(run(import_file(other, path)).imported) == 1
    report = run(import_file(other, FIXTURE))  # the same chat from ChatGPT itself: already here
    assert len(report.imported) == 2 and "already imported" in [s.reason for s in report.skipped]


def test_a_list_of_exports_imports_the_good_ones_and_says_why_not_the_others(store, other, tmp_path) -> None:
    cid = branched(store)
    good = export_json(store, cid)
    newer = {**good, "version": 3, "title": "From the future"}  # this Hearth reads up to 2 (tools)
    broken = {**good, "title": "Broken", "messages": [{"id": 1, "role": "user"}]}
    report = run(import_file(other, write(tmp_path / "many.json", [newer, good, broken, 42])))
    assert [i.title for i in report.imported] == [good["title"]]
    reasons = {s.title: s.reason for s in report.skipped}
    assert "newer Hearth (format version 3" in reasons["From the future"]
    assert reasons["Broken"] == "message 1 has no text (content)"
    assert "not a conversation" in reasons["item 4"] and report.problems == 3
    assert report.as_dict()["conversations_imported"] == 1


def _huge(path: Path) -> Path:
    with open(path, "wb") as f:
        f.truncate(2 * 1024**3)  # sparse: 2 GB to stat, nothing on disk
    return path


BAD_FILES = [
    pytest.param(
        lambda p: p.write_bytes(b"<html>not json</html>"), "is not JSON (Expecting value at line 1", id="not-json"
    ),
    pytest.param(
        lambda p: p.write_bytes(b'{"title": "caf\xe9"}'),
        "is not UTF-8 text (byte 0xe9 at offset 14)",
        id="invalid-utf8",
    ),
    pytest.param(lambda p: p.write_bytes('{"a": 1}'.encode("utf-16")), "is UTF-16 text", id="utf16"),
    pytest.param(lambda p: p.write_text('{"messages": []}'), "neither a Hearth export nor a ChatGPT", id="wrong-shape"),
    pytest.param(lambda p: p.write_text("[]"), "empty list", id="empty-list"),
    pytest.param(lambda p: p.write_text("   "), "is empty", id="empty-file"),
    pytest.param(lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "nested too deeply", id="deep"),
    pytest.param(
        lambda p: write(p, {"format": "hearth.conversation", "version": 9, "title": "T"}),
        "exported by a newer Hearth (format version 9",
        id="newer-version",
    ),
    pytest.param(
        lambda p: write(p, {"format": "hearth.conversation", "version": 1, "title": "T", "messages": []}),
        "the conversation has no valid created_at",
        id="missing-field",
    ),
    pytest.param(
        lambda p: write(
            p,
            {
                "format": "hearth.conversation",
                "version": 1,
                "title": "T",
                "created_at": 1.0,
                "messages": [{"id": 2, "parent_id": 1, "role": "user", "content": "hi", "created_at": 1.0}],
            },
        ),
        "answers message 1, which is not in the file",
        id="orphan",
    ),
    pytest.param(
        lambda p: write(
            p,
            {
                "format": "hearth.conversation",
                "version": 1,
                "title": "T",
                "created_at": 1.0,
                "messages": [
                    {"id": 1, "parent_id": 2, "role": "user", "content": "a", "created_at": 1.0},
                    {"id": 2, "parent_id": 1, "role": "user", "content": "b", "created_at": 1.0},
                ],
            },
        ),
        "answer each other in a loop",
        id="cycle",
    ),
    pytest.param(_huge, "is 2.0 GB; Hearth imports files up to 512 MB", id="2GB"),
    pytest.param(lambda p: p.mkdir(), "is a folder", id="folder"),
    pytest.param(lambda p: None, "does not exist", id="missing"),
]


@pytest.mark.parametrize(("make", "message"), BAD_FILES)
def test_a_bad_file_gets_a_clear_message_and_changes_nothing(store, tmp_path, make, message: str) -> None:
    branched(store)
    before = run(store.list_conversations())
    path = tmp_path / "bad.json"
    make(path)
    with pytest.raises(ExchangeError) as caught:
        run(import_file(store, path))
    assert message in caught.value.message and str(path) in caught.value.message
    assert run(store.list_conversations()) == before


def test_unpaired_surrogates_and_odd_times_are_imported_as_valid_text(store, tmp_path) -> None:
    raw = (
        '{"format": "hearth.conversation", "version": 1, "title": "bad \\ud800 bytes", "created_at": 1e400, '
        '"messages": []}'
    )
    (tmp_path / "inf.json").write_text(raw)
    with pytest.raises(ExchangeError, match="no valid created_at"):  # 1e400 is infinity: not a date
        run(import_file(store, tmp_path / "inf.json"))
    (tmp_path / "s.json").write_text(
        raw.replace("1e400", "1700000000").replace(
            '"messages": []',
            '"messages": [{"id": 1, "parent_id": null, "role": "user", "content": "x\\udfff", '
            '"created_at": 1700000000}]',
        )
    )
    report = run(import_file(store, tmp_path / "s.json"))
    [row] = run(store.list_conversations())
    assert row.title == "bad \ufffd bytes" and run(store.messages(row.id))[0].content == "x\ufffd"
    assert report.text() == "1 conversation imported (1 message)"


def test_a_save_that_fails_part_way_keeps_each_conversation_whole(store, tmp_path, monkeypatch) -> None:
    """The second conversation's write fails: the first is in, the second not at all, and the
    error says importing again adds only the rest."""
    from store import StoreError

    real = store.import_conversation
    calls: list[int] = []

    async def flaky(conversation: ExchangeConversation, key: str):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise StoreError("save_failed", "The disk is full.")
        return await real(conversation, key)

    monkeypatch.setattr(store, "import_conversation", flaky)
    with pytest.raises(StoreError, match="1 conversations were imported before this"):
        run(import_file(store, FIXTURE))
    monkeypatch.setattr(store, "import_conversation", real)
    assert len(run(store.list_conversations())) == 1
    report: ImportReport = run(import_file(store, FIXTURE))
    assert len(report.imported) == 2 and len(run(store.list_conversations())) == 3


def test_the_store_refuses_a_tree_that_does_not_hold_together(store) -> None:
    """One transaction: a leaf outside the conversation leaves no half-made conversation behind."""
    from store import StoreError
    from store.exchange import ExchangeMessage

    bad = ExchangeConversation("T", 1.0, 1.0, {}, (ExchangeMessage("1", None, "user", "hi", 1.0, 1.0),), "9")
    with pytest.raises(StoreError, match="not in the conversation"):
        run(store.import_conversation(bad, "test:1"))
    assert run(store.list_conversations()) == [] and run(store.search("hi")) == []


@pytest.mark.skipif(os.name != "posix", reason="a fifo")
def test_a_device_or_pipe_is_read_no_further_than_the_limit(tmp_path) -> None:
    from app.core.exchange import read_json_file

    with pytest.raises(ExchangeError, match="larger than"):
        read_json_file(Path("/dev/zero"), limit=1024)


def with_sources(store: Store) -> tuple[int, tuple[Source, ...]]:
    """A chat whose answer was given two passages, and retrieval that ran out of time."""
    start = run(store.begin_turn(None, "Where does the Danube flow?", "smol"))
    given = (
        Source(ordinal=1, path="/home/ana/rivers.pdf", page=2, start=120, end=540, score=0.031, text="It flows east."),
        Source(
            ordinal=2,
            path="/home/ana/notes.md",
            heading="Rivers § Danube",
            start=0,
            end=80,
            score=0.016,
            text="Ends in the Black Sea.",
            collection="Notes",
        ),
    )
    ids = start.ids
    store.set_sources(ids.assistant_message_id, ids.generation_id, given, retrieval_ms=512.5, retrieval_note=NOTE)
    finish(store, ids.generation_id, "East, to the Black Sea [1][2].", metrics={"ttft_ms": 30.0})
    return ids.conversation_id, given


NOTE = "the 500 ms retrieval budget ran out; the answer used what was found by then"


def test_json_round_trip_keeps_an_answers_sources_and_retrieval_figures(store, other, tmp_path) -> None:
    cid, given = with_sources(store)
    exported = export_json(store, cid)
    answer = exported["messages"][1]  # type: ignore[index]
    assert [s["path"] for s in answer["sources"]] == ["/home/ana/rivers.pdf", "/home/ana/notes.md"]
    assert answer["generation"]["metrics"]["retrieval_ms"] == 512.5
    assert answer["generation"]["retrieval_note"] == NOTE
    assert "sources" not in exported["messages"][0]  # type: ignore[index]
    report = run(import_file(other, write(tmp_path / "x.json", exported)))
    assert report.text() == "1 conversation imported (2 messages)" and report.problems == 0
    [imported] = report.imported
    [_user, reply] = run(other.messages(imported.conversation_id))
    assert run(other.sources(reply.id)) == given
    assert (reply.retrieval_ms, reply.retrieval_note, reply.ttft_ms) == (512.5, NOTE, 30.0)
    # And out again, the same.
    again = export_json(other, imported.conversation_id)
    assert again["messages"][1]["sources"] == answer["sources"]  # type: ignore[index]


def test_an_answers_bad_sources_are_left_out_and_said_so_the_rest_imported(store, other, tmp_path) -> None:
    cid, given = with_sources(store)
    run(store.begin_turn(cid, "And the Rhine?", "smol"))
    exported = export_json(store, cid)
    messages: list[dict[str, object]] = exported["messages"]  # type: ignore[assignment]
    good = messages[1]["sources"]
    messages[2]["sources"] = good  # a person's message has none
    messages[3]["sources"] = [{**good[0], "ordinal": n} for n in range(1, 23)]  # type: ignore[index]
    exported["messages"] = [*messages, {**messages[1], "id": 99, "sources": [{**good[0], "page": "two"}]}]  # type: ignore[index]
    report = run(import_file(other, write(tmp_path / "x.json", exported)))
    [imported] = report.imported
    assert imported.messages == 5 and report.problems == 1
    assert "the sources of message 3 were left out (only an answer has sources)" in report.text()
    assert "the sources of message 4 were left out (An answer keeps at most 20 sources; 22 were given)" in (
        report.text()
    )
    assert "the sources of message 5 were left out (source 1's page is not a whole number)" in report.text()
    tree = run(other.tree(imported.conversation_id))
    found = run(other.sources_of([m.id for m in tree]))
    assert list(found.values()) == [given]  # only the good answer's, whole
