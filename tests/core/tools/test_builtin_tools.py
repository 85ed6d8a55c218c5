"""The built-in tools: the current time, and a text file read within the size limit."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from app.core.tools import BUILTIN_TOOLS, CallLimits, ToolError, ToolRegistry, builtin_tools
from app.core.tools.values import DEFAULT_LIMITS


def call(name: str, arguments: dict[str, object], limits: CallLimits = DEFAULT_LIMITS) -> str:
    async def run() -> str:
        async with ToolRegistry([], builtin_tools([name]), limits=limits) as tools:
            return (await tools.call(f"hearth/{name}", arguments)).text

    return asyncio.run(run())


def test_current_time_is_iso_8601_with_the_time_zone() -> None:
    text = call("current_time", {})
    stamp = datetime.fromisoformat(text.split(" ")[0])
    assert stamp.tzinfo is not None
    assert abs((stamp - datetime.now().astimezone()).total_seconds()) < 5


def test_read_file_reads_text_and_cuts_a_big_file_saying_so(tmp_path: Path) -> None:
    small = tmp_path / "notes.txt"
    small.write_text("milk\neggs é\n", encoding="utf-8")
    assert call("read_file", {"path": str(small)}) == "milk\neggs é\n"
    big = tmp_path / "big.txt"
    big.write_text("é" * 1000, encoding="utf-8")  # 2,000 bytes
    text = call("read_file", {"path": str(big)}, CallLimits(max_bytes=101))
    assert text.startswith("é" * 50) and "é" * 51 not in text and "\ufffd" not in text
    assert "the file has 2,000 bytes; the first 101" in text


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00"), "binary file"),
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: None, "does not exist"),
    ],
    ids=["binary", "folder", "missing"],
)
def test_read_file_refuses_what_is_not_a_text_file_and_says_why(tmp_path: Path, make: object, words: str) -> None:
    path = tmp_path / "thing"
    make(path)  # type: ignore[operator]
    with pytest.raises(ToolError) as caught:
        call("read_file", {"path": str(path)})
    assert caught.value.code == "unreadable" and words in caught.value.message and str(path) in caught.value.message


def test_a_built_in_that_was_not_chosen_cannot_be_called() -> None:
    only_time = ToolRegistry([], builtin_tools(["current_time"]))
    with pytest.raises(ToolError) as caught:
        asyncio.run(only_time.call("hearth/read_file", {"path": "/etc/passwd"}))
    assert caught.value.code == "no_such_tool"
    assert set(BUILTIN_TOOLS) == {"current_time", "read_file", "search_documents"}


def test_a_chats_registry_runs_search_documents_bound_to_its_store() -> None:
    from app.core.tools.builtin import SEARCH_DOCUMENTS, BuiltinTool
    from app.core.tools.choice import ChatTools
    from app.core.tools.for_chat import registry_for
    from app.core.tools.values import ToolResult

    async def found(arguments: object, limits: object) -> ToolResult:
        return ToolResult(f"[1] notes.md\n> about {arguments['query']}", False, 1.0)  # type: ignore[index]

    chosen = ChatTools(("hearth/search_documents",))
    bound = registry_for(chosen, None, documents=BuiltinTool(SEARCH_DOCUMENTS, found))
    assert asyncio.run(bound.call("hearth/search_documents", {"query": "tides"})).text == "[1] notes.md\n> about tides"
    with pytest.raises(ToolError) as unbound:  # without a store, it says it cannot search
        asyncio.run(registry_for(chosen, None).call("hearth/search_documents", {"query": "tides"}))
    assert "cannot be searched from here" in unbound.value.message
