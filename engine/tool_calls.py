"""Tool calls on the wire: OpenAI's request shape for tools, the tool choice and the calls and
results in a conversation, and the assembly of a reply's streamed call deltas into `ToolCall`s.

Owns: the JSON that OpenAI-compatible servers expect for tools (chat completions), and putting
pieces together exactly (a call's arguments split anywhere, even between the two halves of a
surrogate pair that a server escaped as \\ud83c\\udf0d), within a cap on their size and number.

Must not: do I/O, judge whether arguments are valid JSON (the caller decides), or know any
provider but the OpenAI shape. Never imports `app`, `store` or Qt.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from engine.commands import ChatMessage, ToolCall, ToolChoice, ToolSpec
from engine.errors import EngineError
from engine.wire import WireToolCall

__all__ = [
    "MAX_CALLS",
    "MAX_TOOL_CALL_BYTES",
    "TooLarge",
    "ToolCallAssembler",
    "openai_message",
    "openai_tool_choice",
    "openai_tools",
]

MAX_TOOL_CALL_BYTES = 1 << 20  # all of a reply's calls together: names, ids and arguments
MAX_CALLS = 128  # in one reply


class TooLarge(EngineError):
    """A reply's tool calls went past MAX_TOOL_CALL_BYTES or MAX_CALLS; the message says which."""


@dataclass(slots=True)
class _Pieces:
    id: str = ""
    name: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)


class ToolCallAssembler:
    """Collects one reply's tool-call pieces (`add`), then gives the calls in index order (`calls`).

    Pieces are matched to calls by their index; a server that sends no index (some OpenAI-
    compatible proxies) starts a new call with each new id, and continues the last call
    otherwise. An id is kept from its first piece (servers that repeat it in every delta do not
    make it longer); a name piece equal to the whole name so far is such a repeat, too.
    A call that came without an id gets one, so that its result can name it.
    """

    def __init__(self, max_bytes: int = MAX_TOOL_CALL_BYTES, max_calls: int = MAX_CALLS) -> None:
        self._max_bytes, self._max_calls = max_bytes, max_calls
        self._calls: dict[int, _Pieces] = {}
        self._by_id: dict[str, int] = {}
        self._last: int | None = None
        self._bytes = 0

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, piece: WireToolCall) -> None:
        """Add one piece; raises TooLarge past the caps, before anything more is kept."""
        index = self._index_of(piece)
        self._bytes += _size(piece.id) + _size(piece.name) + _size(piece.arguments)
        if self._bytes > self._max_bytes:
            raise TooLarge("tool_call_too_large", f"tool calls over {_amount(self._max_bytes)}")
        call = self._calls.get(index)
        if call is None:
            if len(self._calls) >= self._max_calls:
                raise TooLarge("tool_call_too_large", f"more than {self._max_calls} tool calls in one reply")
            call = self._calls[index] = _Pieces()
        self._last = index
        if piece.id and not call.id:
            call.id = piece.id
            self._by_id.setdefault(piece.id, index)
        if piece.name and not (call.name and piece.name == "".join(call.name)):
            call.name.append(piece.name)
        if piece.arguments:
            call.arguments.append(piece.arguments)

    def calls(self) -> tuple[ToolCall, ...]:
        out = []
        for index in sorted(self._calls):
            call = self._calls[index]
            out.append(
                ToolCall(
                    call.id or f"call_{uuid.uuid4().hex[:24]}",
                    _joined(call.name),
                    _joined(call.arguments),
                )
            )
        return tuple(out)

    def _index_of(self, piece: WireToolCall) -> int:
        if piece.index is not None:
            return piece.index
        if piece.id and piece.id in self._by_id:
            return self._by_id[piece.id]
        if self._last is None or (piece.id and self._calls[self._last].id not in ("", piece.id)):
            return max(self._calls, default=-1) + 1
        return self._last


def _amount(n: int) -> str:
    return f"{n >> 20} MiB" if n % (1 << 20) == 0 else f"{n:,} bytes"


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _joined(pieces: list[str]) -> str:
    """The pieces as one text. A character that a server escaped as a surrogate pair and split
    between two deltas arrives as two lone halves: they are joined into the character here (a
    half left alone becomes U+FFFD, since no UTF-8 text can hold it)."""
    text = "".join(pieces)
    if not any("\ud800" <= c <= "\udfff" for c in text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


# -- the request (OpenAI chat completions) ---------------------------------------------------


def openai_tools(tools: tuple[ToolSpec, ...]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": json.loads(t.parameters)},
        }
        for t in tools
    ]


def openai_tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def openai_message(m: ChatMessage) -> dict[str, Any]:
    """One message as OpenAI's chat completions take it: an assistant message with the calls it
    made (its content null when it said nothing), a tool message with the id of its call."""
    if m.tool_calls:
        return {
            "role": m.role,
            "content": m.content or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls
            ],
        }
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    return {"role": m.role, "content": m.content}
