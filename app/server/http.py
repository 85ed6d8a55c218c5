"""The HTTP face of `hearth serve`: an OpenAI-compatible API on Starlette (run by uvicorn).

    POST /v1/chat/completions   streaming (SSE) or not; `hearth.collections` adds passages
                                from a person's documents (app.server.documents)
    POST /v1/embeddings         the offline embedding model (app.server.embeddings)
    GET  /v1/models             the local model, every provider's, and the embedding model
    GET  /metrics               counts by state, TTFT p50/p95, stream completion rate,
                                retrieval latency, embeddings

Requests a web page could send (a foreign Host or Origin, a body that is not JSON) are refused
first (app.server.guard). Every request needs `Authorization: Bearer <token>` unless the server
runs without auth (loopback only, app.cli.serve decides). Bodies over MAX_BODY bytes are
refused with 413 before they are read whole. Errors are OpenAI-shaped JSON and never echo the token.
A stream's first chunk (the assistant role) goes out as soon as the request has its turn;
when the client goes away mid-stream, Starlette cancels the response and the generation is
cancelled with it (app.server.gateway.Opened.close). Must not: touch the store or Qt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.server.client_gone import client_gone, stopped, unless_gone
from app.server.gateway import Gateway, Opened
from app.server.guard import Guard
from app.server.metrics import RequestRecord
from app.server.saving import HEADER, ApiSaver, Saving
from app.server.tools_wire import call_dicts
from app.server.wire import (
    ApiError,
    ChatRequest,
    chunk,
    completion,
    done,
    error_body,
    parse_chat_request,
    queue_note,
    stream_error,
    usage,
)
from engine.commands import ToolCall
from engine.events import Cancelled, Delta, Failed, Final, Queued, StreamEvent, ToolCalls

if TYPE_CHECKING:  # documents and embeddings load NumPy: imported where a server uses them
    from app.core.documents.retrieval import Augmented
    from app.server.documents import ServedDocuments
    from app.server.embeddings import EmbeddingModel

__all__ = ["MAX_BODY", "build_app"]

MAX_BODY = 4 * 1024 * 1024  # bytes: a long conversation fits; a runaway upload does not


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def build_app(
    gateway: Gateway,
    *,
    token: str | None,
    host: str,
    origins: tuple[str, ...] = (),
    saver: ApiSaver | None = None,
    embedding: EmbeddingModel | None = None,
) -> Starlette:
    """`token`: the bearer token every request must carry; None: no auth (loopback only).
    `host`: the address it listens on, `origins`: the web pages allowed to use it from a browser
    (app.server.guard checks both before any route). `saver`: keeps the conversations that ask
    for it (app.server.saving), and its store is where collections are read; None: neither.
    `embedding`: serves /v1/embeddings and embeds retrieval's questions; None: neither."""
    documents = _documents(saver, embedding)

    def guarded(handler: Callable[[Request, float], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """The token checked first; an ApiError becomes its OpenAI-shaped answer."""

        async def endpoint(request: Request) -> Response:
            received = time.perf_counter()
            try:
                _authorize(request, token)
                return await handler(request, received)
            except ApiError as e:
                return _json(e.body(), e.status, e.headers)

        return endpoint

    async def chat_completions(request: Request, received: float) -> Response:
        parsed = parse_chat_request(await _body(request))
        header = request.headers.get(HEADER)
        if header is not None and saver is None:
            raise ApiError(None, "This server does not save conversations.", status=400, param=HEADER)
        saving = await saver.begin(header, parsed, parsed.model) if saver is not None else None
        # The person's words are saved; the model reads them with the passages.
        parsed, augmented = await _with_documents(parsed, documents, gateway)
        if saving is not None:
            saving.augmented = augmented
        # A client that goes away while it waits for its turn (or for a restarting engine) gives
        # up its place, and a plain (non-streaming) request's generation stops with its client:
        # neither the queue nor a 2,000-token answer is spent on nobody.
        gone = asyncio.ensure_future(client_gone(request))
        try:
            # Its wait for the model starts after retrieval (which has its own figure).
            waits_from = received + (augmented.retrieval_ms / 1000 if augmented is not None else 0.0)
            opened = await unless_gone(gateway.open(parsed, waits_from), gone)
        except BaseException as e:
            await stopped(gone)
            if isinstance(e, ApiError) and e.status == 429:
                gateway.metrics.record(RequestRecord(parsed.model, parsed.stream, "rejected", reason=e.code))
            raise
        if opened is None:  # nothing ran, so nothing is saved
            gateway.metrics.record(
                RequestRecord(parsed.model, parsed.stream, "cancelled", reason="client went away while waiting")
            )
            return Response(status_code=499)
        tally = _Tally(received, saving, augmented)
        if parsed.stream:
            await stopped(gone)  # a StreamingResponse watches for the client itself
            return StreamingResponse(
                _sse(gateway, parsed, opened, tally),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        return await _whole(gateway, parsed, opened, tally, gone)

    async def embeddings(request: Request, received: float) -> Response:
        return await _embeddings(embedding, gateway, request, received)

    async def models(request: Request, received: float) -> Response:
        served = gateway.model_ids() + ([(embedding.name, "hearth")] if embedding is not None else [])
        data = [{"id": i, "object": "model", "created": 0, "owned_by": owner} for i, owner in served]
        return _json(json.dumps({"object": "list", "data": data}).encode())

    async def metrics(request: Request, received: float) -> Response:
        return _json(json.dumps(gateway.metrics.summary(running=gateway.running, **gateway.health())).encode())

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = {
            404: f"There is no {request.url.path} here: the API is under /v1.",
            405: f"{request.method} is not allowed on {request.url.path}.",
        }.get(status, "Internal error.")
        return _json(error_body(message, "invalid_request_error" if status < 500 else "server_error"), status)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", guarded(chat_completions), methods=["POST"]),
            Route("/v1/embeddings", guarded(embeddings), methods=["POST"]),
            Route("/v1/models", guarded(models), methods=["GET"]),
            Route("/metrics", guarded(metrics), methods=["GET"]),
        ],
        middleware=[Middleware(Guard, listen_host=host, origins=origins)],
        exception_handlers={HTTPException: http_error, Exception: http_error},
    )


def _documents(saver: ApiSaver | None, embedding: EmbeddingModel | None) -> ServedDocuments | None:
    """The collections in the saver's store, for requests that name them; None: no store."""
    if saver is None:
        return None
    from app.server.documents import ServedDocuments

    return ServedDocuments(saver.store, embedding)


async def _embeddings(
    embedding: EmbeddingModel | None, gateway: Gateway, request: Request, received: float
) -> Response:
    """POST /v1/embeddings. A client that goes away stops its texts between two batches (Starlette
    would let a plain response run on): watched for once the body is read, as for chat."""
    read: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def body() -> bytes:
        raw = await _body(request)
        read.set_result(None)
        return raw

    async def gone_after_body() -> None:
        await read
        await client_gone(request)

    from app.server.embedding_route import answer_embeddings

    gone = asyncio.ensure_future(gone_after_body())
    try:
        answer = await unless_gone(answer_embeddings(embedding, gateway.metrics, body(), received), gone)
    finally:
        await stopped(gone)
    return _json(answer) if answer is not None else Response(status_code=499)


async def _with_documents(
    request: ChatRequest, documents: ServedDocuments | None, gateway: Gateway
) -> tuple[ChatRequest, Augmented | None]:
    """The request as the model reads it, with passages when it names collections, and what was found."""
    if not request.collections:
        return request, None
    if documents is None:
        raise ApiError(None, "This server does not search documents.", status=400, param="hearth.collections")
    return await documents.augment(request, gateway.passage_chars(request.model))


def _authorize(request: Request, token: str | None) -> None:
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(
            "invalid_api_key",
            "Missing or wrong API key: send `Authorization: Bearer <token>` (the token "
            "`hearth serve --show-token` prints).",
            status=401,
        )


async def _body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes MAX_BODY (declared or streamed)."""
    too_big = ApiError("body_too_large", f"The request body is over {MAX_BODY // 1024 // 1024} MB.", status=413)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise too_big
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_BODY:
            raise too_big
        parts.append(part)
    return b"".join(parts)


class _Tally:
    """What one request produced, for its answer and its metrics record."""

    def __init__(self, received: float, saving: Saving | None = None, augmented: Augmented | None = None) -> None:
        self.received = received
        self.saving = saving
        self.augmented = augmented
        # The response's `hearth` field: the sources, when the request named collections.
        self.extra = None
        if augmented is not None:
            from app.server.documents import sources_extension

            self.extra = {"hearth": sources_extension(augmented)}
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.first_at: float | None = None
        self.end: StreamEvent | None = None
        self.calls: tuple[ToolCall, ...] = ()  # the model asked for these (ToolCalls)

    def finish_reason(self) -> str:
        if isinstance(self.end, Final) and self.end.stop_reason in ("length", "tool_calls"):
            return str(self.end.stop_reason)
        return "stop"

    def record_when_settled(self, gateway: Gateway, request: ChatRequest, opened: Opened, *, client_left: bool) -> None:
        """Record the request once its generation has ended: at once when the client read to the
        end, else when the stopped generation says what it had generated (Opened.settled)."""

        def settled(f: asyncio.Future[StreamEvent | None]) -> None:
            if self.end is None and not f.cancelled():
                self.end = f.result()
            record = self.record(request, opened, client_left=client_left)
            if self.saving is None:
                gateway.metrics.record(record)
                return
            metrics: dict[str, float | int | None] = {
                "command_latency_ms": record.command_latency_ms,
                "ttft_ms": record.ttft_ms,
                "tokens_per_s": record.tokens_per_s,
                "completion_tokens": record.completion_tokens,
                "total_ms": record.total_ms,
            }

            async def save(saving: Saving) -> None:  # off the stream path; recorded with its lag
                lag = await saving.finish(
                    "".join(self.text), "".join(self.reasoning), self.end, metrics, client_left=client_left
                )
                gateway.metrics.record(dataclasses.replace(record, finalization_lag_ms=lag))

            gateway.keep(asyncio.ensure_future(save(self.saving)))

        opened.settled.add_done_callback(settled)

    def add(self, event: Delta) -> None:
        self.first_at = self.first_at or time.perf_counter()
        (self.reasoning if event.channel == "reasoning" else self.text).append(event.text)
        if self.saving is not None:
            self.saving.progress(lambda: ("".join(self.text), "".join(self.reasoning)))

    def record(self, request: ChatRequest, opened: Opened, *, client_left: bool = False) -> RequestRecord:
        end = self.end
        stats = end.stats if isinstance(end, Final | Cancelled) else None
        state = "cancelled" if client_left else {Final: "completed", Cancelled: "cancelled"}.get(type(end), "failed")
        reason = (
            "client went away"
            if client_left
            else end.code
            if isinstance(end, Failed)
            else (end.reason if isinstance(end, Cancelled) else None)
        )
        retrieval_ms = self.augmented.retrieval_ms if self.augmented is not None else None
        return RequestRecord(
            request.model,
            request.stream,
            state,
            # Retrieval left out, as the window does: it has its own figure. (Queued time comes after it.)
            command_latency_ms=round(
                (opened.command_sent_at - self.received) * 1000 - opened.queued_ms - (retrieval_ms or 0.0), 3
            ),
            ttft_ms=round((self.first_at - self.received) * 1000, 3) if self.first_at else None,
            tokens_per_s=round(stats.decode_tokens_per_s, 2) if stats and stats.decode_tokens_per_s else None,
            completion_tokens=stats.completion_tokens if stats else None,
            total_ms=round((time.perf_counter() - self.received) * 1000, 3),
            queued_ms=round(opened.queued_ms + opened.engine_wait_ms, 3),
            reason=reason,
            retrieval_ms=round(retrieval_ms, 3) if retrieval_ms is not None else None,
        )

    def usage(self) -> dict[str, int]:
        end = self.end
        stats = end.stats if isinstance(end, Final | Cancelled) else None
        return usage(stats.prompt_tokens if stats else 0, stats.completion_tokens if stats else 0)


async def _sse(gateway: Gateway, request: ChatRequest, opened: Opened, tally: _Tally) -> AsyncIterator[bytes]:
    cid, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
    finished = False
    try:
        yield chunk(cid, created, request.model, {"role": "assistant", "content": ""}, extra=tally.extra)
        if tally.saving is not None:
            tally.saving.start()  # the answer streams first; its rows are written meanwhile
        place: int | None = None  # its place in the engine's queue, repeated while it waits
        async for event in opened.events:
            if isinstance(event, Queued):  # SSE comments: every client skips them, Hearth's reads them
                place = event.ahead
                yield queue_note(place)
            elif event is None:
                yield queue_note(place)
            elif isinstance(event, Delta) and event.text:
                tally.add(event)
                key = "reasoning_content" if event.channel == "reasoning" else "content"
                yield chunk(cid, created, request.model, {key: event.text})
            elif isinstance(event, ToolCalls):  # whole calls, each in one delta (OpenAI's clients join pieces)
                tally.calls = event.calls
                yield chunk(cid, created, request.model, {"tool_calls": call_dicts(event.calls, streamed=True)})
            elif isinstance(event, Final | Cancelled):
                tally.end = event
                yield chunk(cid, created, request.model, {}, tally.finish_reason())
                if request.include_usage:
                    yield chunk(cid, created, request.model, None, usage_=tally.usage())
                yield done()
            elif isinstance(event, Failed):
                tally.end = event
                yield stream_error(event.message, event.code)
                yield done()
        finished = True
    finally:
        opened.close()  # the client went away: the generation stops
        tally.record_when_settled(gateway, request, opened, client_left=not finished)


async def _whole(
    gateway: Gateway, request: ChatRequest, opened: Opened, tally: _Tally, gone: asyncio.Future[None]
) -> Response:
    if tally.saving is not None:
        tally.saving.start()

    async def read() -> bool:
        async for event in opened.events:
            if isinstance(event, Delta):
                tally.add(event)
            elif isinstance(event, ToolCalls):
                tally.calls = event.calls
            elif isinstance(event, Final | Cancelled | Failed):
                tally.end = event
        return True

    read_all = False
    try:
        read_all = bool(await unless_gone(read(), gone))
    finally:
        await stopped(gone)
        opened.close()  # when the client went away, the generation stops within a token
        tally.record_when_settled(gateway, request, opened, client_left=not read_all or tally.end is None)
    if not read_all:
        return Response(status_code=499)  # the client went away: nobody reads it
    if isinstance(tally.end, Failed):
        code = tally.end.code
        status = (
            504
            if code == "timeout"
            else 502
            if code.startswith("remote")
            else 503
            if (code == "engine_crashed")
            else 500
        )
        return _json(error_body(tally.end.message, "server_error", code), status)
    return _json(
        completion(
            f"chatcmpl-{secrets.token_hex(12)}",
            int(time.time()),
            request.model,
            "".join(tally.text),
            "".join(tally.reasoning),
            tally.finish_reason(),
            tally.usage(),
            tally.extra,
            tool_calls=call_dicts(tally.calls, streamed=False),
        )
    )
