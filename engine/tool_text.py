"""Tool calls written as text by a local model, in the format its chat template teaches it: Hermes/Qwen
`<tool_call>\\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\\n</tool_call>` (`HermesCalls`),
or a whole reply of JSON, Llama 3.x's and Mistral's (`JsonReplyCalls`).

Owns: splitting the model's streamed text into the answer (sent as it comes, with a possible
start of `<tool_call>` held back) and the calls (parsed when their block closes, or when the
reply ends inside one). A block that names no tool stays in the answer, as the model wrote it;
arguments that are not JSON come out as written, for the caller to judge.

Must not: know about llama.cpp, events or the tools themselves. Never imports `app`, `store` or Qt.
"""

from __future__ import annotations

import json
import re
import uuid

from engine.commands import ToolCall

__all__ = ["HermesCalls", "JsonReplyCalls", "ToolText"]

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
_ARGUMENTS = re.compile(r'"arguments"\s*:\s*')


class HermesCalls:
    """One reply's text in (`feed`, then `finish`), its answer text out; `calls` at the end."""

    def __init__(self) -> None:
        self._buf = ""
        self._inside = False
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> str:
        """The answer text that can be shown now."""
        self._buf += text
        out: list[str] = []
        while True:
            if self._inside:
                end = self._buf.find(CLOSE)
                if end < 0:
                    break
                block, self._buf, self._inside = self._buf[:end], self._buf[end + len(CLOSE) :], False
                out.append(self._block(block))
                continue
            start = self._buf.find(OPEN)
            if start >= 0:
                out.append(self._answer(self._buf[:start]))
                self._buf, self._inside = self._buf[start + len(OPEN) :], True
                continue
            keep = _partial_open(self._buf)
            out.append(self._answer(self._buf[: len(self._buf) - keep]))
            self._buf = self._buf[len(self._buf) - keep :]
            break
        return "".join(out)

    def finish(self) -> str:
        """The reply ended: what was held back. A block left open (the token limit) is read as a call."""
        buf, self._buf = self._buf, ""
        if self._inside:
            self._inside = False
            return self._block(buf, closed=False)
        return self._answer(buf)

    def _answer(self, text: str) -> str:
        # The model's line breaks between and after calls are not an answer.
        return "" if self.calls and not text.strip() else text

    def _block(self, block: str, *, closed: bool = True) -> str:
        call = _parse(block)
        if call is None:  # as the model wrote it: a block cut before its name gets no closing tag
            return OPEN + block + (CLOSE if closed else "")
        self.calls.append(call)
        return ""


def _partial_open(text: str) -> int:
    """How many characters at the end of `text` could be the start of `<tool_call>`."""
    for n in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-n:]):
            return n
    return 0


def _parse(block: str) -> ToolCall | None:
    call_id = f"call_{uuid.uuid4().hex[:24]}"
    try:
        value = json.loads(block)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"]:
        arguments = value.get("arguments", value.get("parameters", {}))
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        return ToolCall(call_id, value["name"], text)
    # Not JSON (a small model's slip): the name if it can be found, the arguments as written.
    name = _NAME.search(block)
    if name is None:
        return None
    try:
        tool = json.loads(f'"{name.group(1)}"')
    except ValueError:
        tool = name.group(1)
    rest = block[name.end() :]
    found = _ARGUMENTS.search(rest)
    arguments = rest[found.end() :].strip() if found else ""
    if arguments.endswith("}") and arguments.count("}") > arguments.count("{"):
        arguments = arguments[:-1].rstrip()  # the block's own closing brace
    return ToolCall(call_id, tool, arguments)


class JsonReplyCalls:
    """Calls written as a whole reply of JSON, as Llama 3.x and Mistral templates teach:
    Llama 3.x `{"name": "get_weather", "parameters": {"city": "Oslo"}}` (after `<|python_tag|>`
    or not), Mistral `[TOOL_CALLS][{"name": "get_weather", "arguments": {...}}]` (the marker may be
    a control token the detokenizer leaves out). A reply that starts that way is held back to its
    end and read as calls; one that does not (or does not parse) is the answer, as written. Only
    a reply's start is looked at, as llama.cpp's server does for these formats."""

    def __init__(self, style: str) -> None:
        self._style = style  # "llama3" | "mistral"
        self._markers = ("<|python_tag|>",) if style == "llama3" else ("[TOOL_CALLS]",)
        self._opens = "{" if style == "llama3" else "[{"
        self._buf = ""
        self._decided: bool | None = None  # None: not yet; True: a call is being written; False: text
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> str:
        if self._decided is False:
            return text
        self._buf += text
        if self._decided is None:
            head = self._buf.lstrip()
            for marker in self._markers:
                if head.startswith(marker):
                    head = head[len(marker) :].lstrip()
            if not head or any(m.startswith(head) for m in self._markers):
                return ""  # whitespace or the start of a marker: undecided
            self._decided = head[0] in self._opens
            if not self._decided:
                out, self._buf = self._buf, ""
                return out
        return ""

    def finish(self) -> str:
        buf, self._buf = self._buf, ""
        if not self._decided:
            return buf
        body = buf.strip()
        for marker in self._markers:
            if body.startswith(marker):
                body = body[len(marker) :].strip()
        calls = _json_calls(body, self._style)
        if calls is None:
            return buf  # not a call after all: the model's text, as it wrote it
        self.calls.extend(calls)
        return ""


def _json_calls(body: str, style: str) -> list[ToolCall] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    items = value if isinstance(value, list) else [value]
    calls = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            return None
        arguments = item.get("arguments", item.get("parameters", {}))
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        # Mistral's templates take only 9 letters and digits as a call's id.
        call_id = uuid.uuid4().hex[:9] if style == "mistral" else f"call_{uuid.uuid4().hex[:24]}"
        calls.append(ToolCall(call_id, item["name"], text))
    return calls or None


ToolText = HermesCalls | JsonReplyCalls
