"""Hearth's own export format: one conversation, every branch, as a versioned JSON object.

    {"format": "hearth.conversation", "version": 1, "exported_at": 1735689600.0,
     "title": ..., "created_at": ..., "updated_at": ..., "pinned_at": null,
     "settings": {...}, "leaf_id": 7,
     "messages": [{"id": 1, "parent_id": null, "role": "user", "content": ..., "reasoning": "",
                   "created_at": ..., "updated_at": ..., "generation": null | {"model", "state",
                   "stop_reason", "cancel_reason", "error_code", "error_message", "created_at",
                   "finished_at", "retrieval_note", "metrics": {"ttft_ms": ..., "retrieval_ms": ...},
                   "route": "local" | a provider's name, "route_reason": ...},
                   "sources": [{"ordinal": 1, "path", "page", "heading", "start", "end", "score",
                                "text", "collection"}, ...]}, ...]}

("sources" only on an answer that has any: the passages it was given, store.sources.)

Version 2 adds tool use (app.core.tool_loop): an answer that asked for tools has
"tool_calls": [{"id", "name", "arguments"}, ...] (the arguments as the model wrote them), and a
message with the role "tool" holds one call's result as its content, with "tool_call_id" (the
call it answers) and "tool": {"name", "status", "latency_ms", "truncated"} (how it went). A
conversation without tool steps is written as version 1, so that a Hearth from before tools
still imports it; one with them as version 2, which such a Hearth refuses as newer (it would
otherwise refuse the "tool" role with a less useful reason). A version 1 file has no tool keys.
A tool message must answer a call of the answer above it, a call's parts are text and the
answer's calls fit in store.limits' size, else that conversation is refused with why; tool
calls on a message that is not an answer are left out and said so.

`to_json` writes it (settings without anything secret-looking); `from_json` reads one object
back, checking every field, and refuses a newer version. An answer's sources that are malformed
or over the store's bounds are left out, the rest of the conversation imported, and the import
says so (`Incoming.repaired`). Of the settings it keeps only the chat
settings a person could have chosen (values.importable_settings): a provider or an import key in
a file is not taken. Plain values only: no store, no Qt.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import get_args

from app.core.exchange.values import (
    Incoming,
    Rejected,
    clean_text,
    clean_title,
    importable_settings,
    public_settings,
    time_of,
)
from engine.commands import ToolCall
from engine.states import GenerationState
from store.errors import StoreError
from store.exchange import ROLES, ExchangeConversation, ExchangeGeneration, ExchangeMessage
from store.limits import MAX_MESSAGE_BYTES, megabytes
from store.sources import MAX_NOTE_CHARS, Source, check_sources
from store.tool_rows import ToolRun, ToolStatus

__all__ = ["FORMAT", "VERSION", "from_json", "is_hearth", "to_json"]

FORMAT = "hearth.conversation"
VERSION = 2  # the newest this Hearth reads and writes
_BEFORE_TOOLS = 1  # what a conversation without tool steps is written as
_TOOL_NAME_MAX = 200  # a tool's name as a file gives it in a run record: longer is cut
_MAX_ROUTE_CHARS = 200  # a route's name as a file gives it: longer is cut
_STATUSES: frozenset[str] = frozenset(get_args(ToolStatus))
_METRICS = frozenset(
    {
        "prompt_tokens",
        "cached_tokens",
        "completion_tokens",
        "command_latency_ms",
        "ttft_ms",
        "tokens_per_s",
        "total_ms",
        "finalization_lag_ms",
        "retrieval_ms",
    }
)
_UNFINISHED = {GenerationState.QUEUED.value, GenerationState.STREAMING.value}


class _Bad(Exception):
    """One conversation in the file is malformed; the message says where."""


def is_hearth(value: object) -> bool:
    return isinstance(value, dict) and value.get("format") == FORMAT


def to_json(conversation: ExchangeConversation, *, exported_at: float | None = None) -> dict[str, object]:
    return {
        "format": FORMAT,
        "version": VERSION if any(m.tool_calls or m.role == "tool" for m in conversation.messages) else _BEFORE_TOOLS,
        "exported_at": time.time() if exported_at is None else exported_at,
        "title": conversation.title,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "pinned_at": conversation.pinned_at,
        "settings": public_settings(conversation.settings),
        "leaf_id": _id_out(conversation.leaf_key),
        "messages": [_message_out(m) for m in conversation.messages],
    }


def _message_out(m: ExchangeMessage) -> dict[str, object]:
    out: dict[str, object] = {
        "id": _id_out(m.key),
        "parent_id": _id_out(m.parent_key),
        "role": m.role,
        "content": m.content,
        "reasoning": m.reasoning,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "generation": _generation_out(m.generation),
    }
    if m.sources:
        out["sources"] = [
            {
                "ordinal": s.ordinal,
                "path": s.path,
                "page": s.page,
                "heading": s.heading,
                "start": s.start,
                "end": s.end,
                "score": s.score,
                "text": s.text,
                "collection": s.collection,
            }
            for s in m.sources
        ]
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in m.tool_calls]
    if m.role == "tool":
        run = m.tool_run or ToolRun("", "unknown")
        out["tool_call_id"] = m.tool_call_id
        out["tool"] = {
            "name": run.name,
            "status": run.status,
            "latency_ms": run.latency_ms,
            "truncated": run.truncated,
        }
    return out


def from_json(value: dict[str, object]) -> Incoming | Rejected:
    """One exported conversation, checked; Rejected (with why) when it cannot be imported."""
    title = clean_title(value.get("title"), "Imported conversation")
    version = value.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        return Rejected(title, "its format version is missing")
    if version > VERSION:
        return Rejected(
            title,
            f"it was exported by a newer Hearth (format version {version}; this one reads "
            f"version {VERSION}): update Hearth to import it",
        )
    try:
        return _read(value, title)
    except _Bad as e:
        return Rejected(title, str(e))


def _read(value: dict[str, object], title: str) -> Incoming:
    created_at = _time(value, "created_at", "the conversation")
    updated_at = time_of(value.get("updated_at")) or created_at
    pinned_at = time_of(value.get("pinned_at"))
    settings = value.get("settings", {})
    if not isinstance(settings, dict):
        raise _Bad("its settings are not an object")
    raw_messages = value.get("messages")
    if not isinstance(raw_messages, list):
        raise _Bad("it has no list of messages")
    mended: list[str] = []  # what was left out of the file's messages, for a person
    messages = _in_tree_order([_message(raw, i, mended) for i, raw in enumerate(raw_messages)])
    leaf = value.get("leaf_id")
    leaf_key = None if leaf is None else _key(leaf, "leaf_id")
    if leaf_key is None and messages:
        leaf_key = messages[-1].key
    if leaf_key is not None and leaf_key not in {m.key for m in messages}:
        raise _Bad(f"its branch shown ends at message {leaf_key}, which is not in it")
    conversation = ExchangeConversation(
        title=title,
        created_at=created_at,
        updated_at=updated_at,
        settings=importable_settings(settings),
        messages=tuple(messages),
        leaf_key=leaf_key,
        pinned_at=pinned_at,
    )
    return Incoming(conversation, _import_key(conversation), repaired="; ".join(mended))


def _import_key(conversation: ExchangeConversation) -> str:
    """Where it came from, by its content: its start and first words. Never a key written in the
    file, which could claim another conversation's (a later real import would then be skipped).
    A ChatGPT chat exported from one Hearth still meets its original in another: the store also
    knows a conversation by its start and first message (store.exchange)."""
    first = next((m for m in conversation.messages if m.parent_key is None), None)
    identity = f"{conversation.created_at!r}\n{first.created_at if first else ''!r}\n{first.content if first else ''}"
    return "hearth:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def _message(raw: object, index: int, mended: list[str]) -> ExchangeMessage:
    where = f"message {index + 1}"
    if not isinstance(raw, dict):
        raise _Bad(f"{where} is not an object")
    key = _key(raw.get("id"), f"{where}'s id")
    parent = raw.get("parent_id")
    role = raw.get("role")
    if role not in ROLES:
        raise _Bad(f"{where} has the role {role!r}; Hearth knows user, assistant, system and tool")
    content, reasoning = raw.get("content"), raw.get("reasoning", "")
    if not isinstance(content, str) or not isinstance(reasoning, str):
        raise _Bad(f"{where} has no text (content)")
    created_at = _time(raw, "created_at", where)
    sources, problem = _sources(raw.get("sources"), role)
    if problem is not None:
        mended.append(f"the sources of {where} were left out ({problem})")
    calls = _tool_calls(raw.get("tool_calls"), where)
    if calls and role != "assistant":
        mended.append(f"the tool calls of {where} were left out (only an answer asks for tools)")
        calls = ()
    call_id, run = _tool_result(raw, where) if role == "tool" else (None, None)
    return ExchangeMessage(
        key=key,
        parent_key=None if parent is None else _key(parent, f"{where}'s parent_id"),
        role=str(role),
        content=clean_text(content),
        reasoning=clean_text(reasoning),
        created_at=created_at,
        updated_at=time_of(raw.get("updated_at")) or created_at,
        generation=_generation(raw.get("generation"), where, created_at),
        sources=sources,
        tool_calls=calls,
        tool_call_id=call_id,
        tool_run=run,
    )


def _tool_calls(raw: object, where: str) -> tuple[ToolCall, ...]:
    """An answer's tool calls from the file: each one's id, name and arguments text."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _Bad(f"{where}'s tool_calls is not a list")
    calls = []
    size = 0
    for i, item in enumerate(raw):
        parts = [item.get(k) for k in ("id", "name", "arguments")] if isinstance(item, dict) else []
        if len(parts) != 3 or not all(isinstance(p, str) for p in parts) or not parts[0] or not parts[1]:
            raise _Bad(f"{where}'s tool call {i + 1} has no id, name or arguments text")
        call_id, name, arguments = (clean_text(str(p)) for p in parts)
        size += len(call_id) + len(name) + len(arguments)
        # Characters first (cheap, no copy): a call's arguments can be as long as the file.
        if size > MAX_MESSAGE_BYTES:
            raise _Bad(
                f"{where}'s tool calls are over {megabytes(MAX_MESSAGE_BYTES)}, the most Hearth keeps in one message"
            )
        calls.append(ToolCall(call_id, name, arguments))
    return tuple(calls)


def _tool_result(raw: dict[str, object], where: str) -> tuple[str, ToolRun]:
    """A tool message's call id and how the call went (a record it lacks reads as "unknown")."""
    call_id = raw.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _Bad(f"{where} is a tool's result but names no call (tool_call_id)")
    record = raw.get("tool")
    if not isinstance(record, dict):
        return clean_text(call_id), ToolRun("", "unknown")
    name, status, latency = record.get("name"), record.get("status"), record.get("latency_ms")
    return clean_text(call_id), ToolRun(
        name=clean_text(name)[:_TOOL_NAME_MAX] if isinstance(name, str) else "",
        status=status if isinstance(status, str) and status in _STATUSES else "unknown",  # type: ignore[arg-type]
        latency_ms=float(latency) if _number(latency) and float(latency) >= 0 else None,  # type: ignore[arg-type]
        truncated=record.get("truncated") is True,
    )


def _sources(raw: object, role: object) -> tuple[tuple[Source, ...], str | None]:
    """An answer's sources from the file, checked as the store checks them, or none and why not."""
    if raw is None or raw == []:
        return (), None
    if role != "assistant":
        return (), "only an answer has sources"
    if not isinstance(raw, list):
        return (), "they are not a list"
    out = []
    for i, item in enumerate(raw):
        source = _source(item, i + 1) if isinstance(item, dict) else f"source {i + 1} is not an object"
        if isinstance(source, str):
            return (), source
        out.append(source)
    try:
        return check_sources(out), None
    except StoreError as e:
        return (), e.message.rstrip(".")


def _generation(raw: object, where: str, created_at: float) -> ExchangeGeneration | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _Bad(f"{where}'s generation is not an object")
    state = raw.get("state")
    if state not in {s.value for s in GenerationState}:
        raise _Bad(f"{where}'s generation has the state {state!r}")
    metrics = raw.get("metrics", {})
    if not isinstance(metrics, dict):
        raise _Bad(f"{where}'s metrics are not an object")
    model = raw.get("model")

    def text(name: str) -> str | None:
        v = raw.get(name)
        return clean_text(v) if isinstance(v, str) else None

    return ExchangeGeneration(
        model=clean_text(model) if isinstance(model, str) and model else "unknown",
        # An answer being written when it was exported can never finish here: it was cut off.
        state=GenerationState.INTERRUPTED.value if state in _UNFINISHED else str(state),
        created_at=time_of(raw.get("created_at")) or created_at,
        finished_at=time_of(raw.get("finished_at")),
        cancel_reason=text("cancel_reason"),
        error_code=text("error_code"),
        error_message=text("error_message"),
        stop_reason=text("stop_reason"),
        metrics={k: v for k, v in metrics.items() if k in _METRICS and _number(v)},
        retrieval_note=(text("retrieval_note") or "")[:MAX_NOTE_CHARS] or None,
        # The route that answered and why (absent from files written before Hearth recorded them).
        route=(text("route") or "")[:_MAX_ROUTE_CHARS] or None,
        route_reason=(text("route_reason") or "")[:MAX_NOTE_CHARS] or None,
    )


def _source(item: dict[str, object], n: int) -> Source | str:
    """One source from the file, or what is wrong with it (the bounds are checked after)."""
    ordinal, path, page, heading = item.get("ordinal", n), item.get("path"), item.get("page"), item.get("heading")
    start, end, score, text = item.get("start"), item.get("end"), item.get("score"), item.get("text")
    collection = item.get("collection", "")
    if isinstance(ordinal, bool) or not isinstance(ordinal, int):
        return f"source {n}'s ordinal is not a whole number"
    if not isinstance(path, str):
        return f"source {n} has no path"
    if isinstance(page, bool) or not isinstance(page, int | None):
        return f"source {n}'s page is not a whole number"
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        return f"source {n}'s offsets are not whole numbers"
    if isinstance(score, bool) or not isinstance(score, int | float):
        return f"source {n}'s score is not a number"
    if not isinstance(text, str) or not isinstance(heading, str | None) or not isinstance(collection, str):
        return f"source {n}'s text, heading or collection is not text"
    return Source(
        ordinal=ordinal,
        path=clean_text(path),
        page=page,
        heading=None if heading is None else clean_text(heading),
        start=start,
        end=end,
        score=float(score),
        text=clean_text(text),
        collection=clean_text(collection),
    )


def _in_tree_order(messages: list[ExchangeMessage]) -> list[ExchangeMessage]:
    """Each parent before its children (ids as exported are, but a file may be edited by hand)."""
    by_key: dict[str, ExchangeMessage] = {}
    for m in messages:
        if m.key in by_key:
            raise _Bad(f"message id {m.key} appears twice")
        by_key[m.key] = m
    children: dict[str | None, list[ExchangeMessage]] = {}
    for m in messages:
        if m.parent_key is not None and m.parent_key not in by_key:
            raise _Bad(f"message {m.key} answers message {m.parent_key}, which is not in the file")
        children.setdefault(m.parent_key, []).append(m)
    ordered: list[ExchangeMessage] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        m = stack.pop()
        ordered.append(m)
        stack.extend(reversed(children.get(m.key, [])))
    if len(ordered) != len(messages):
        raise _Bad("its messages answer each other in a loop")
    return ordered


def _key(value: object, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise _Bad(f"{what} is missing or not a number")
    return str(value)


def _id_out(key: str | None) -> int | str | None:
    if key is None:
        return None
    return int(key) if key.isascii() and key.isdigit() else key


def _time(raw: dict[str, object], name: str, where: str) -> float:
    t = time_of(raw.get(name))
    if t is None:
        raise _Bad(f"{where} has no valid {name} (unix seconds)")
    return t


def _number(v: object) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def _generation_out(g: ExchangeGeneration | None) -> dict[str, object] | None:
    if g is None:
        return None
    return {
        "model": g.model,
        "state": g.state,
        "stop_reason": g.stop_reason,
        "cancel_reason": g.cancel_reason,
        "error_code": g.error_code,
        "error_message": g.error_message,
        "created_at": g.created_at,
        "finished_at": g.finished_at,
        "retrieval_note": g.retrieval_note,
        "metrics": {k: v for k, v in g.metrics.items() if _number(v)},
        # Only where recorded, so an answer from before routes were recorded is written as it was.
        **({"route": g.route, "route_reason": g.route_reason} if g.route is not None else {}),
    }
