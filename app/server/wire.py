"""The OpenAI chat-completions API's shapes: a request checked into a ChatRequest, and the
bytes of responses, stream chunks and errors.

Owns what a client sends and receives, field by field (the subset Hearth serves: messages,
model, stream, stream_options.include_usage, max_tokens / max_completion_tokens, temperature,
top_p, seed, stop, tools and tool_choice (app.server.tools_wire), and Hearth's own
`hearth.collections`: the collections of a person's documents the answer may use). A field Hearth
cannot honour (the legacy functions, n > 1, logprobs, ...) is refused with a message that names it,
rather than silently ignored. Errors are OpenAI-shaped
(`{"error": {"message", "type", "code", "param"}}`) and never echo a key or a token.
Must not: run anything, or import Starlette (app.server.http does the HTTP).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from engine.commands import ChatMessage, ToolChoice, ToolSpec
from engine.errors import HearthError
from engine.wire import QUEUE_NOTE
from store.limits import too_long_message

__all__ = [
    "ApiError",
    "ChatRequest",
    "chunk",
    "completion",
    "done",
    "error_body",
    "parse_chat_request",
    "parse_json_object",
    "queue_note",
]

MAX_MESSAGES = 4096
MAX_STOP = 4
MAX_COLLECTIONS = 16
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
# Fields that change what a completion means and that Hearth does not do: refused by name.
_UNSUPPORTED = (
    "functions",
    "function_call",
    "logprobs",
    "top_logprobs",
    "audio",
    "modalities",
    "prediction",
    "response_format",
)


class ApiError(HearthError):
    """An error the client gets as an OpenAI-shaped JSON body with the HTTP `status`. `code` is
    the body's code; None sends null, as OpenAI does for plain request errors, and the error's
    code in Hearth's tree is then the status as a word (http_400)."""

    def __init__(
        self,
        code: str | None,
        message: str,
        *,
        status: int,
        type_: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code or f"http_{status}", message)
        self.status, self.type, self.param = status, type_, param
        self.api_code = code  # what the body says (None: null, as OpenAI sends for plain request errors)
        self.headers = headers or {}

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.api_code, self.param)


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()  # the `hearth.collections` extension: retrieval from these
    tools: tuple[ToolSpec, ...] = ()  # the model may ask for these to be called (app.server.tools_wire)
    tool_choice: ToolChoice = "auto"


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object of valid Unicode; ApiError(400) saying what is wrong."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(None, f"The request body is not valid JSON: {e}.", status=400) from None
    except RecursionError:
        raise ApiError(
            None,
            "The request body's JSON is nested too deeply to read: send the messages as a flat list of objects.",
            status=400,
        ) from None
    except ValueError:  # the only other one json raises: an integer past sys.get_int_max_str_digits()
        raise ApiError(
            None,
            f"The request body holds a number too long to read (over {sys.get_int_max_str_digits()} digits).",
            status=400,
        ) from None
    if (bad := _lone_surrogate(body)) is not None:
        where, what = bad
        raise ApiError(
            None,
            f"{what} holds a lone UTF-16 surrogate (such as \\ud800), which is not text: send valid Unicode.",
            status=400,
            param=where,
        )
    if not isinstance(body, dict):
        raise ApiError(None, "The request body must be a JSON object.", status=400)
    return body


def parse_chat_request(raw: bytes) -> ChatRequest:
    """The request body, checked; ApiError(400) naming the first field that is wrong."""
    body = parse_json_object(raw)
    for name in _UNSUPPORTED:
        if body.get(name) not in (None, [], {}, False) and not (name == "response_format" and _plain_text(body[name])):
            raise ApiError(
                "unsupported_parameter", f"`{name}` is not supported by Hearth's server.", status=400, param=name
            )
    if body.get("n", 1) != 1:
        raise ApiError("unsupported_parameter", "Only n = 1 is supported.", status=400, param="n")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ApiError(None, "`model` is required: one of the ids GET /v1/models lists.", status=400, param="model")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ApiError(None, "`stream_options` must be an object.", status=400, param="stream_options")
    from app.server.tools_wire import parse_tool_choice, parse_tools

    tools = parse_tools(body.get("tools"))
    return ChatRequest(
        model=model.strip(),
        messages=_messages(body.get("messages")),
        tools=tools,
        tool_choice=parse_tool_choice(body.get("tool_choice"), tools),
        stream=_bool(body, "stream"),
        include_usage=bool(options.get("include_usage", False)),
        max_tokens=_int(body, "max_completion_tokens", 1, 1_000_000) or _int(body, "max_tokens", 1, 1_000_000),
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        seed=_int(body, "seed", -(2**63), 2**63 - 1),
        stop=_stop(body.get("stop")),
        collections=_collections(body.get("hearth")),
    )


def _collections(raw: object) -> tuple[str, ...]:
    """Hearth's extension field, `"hearth": {"collections": ["NAME", ...]}`: the collections
    whose passages the answer may use (retrieval, as `hearth ask --docs`)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise ApiError(None, '`hearth` must be an object, like {"collections": ["notes"]}.', status=400, param="hearth")
    if unknown := sorted(set(raw) - {"collections"}):
        raise ApiError(
            None,
            f"`hearth.{unknown[0][:40]}` is not a Hearth extension (only `collections`).",
            status=400,
            param="hearth",
        )
    names = raw.get("collections") or []
    if (
        not isinstance(names, list)
        or len(names) > MAX_COLLECTIONS
        or not all(isinstance(n, str) and n.strip() and len(n) <= 200 for n in names)
    ):
        raise ApiError(
            None,
            f"`hearth.collections` must be a list of up to {MAX_COLLECTIONS} collection names (as `hearth docs list` "
            "shows them).",
            status=400,
            param="hearth.collections",
        )
    return tuple(dict.fromkeys(n.strip() for n in names))


def _lone_surrogate(body: object) -> tuple[str, str] | None:
    """Where a string (or key) with a lone surrogate is, as (path, words): ("messages[0].content",
    "`messages[0].content`"), or ("stop", "a key of `stop`") for a key. JSON allows
    `\\ud800`, but no UTF-8 can carry it: the model, the store and the reply would fail on it later,
    as a 500. Walked without recursion (the body may be nested as deep as json allows), and a
    path is spelled out only for the string found."""
    stack: list[tuple[object, Any]] = [(body, None)]  # (value, (parent's path, key) or None at the top)
    while stack:
        value, at = stack.pop()
        if isinstance(value, str):
            if _unencodable(value):
                return _spelled(at), f"`{_spelled(at)}`"
        elif isinstance(value, dict):
            for key, item in value.items():
                if _unencodable(key):
                    return _spelled(at), "a key of the body" if at is None else f"a key of `{_spelled(at)}`"
                if isinstance(item, str | dict | list):
                    stack.append((item, (at, key)))
        elif isinstance(value, list):
            stack.extend((item, (at, i)) for i, item in enumerate(value) if isinstance(item, str | dict | list))
    return None


def _spelled(at: Any) -> str:
    keys: list[str | int] = []
    while at is not None:
        at, key = at
        keys.append(key)
    path = "".join(f"[{k}]" if isinstance(k, int) else f".{k[:40]}" for k in reversed(keys))
    return path[1:] if path.startswith(".") else path or "body"


def _unencodable(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _plain_text(value: object) -> bool:
    return isinstance(value, dict) and value.get("type") == "text"


def _messages(raw: object) -> tuple[ChatMessage, ...]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(None, "`messages` must be a non-empty list.", status=400, param="messages")
    if len(raw) > MAX_MESSAGES:
        raise ApiError(None, f"At most {MAX_MESSAGES} messages are accepted.", status=400, param="messages")
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise ApiError(None, f"`{where}` must be an object.", status=400, param=where)
        role = ROLES.get(str(m.get("role")))
        if role is None:
            raise ApiError(
                None,
                f"`{where}.role` must be one of system, developer, user, assistant, tool "
                f"(got {str(m.get('role'))[:40]!r}).",
                status=400,
                param=f"{where}.role",
            )
        out.append(_message(role, m, where))
    if out[-1].role == "assistant":
        raise ApiError(
            None,
            "The last message must not be the assistant's: there is nothing to answer.",
            status=400,
            param=f"messages[{len(out) - 1}]",
        )
    return tuple(out)


def _message(role: str, m: dict[str, Any], where: str) -> ChatMessage:
    from app.server.tools_wire import tool_calls_of, tool_result

    calls = tool_calls_of(m, where) if role == "assistant" else ()
    # An assistant message that only calls tools has null content, as OpenAI sends it.
    content = "" if calls and m.get("content") is None else _content(m.get("content"), f"{where}.content")
    if role == "tool":
        return tool_result(m, content, where)
    return ChatMessage(role, content, tool_calls=calls)


def _content(raw: object, where: str) -> str:
    """The message's text, at most the size every door takes (store.limits)."""
    text = _text(raw, where)
    if (problem := too_long_message(text)) is not None:
        raise ApiError("message_too_long", f"`{where}`: {problem}", status=400, param=where)
    return text


def _text(raw: object, where: str) -> str:
    """A string, or a list of text parts (images and audio are refused by name)."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list):
        parts = []
        for part in raw:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ApiError(
                    None, f"`{where}` holds a {str(kind)[:40]!r} part: only text is supported.", status=400, param=where
                )
            parts.append(part["text"])
        return "".join(parts)
    raise ApiError(None, f"`{where}` must be a string or a list of text parts.", status=400, param=where)


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(None, f"`{name}` must be true or false.", status=400, param=name)
    return value


def _int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(None, f"`{name}` must be a whole number from {low} to {high}.", status=400, param=name)
    return value


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ApiError(None, f"`{name}` must be a number from {low:g} to {high:g}.", status=400, param=name)
    return float(value)


def _stop(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOP:
        raise ApiError(
            None, f"`stop` must be a non-empty string or a list of up to {MAX_STOP} of them.", status=400, param="stop"
        )
    return tuple(stops)


# --- responses ------------------------------------------------------------------------------


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def error_body(
    message: str, type_: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> bytes:
    return _dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chunk(
    cid: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: str | None = None,
    usage_: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """One SSE event: `data: {chat.completion.chunk}` and a blank line. A usage-only chunk
    (stream_options.include_usage) has an empty `choices` list, as OpenAI sends it. `extra`:
    top-level fields of Hearth's own (`hearth`), which clients that do not know them ignore."""
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage_ is not None:
        body["usage"] = usage_
    body.update(extra or {})
    return b"data: " + _dumps(body) + b"\n\n"


def stream_error(message: str, code: str) -> bytes:
    """An error after the stream began (status 200 already sent), as OpenAI's streams carry it."""
    return b"data: " + error_body(message, "server_error", code) + b"\n\n"


def done() -> bytes:
    return b"data: [DONE]\n\n"


def queue_note(ahead: int | None) -> bytes:
    """An SSE comment while a request waits its turn: its place (`ahead` answers before it; 0:
    its turn has come), or None: still waiting, to keep the client's read timeout from firing.
    Comments are skipped by every SSE client; Hearth's own reads the place (engine.wire)."""
    return f": {QUEUE_NOTE} {ahead}\n\n".encode() if ahead is not None else b": waiting\n\n"


def completion(
    cid: str,
    created: int,
    model: str,
    text: str,
    reasoning: str,
    finish_reason: str,
    usage_: dict[str, int],
    extra: dict[str, Any] | None = None,
    *,
    tool_calls: list[dict[str, Any]] | None = None,
) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if reasoning:
        message["reasoning_content"] = reasoning
    if tool_calls:
        message["tool_calls"] = tool_calls
        message["content"] = text or None  # a reply that only calls tools has null content, as OpenAI's
    return _dumps(
        {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": usage_,
            **(extra or {}),
        }
    )
