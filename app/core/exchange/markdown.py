"""A conversation as Markdown for people: the branch shown only, a heading per message.

The structure cannot clash with what a message says. Each message is a `## You` or
`## Assistant` heading (`## System`...) followed by the message's text as a block quote:
every line of it starts with `>`. A heading, an unclosed code fence or raw HTML inside an
answer therefore stays inside that answer's quote (CommonMark closes whatever a quote opened
where the quote ends), and every heading outside a quote is Hearth's. Any Markdown viewer
draws the text as Markdown inside the quote. A model's reasoning comes first, quoted the same
way inside `<details>` (folded where the viewer knows HTML); a note in italics under the quote
says when an answer was stopped, failed or cut off. Taking one `> ` (or a lone `>`) off each
line of a quote gives the text back exactly, except that line breaks are written as `\n`.

Tool use is marked as such, never as words of the model or the person: under an answer, each
tool call it asked for is a line `*Tool call:* name` with its arguments quoted in a code block;
a tool's result is its own `## Tool output: name (status, latency)` heading with the result
quoted under it. A tool's name comes from its server, so it is written as plain text.

Other branches (earlier edits, regenerated answers) are not in it: Markdown is for reading
and sharing; the JSON export keeps everything. No store, no Qt.
"""

from __future__ import annotations

import re
import time

from store.exchange import ExchangeConversation, ExchangeMessage

__all__ = ["current_path", "quoted", "to_markdown"]

_ROLE = {"user": "You", "assistant": "Assistant", "system": "System", "tool": "Tool output"}
_NOTE = {
    "cancelled": "stopped",
    "failed": "failed",
    "interrupted": "interrupted",
    "queued": "unfinished",
    "streaming": "unfinished",
}
_LINE_END = re.compile(r"\r\n|\r|\n")  # what ends a line in CommonMark: a lone \r too


def current_path(conversation: ExchangeConversation) -> list[ExchangeMessage]:
    """The messages from the first to the end of the branch shown, as the window shows them."""
    by_key = {m.key: m for m in conversation.messages}
    path: list[ExchangeMessage] = []
    key = conversation.leaf_key
    while key is not None and key in by_key and len(path) <= len(by_key):
        path.append(by_key[key])
        key = by_key[key].parent_key
    return path[::-1]


def quoted(text: str) -> list[str]:
    """`text` as the lines of a block quote."""
    return [f"> {line}" if line else ">" for line in _LINE_END.split(text)]


def to_markdown(conversation: ExchangeConversation) -> str:
    path = current_path(conversation)
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created_at))
    shown = "the branch shown" if len(path) < len(conversation.messages) else "every message"
    out = [
        f"# {_plain(conversation.title)}",
        "",
        f"*Started {started} · {len(path)} messages ({shown}) · exported from Hearth*",
        "",
    ]
    for m in path:
        out += [f"## {_ROLE.get(m.role, m.role.capitalize())}{_tool_heading(m)}", ""]
        if m.reasoning.strip():
            out += ["<details><summary>Reasoning</summary>", "", *quoted(m.reasoning.strip()), "", "</details>", ""]
        if m.content.strip() or not m.tool_calls:
            out += [*(quoted(m.content.rstrip()) if m.content.strip() else ["*(no text)*"]), ""]
        for call in m.tool_calls:
            out += [f"*Tool call:* {_plain(call.name)}", "", *quoted(_fenced(call.arguments)), ""]
        note = _note(m)
        if note:
            out += [f"*{_plain(note)}*", ""]
    return "\n".join(out)


def _tool_heading(m: ExchangeMessage) -> str:
    """After "Tool output": which tool, how it went and how long it took (": test/echo (ok, 12 ms)")."""
    if m.role != "tool" or m.tool_run is None:
        return ""
    run = m.tool_run
    how = [run.status] + ([f"{run.latency_ms:.0f} ms"] if run.latency_ms is not None else [])
    return f": {_plain(run.name or 'unknown tool')} ({', '.join(how)})"


def _fenced(text: str) -> str:
    """`text` in a code block whose fence no run of backticks in it can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}json\n{text}\n{fence}"


def _plain(text: str) -> str:
    """Text outside a quote (a title, an error message: they can hold anything) as one line that
    Markdown shows as it is."""
    line = re.sub(r"([\\`*_\[\]<>])", r"\\\1", " ".join(text.split()))
    return re.sub(r"(\s)(#+)$", r"\1\\\2", line)  # a heading's closing #s would be dropped


def _note(m: ExchangeMessage) -> str:
    if m.role == "tool" and m.tool_run is not None and m.tool_run.truncated:
        return "the tool's output was cut at Hearth's size limit"
    g = m.generation
    if g is None:
        return ""
    if g.state == "completed":
        return "cut off at the token limit" if g.stop_reason == "length" else ""
    note = _NOTE.get(g.state, g.state)
    return f"{note}: {g.error_message}" if g.state == "failed" and g.error_message else note
