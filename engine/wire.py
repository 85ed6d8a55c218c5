"""Remote providers' wire formats: the bytes of a streamed response body in, `WireItem`s out.

Owns the framing (server-sent events per the WHATWG spec, NDJSON) and the declarative
mappings in `wire_formats.toml` that say where each format keeps its text, tool-call pieces,
finish reason, usage and errors, compiled once at load. Any chunking of a body gives the same items.

Must not do I/O beyond reading a mapping file, know about HTTP, Hearth's stream events or
generation state, or grow per-provider code: `engine.remote` feeds bytes in and turns the
items into events, and a new provider is a TOML table. Never imports `app`, `store` or Qt.
"""

from __future__ import annotations

import codecs
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from engine.errors import EngineError

__all__ = [
    "QUEUE_NOTE",
    "EventRules",
    "StreamDecoder",
    "WireEnd",
    "WireError",
    "WireFormat",
    "WireFormatError",
    "WireItem",
    "WireQueued",
    "WireSession",
    "WireText",
    "WireToolCall",
    "WireUsage",
    "load_formats",
]


@dataclass(frozen=True, slots=True)
class WireText:
    """Text to append to the reply; with `replace`, the whole reply so far becomes `text`."""

    text: str
    replace: bool = False


@dataclass(frozen=True, slots=True)
class WireEnd:
    """The provider finished: its finish reason ("stop", "length", ...) or "done" for a bare marker."""

    reason: str


@dataclass(frozen=True, slots=True)
class WireError:
    """ "provider_error": the provider reported a failure; "malformed_event": an event we cannot read."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class WireUsage:
    """Token counts as the provider reported them (either may be missing)."""

    prompt_tokens: int | None
    completion_tokens: int | None


@dataclass(frozen=True, slots=True)
class WireSession:
    """The provider's own id for this conversation (Dify's conversation_id), to send next turn."""

    value: str


@dataclass(frozen=True, slots=True)
class WireQueued:
    """A Hearth host says the request waits its turn: `ahead` answers come first (0: its turn)."""

    ahead: int


@dataclass(frozen=True, slots=True)
class WireToolCall:
    """A piece of a tool call, as one streamed delta carries it: the call's `index` in the reply
    (None when the server sends none), and pieces of its id, name and arguments ("" when absent).
    engine.tool_calls puts the pieces together."""

    index: int | None
    id: str = ""
    name: str = ""
    arguments: str = ""


WireItem = WireText | WireEnd | WireError | WireUsage | WireSession | WireQueued | WireToolCall

# The SSE comment in which a Hearth host gives a waiting request its place (app.server.wire).
QUEUE_NOTE = "hearth-queued"


class WireFormatError(EngineError):
    """A wire-format mapping is malformed; the message names the file, the format and the key.
    Code: bad_wire_format."""

    def __init__(self, code: str, message: str, *, format_name: str | None = None, key: str | None = None) -> None:
        super().__init__(code, message)
        self.format_name = format_name
        self.key = key


# A path is a tuple of dict keys and list indices; a rule holds alternatives, first present wins.
# Not jsonpath-ng: its find() costs about 9 us per path (v1.16, measured), 30 us for the six
# paths of an OpenAI chunk, most of the per-chunk budget. Mappings need only keys and indices,
# which this walk resolves in a fraction of a microsecond.
PathSteps = tuple[str | int, ...]
Paths = tuple[PathSteps, ...]
_STEP = re.compile(r"""\.([A-Za-z_][\w-]*)|\[(-?\d+)\]|\["([^"]*)"\]|\['([^']*)'\]""")
_PATH = re.compile(rf"\$(?:{_STEP.pattern})*")


def _compile_path(text: str) -> PathSteps:
    if not _PATH.fullmatch(text):
        raise ValueError(f'cannot read path {text!r}: use $ then .key, [index] or ["odd key"]')
    return tuple(int(i) if i else n or d or q for n, i, d, q in _STEP.findall(text))


def _get(obj: Any, steps: PathSteps) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
            obj = obj[step]
        elif isinstance(obj, dict):
            obj = obj.get(step)
        else:
            return None
    return obj


def _first(obj: Any, paths: Paths) -> Any:
    for steps in paths:
        value = _get(obj, steps)
        if value is not None:
            return value
    return None


@dataclass(frozen=True, slots=True)
class EventRules:
    """Where one kind of event keeps each thing; see the schema in wire_formats.toml."""

    text: Paths = ()
    replace: Paths = ()
    error: Paths = ()
    error_code: Paths = ()
    end: Paths = ()
    end_always: bool = False
    end_reason: Paths = ()
    usage_prompt: Paths = ()
    usage_completion: Paths = ()
    outputs: Paths = ()
    output_keys: tuple[str, ...] = ()
    session: Paths = ()
    tool_calls: Paths = ()


@dataclass(frozen=True)
class WireFormat:
    """One provider's wire format, compiled: framing plus either `rules` or per-type `events`."""

    name: str
    framing: str
    end_markers: frozenset[str] = frozenset()
    event_type: Paths = ()
    rules: EventRules | None = None
    events: Mapping[str, EventRules] | None = None
    fields: Mapping[str, EventRules] = field(default_factory=dict)
    request: str | None = None  # the request shape its server expects, when not the format's name

    @property
    def carries_tools(self) -> bool:
        """Whether its replies can hold tool calls (a `tool_calls` rule somewhere)."""
        rules = [self.rules, *(self.events or {}).values(), *self.fields.values()]
        return any(r is not None and r.tool_calls for r in rules)


_Fail = Callable[[str, str], NoReturn]
_RULE_KEYS = frozenset(
    {
        "text",
        "replace",
        "error",
        "error_code",
        "end",
        "end_reason",
        "usage",
        "outputs",
        "output_keys",
        "session",
        "tool_calls",
    }
)
_FORMAT_KEYS = _RULE_KEYS | {"framing", "end_markers", "event_type", "events", "fields", "request"}


def load_formats(path: Path | None = None) -> dict[str, WireFormat]:
    """The formats in `path` (default: the shipped wire_formats.toml), by name.

    A file of your own holds only its own formats; merge with `{**load_formats(), **mine}`.
    """
    if path is None:
        where, text = "wire_formats.toml", resources.files("engine").joinpath("wire_formats.toml").read_text("utf-8")
    else:
        where, text = str(path), path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise WireFormatError("bad_wire_format", f"{where}: not valid TOML: {e}") from e
    return {name: _compile_format(where, name, table) for name, table in data.items()}


def _compile_format(where: str, name: str, table: Any) -> WireFormat:
    def fail(key: str, problem: str) -> NoReturn:
        raise WireFormatError(
            "bad_wire_format", f"{where}: format {name!r}, key {key!r}: {problem}", format_name=name, key=key
        )

    def check(ok: bool, key: str, problem: str) -> None:
        if not ok:
            fail(key, problem)

    check(isinstance(table, dict), name, "each format must be a table")
    for key in sorted(set(table) - _FORMAT_KEYS):
        fail(key, f"unknown key (known: {', '.join(sorted(_FORMAT_KEYS))})")
    framing, markers, events = table.get("framing"), table.get("end_markers", []), table.get("events")
    request, fields = table.get("request"), table.get("fields", {})
    check(framing in ("sse", "ndjson"), "framing", f'must be "sse" or "ndjson", not {framing!r}')
    check(
        isinstance(markers, list) and all(isinstance(m, str) and m for m in markers),
        "end_markers",
        "must be a list of non-empty strings",
    )
    check(
        request is None or (isinstance(request, str) and bool(request)),
        "request",
        'must name a request shape, e.g. "openai"',
    )
    check(
        isinstance(fields, dict) and (not fields or framing == "sse"),
        "fields",
        "must be a table of SSE field names (SSE framing only)",
    )
    rule_keys = sorted(set(table) & _RULE_KEYS)
    if events is None:
        check(bool(rule_keys), "text", "a format needs rules (text, end, error, ...) or an `events` table")
        check("event_type" not in table, "event_type", "only formats with an `events` table have event types")
    else:
        if rule_keys:
            fail(rule_keys[0], "with an `events` table, rules go under events.<type>")
        check(isinstance(events, dict) and bool(events), "events", "must be a table of event types")
    return WireFormat(
        name=name,
        framing=framing,
        end_markers=frozenset(markers),
        event_type=_paths(fail, "event_type", table.get("event_type")),
        rules=None if events else _compile_rules(fail, "", {k: table[k] for k in rule_keys}),
        events={t: _compile_rules(fail, f"events.{t}", r) for t, r in events.items()} if events else None,
        fields={f: _compile_rules(fail, f"fields.{f}", r) for f, r in fields.items()},
        request=request,
    )


def _compile_rules(fail: _Fail, prefix: str, table: Any) -> EventRules:
    def key(k: str) -> str:
        return f"{prefix}.{k}" if prefix else k

    def paths(k: str, source: Any = table) -> Paths:
        return _paths(fail, key(k), source.get(k.rpartition(".")[2]))

    if not isinstance(table, dict):
        fail(prefix, "must be a table of rules")
    for k in sorted(set(table) - _RULE_KEYS):
        fail(key(k), f"unknown rule (known: {', '.join(sorted(_RULE_KEYS))})")
    usage, output_keys, end = table.get("usage", {}), table.get("output_keys", []), table.get("end")
    if not isinstance(usage, dict) or set(usage) - {"prompt", "completion"}:
        fail(key("usage"), "must be { prompt = path, completion = path }")
    if not isinstance(output_keys, list) or not all(isinstance(k, str) for k in output_keys):
        fail(key("output_keys"), "must be a list of strings")
    return EventRules(
        text=paths("text"),
        replace=paths("replace"),
        error=paths("error"),
        error_code=paths("error_code"),
        end=() if end is True else paths("end"),
        end_always=end is True,
        end_reason=paths("end_reason"),
        usage_prompt=paths("usage.prompt", usage),
        usage_completion=paths("usage.completion", usage),
        outputs=paths("outputs"),
        output_keys=tuple(output_keys),
        session=paths("session"),
        tool_calls=paths("tool_calls"),
    )


def _paths(fail: _Fail, key: str, value: Any) -> Paths:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(p, str) for p in items):
        fail(key, f'must be a path like "$.a.b[0]" or a list of them, not {value!r}')
    try:
        return tuple(_compile_path(p) for p in items)
    except ValueError as e:
        fail(key, str(e))


_LINE_END = re.compile(r"\r\n|\r|\n")
_SNIPPET = 60


class StreamDecoder:
    """Decodes one response body: `feed` bytes as they arrive, `close` at the end of the body.

    Items come out per event, so the chunking of the bytes never changes them. At most one
    `WireEnd`, always the last item: with end markers, a finish reason waits for the marker
    (usage sent after it comes first) or for `close`; events after the end are ignored.
    `close` never invents an end: a body that stops without one yields none, and the caller
    decides the reply is incomplete. A `WireError` does not stop decoding; the caller does.
    Deviation from WHATWG: `close` dispatches a last event that lacks its blank line.
    """

    def __init__(self, fmt: WireFormat) -> None:
        self._fmt = fmt
        self._sse = fmt.framing == "sse"
        self._utf8 = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._tail: list[str] = []  # text after the last line ending
        self._data: list[str] = []  # SSE data lines of the event being read
        self._event_name = ""
        self._streamed = False
        self._session: str | None = None  # reported once per distinct value
        self._reason: str | None = None  # finish reason held until an end marker
        self._ended = False
        self._out: list[WireItem] = []

    def feed(self, data: bytes) -> list[WireItem]:
        self._lines(self._utf8.decode(data), final=False)
        return self._take()

    def close(self) -> list[WireItem]:
        self._lines(self._utf8.decode(b"", final=True), final=True)
        if self._data:
            self._dispatch()
        if self._reason is not None:
            self._finish(self._reason)
        return self._take()

    def _take(self) -> list[WireItem]:
        out, self._out = self._out, []
        return out

    def _lines(self, text: str, *, final: bool) -> None:
        self._tail.append(text)
        if not final and "\n" not in text and "\r" not in text:
            return
        buf = "".join(self._tail)
        held = "\r" if not final and buf.endswith("\r") else ""  # maybe half of a CRLF split across chunks
        lines = _LINE_END.split(buf[: len(buf) - len(held)])
        rest = "" if final else lines.pop() + held  # at the end, the last line may lack its line ending
        self._tail = [rest] if rest else []
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        if not self._sse:
            self._payload(line, "")
        elif not line:
            if self._data:
                self._dispatch()
            self._event_name = ""
        elif line[0] == ":":
            note, _, ahead = line[1:].strip().partition(" ")
            if note == QUEUE_NOTE and ahead.isascii() and ahead.isdigit() and len(ahead) < 7 and not self._ended:
                self._out.append(WireQueued(int(ahead)))
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event_name = value
            elif name in self._fmt.fields:
                self._payload(value, name, self._fmt.fields[name])

    def _dispatch(self) -> None:
        payload, self._data = "\n".join(self._data), []
        name, self._event_name = self._event_name or "message", ""
        self._payload(payload, name)

    def _payload(self, payload: str, sse_name: str, rules: EventRules | None = None) -> None:
        fmt = self._fmt
        if self._ended or not payload.strip():
            return
        if rules is None and payload.strip() in fmt.end_markers:
            self._finish(self._reason or "done")
            return
        try:
            obj = json.loads(payload)
        except (ValueError, RecursionError):
            self._malformed("is not valid JSON", payload)
            return
        if not isinstance(obj, dict):
            self._malformed("is not a JSON object", payload)
            return
        if rules is None:
            if fmt.events is None:
                rules = fmt.rules
            else:  # the JSON's own type wins; the SSE `event:` name is the fallback
                kind = _first(obj, fmt.event_type)
                rules = fmt.events.get(kind if isinstance(kind, str) else sse_name)
        if rules is not None:
            self._apply(rules, obj)

    def _apply(self, rules: EventRules, obj: dict[str, Any]) -> None:
        out = self._out
        message = _first(obj, rules.error)
        if _present(message):
            text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
            code = _first(obj, rules.error_code)
            out.append(WireError("provider_error", text if code in (None, "") else f"{text} ({code})"))
            return
        replaced = _first(obj, rules.replace)
        if isinstance(replaced, str):
            out.append(WireText(replaced, replace=True))
            self._streamed = bool(replaced)
        text = _first(obj, rules.text)
        if isinstance(text, str) and text:
            out.append(WireText(text))
            self._streamed = True
        if rules.outputs and not self._streamed:
            rendered = _render_outputs(_first(obj, rules.outputs), rules.output_keys)
            if rendered:
                out.append(WireText(rendered))
                self._streamed = True
        calls = _first(obj, rules.tool_calls)
        if isinstance(calls, list):
            out.extend(piece for delta in calls if (piece := _tool_call_piece(delta)) is not None)
        session = _first(obj, rules.session)
        if isinstance(session, str) and session and session != self._session:
            self._session = session
            out.append(WireSession(session))
        prompt, completion = _count(obj, rules.usage_prompt), _count(obj, rules.usage_completion)
        if prompt is not None or completion is not None:
            out.append(WireUsage(prompt, completion))
        value = True if rules.end_always else _first(obj, rules.end)
        if not _present(value):
            return
        reason = value if isinstance(value, str) else _first(obj, rules.end_reason)
        reason = reason if isinstance(reason, str) and reason else "stop"
        if self._fmt.end_markers:
            self._reason = self._reason or reason
        else:
            self._finish(reason)

    def _finish(self, reason: str) -> None:
        self._out.append(WireEnd(reason))
        self._ended, self._reason = True, None

    def _malformed(self, problem: str, payload: str) -> None:
        snippet = "".join(c if c.isprintable() else " " for c in payload[:_SNIPPET])
        more = "…" if len(payload) > _SNIPPET else ""
        self._out.append(WireError("malformed_event", f'the server sent an event that {problem}: "{snippet}{more}"'))


def _tool_call_piece(delta: Any) -> WireToolCall | None:
    """One OpenAI-shaped tool-call delta ({index, id, function: {name, arguments}}) as a piece.
    Arguments sent as a JSON object instead of text (some servers) become their JSON text."""
    if not isinstance(delta, dict):
        return None
    index, function = delta.get("index"), delta.get("function")
    function = function if isinstance(function, dict) else {}
    args = function.get("arguments")
    if args is not None and not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False)
    piece = WireToolCall(
        index if type(index) is int and index >= 0 else None,
        _text(delta.get("id")),
        _text(function.get("name")),
        args or "",
    )
    return piece if piece.index is not None or piece.id or piece.name or piece.arguments else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _present(value: Any) -> bool:
    return value is not None and value is not False and value not in ("", 0, [], {})


def _count(obj: Any, paths: Paths) -> int | None:
    value = _first(obj, paths)
    return value if type(value) is int and value >= 0 else None


def _render_outputs(outputs: Any, keys: tuple[str, ...]) -> str:
    """A workflow's result as text: a named string output if there is one, else all of it as JSON."""
    if isinstance(outputs, str):
        return outputs
    if not isinstance(outputs, dict) or not outputs:
        return ""
    for key in keys:
        value = outputs.get(key)
        if isinstance(value, str) and value:
            return value
    return json.dumps(outputs, ensure_ascii=False, indent=2)
