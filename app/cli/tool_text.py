"""Tool steps in `hearth show`: an answer's tool calls and a tool's result, as text for a person
and as JSON fields.

A tool's result is data from the tool, never the model's or the person's words, so it is printed
under its own `Tool (name, status, latency):` line with every line of it behind a bar (`│ `):
a result that holds "Assistant:" cannot pass for a turn. On a terminal, arguments and results
longer than TERMINAL_CHARS are cut with a note saying how much more there is and where to read
it whole (`--json`, or a pipe); a pipe gets them whole. Control characters are escaped by the
caller's `shown` (app.cli.terminal), as for any message.

Must not: read the store, or change what --json carries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the store (SQLAlchemy) loads when a command runs, not for `hearth --help`
    from engine.commands import ToolCall
    from store.rows import MessageRow
    from store.tool_rows import ToolRun

__all__ = ["TERMINAL_CHARS", "call_lines", "result_text", "tool_fields", "tool_label"]

TERMINAL_CHARS = 2_000  # about a screenful: a 10 MB result must not scroll a terminal for minutes
_BAR = "│ "


def tool_label(run: ToolRun | None) -> str:
    """`Tool (test/echo, ok, 12 ms)`: which tool answered and how it went, on one line."""
    if run is None:
        return "Tool (unknown tool)"
    how = [_one_line(run.name) or "unknown tool", run.status]
    if run.latency_ms is not None:
        how.append(f"{run.latency_ms:.0f} ms")
    if run.truncated:
        how.append("cut at the size limit")
    return f"Tool ({', '.join(how)})"


def call_lines(calls: tuple[ToolCall, ...], conversation_id: int, *, cut: bool) -> str:
    """One `Tool call: name {arguments}` line per call ("" for none)."""
    return "".join(
        f"Tool call: {_one_line(c.name)} {_cut(_one_line(c.arguments), conversation_id, cut)}\n" for c in calls
    )


def result_text(content: str, conversation_id: int, *, cut: bool) -> str:
    """A tool's result with a bar before each line, cut on a terminal (with a note)."""
    text = _cut(content.rstrip("\n"), conversation_id, cut) if content.strip() else "(no output)"
    return "".join(f"{_BAR}{line}\n" for line in text.split("\n"))


def tool_fields(m: MessageRow) -> dict[str, object]:
    """--json's tool fields of a message: its calls (an answer), the call it answers and how it went (a tool)."""
    run = m.tool_run
    return {
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls],
        "tool_call_id": m.tool_call_id,
        "tool": None
        if run is None
        else {"name": run.name, "status": run.status, "latency_ms": run.latency_ms, "truncated": run.truncated},
    }


def _cut(text: str, conversation_id: int, cut: bool) -> str:
    if not cut or len(text) <= TERMINAL_CHARS:
        return text
    more = len(text) - TERMINAL_CHARS
    return (
        f"{text[:TERMINAL_CHARS]}… [{more:,} more characters: `hearth show {conversation_id} --json` "
        "or a pipe prints all of it]"
    )


def _one_line(text: str) -> str:
    # A tool's name or arguments with a line break in them must not pass for the next line.
    return " ".join(text.splitlines())
