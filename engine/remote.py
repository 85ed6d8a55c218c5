"""The remote provider: one streamed reply from an HTTP server, run in the engine process.

Owns the request (one of a few request shapes: OpenAI chat completions, Ollama /api/chat,
Dify chat and workflow), the connection, retries, timeouts and cancel; the response bytes
go through engine.wire's declared decoder, and come out as the same events the local
model emits, so the store, the UI and the metrics cannot tell the two apart.

- 429 and 5xx (and a refused or dropped connection) before the first text are retried
  with backoff, honouring Retry-After, a bounded number of times.
- Timeouts: connect, first text, and between chunks. A timeout ends the reply as
  Cancelled(reason="timeout") with what arrived kept, as the state machine says
  (docs/architecture.md#typed-states-and-events).
- Cancel shuts the socket down from a watcher thread: a stalled server cannot delay it.
- A stream that ends without a finish reason is failed("incomplete"), never completed.
- Tools: a Generate's tools go in the request of formats that can carry them (the OpenAI shape);
  its reply's streamed call pieces are put together (engine.tool_calls) and sent as one ToolCalls
  event just before Final("tool_calls"), within a cap on their size. A Generate that offers tools
  to a format that cannot carry them (Ollama, Dify) fails with "tools_unsupported".
- The API key is sent in a header and never appears in an event: any text from the
  server that quotes it has it replaced before it is emitted, even when the server splits
  it across chunks (engine.scrub). Header values and a URL's user and password are secrets
  too: every error text is scrubbed of every form of each (repr, bytes, percent-encoded),
  before it is shortened. A credential that HTTP cannot carry (a key ending in "\\r" from a
  .env file) is refused before sending, naming the field, never quoting it (engine.credentials).

Must not: import app/ or store/, or log request headers.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from engine.codes import FailureCode
from engine.commands import Generate, RemoteSpec, ToolCall
from engine.credentials import problem
from engine.events import (
    Cancelled,
    Delta,
    Failed,
    Final,
    GenerationStats,
    ProviderSession,
    Queued,
    Started,
    StreamEvent,
    ToolCalls,
)
from engine.scrub import SecretScrubber
from engine.tool_calls import TooLarge, ToolCallAssembler, openai_message, openai_tool_choice, openai_tools
from engine.wire import (
    StreamDecoder,
    WireEnd,
    WireError,
    WireFormat,
    WireQueued,
    WireSession,
    WireText,
    WireToolCall,
    WireUsage,
    load_formats,
)

__all__ = ["RemoteProvider"]

Emit = Callable[[StreamEvent], None]
_RETRY_STATUSES = (429, 500, 502, 503, 504)
_MAX_RETRY_WAIT_S = 30.0
_MAX_EVENT_BYTES = 16 << 20
_PATHS = {
    "openai": "/chat/completions",
    "ollama": "/api/chat",
    "dify-chat": "/chat-messages",
    "dify-workflow": "/workflows/run",
}


class _Stop(Exception):
    """The reply ends early: `kind` is "cancel" (the person) or "timeout"."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Watch:
    """Watches one request: shuts its socket on cancel or when a deadline passes."""

    def __init__(self, cancel: threading.Event, first_text_s: float) -> None:
        self.cancel = cancel
        self._first_text_s = first_text_s
        self.first_text_deadline = time.monotonic() + first_text_s
        self.got_text = False
        self.why: str | None = None  # "cancel" | "timeout" once it fired
        self._sock: socket.socket | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._run, name="remote-watch", daemon=True).start()

    def attach(self, response: Any) -> None:
        stream = response.extensions.get("network_stream")
        with self._lock:
            self._sock = stream.get_extra_info("socket") if stream is not None else None

    def close(self) -> None:
        self._done.set()

    def waiting(self) -> None:
        """The server says the request waits its turn behind other answers: the wait for the
        first text starts again (a Hearth host gives each change of place, and repeats it)."""
        self.first_text_deadline = time.monotonic() + self._first_text_s

    def _run(self) -> None:
        while not self._done.is_set():
            if self.cancel.wait(0.02):
                self._fire("cancel")
                return
            if not self.got_text and time.monotonic() > self.first_text_deadline:
                self._fire("timeout")
                return

    def _fire(self, why: str) -> None:
        self.why = why
        with self._lock:
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked on a stalled server
            except OSError:
                pass


class RemoteProvider:
    """Streams replies from one configured server. Not thread-safe: one reply at a time."""

    def __init__(self, spec: RemoteSpec, formats: dict[str, WireFormat] | None = None) -> None:
        import httpx

        from engine.pipe_transport import transport_for

        self.spec = spec
        formats = formats or load_formats()
        if spec.wire not in formats:
            raise ValueError(f"unknown wire format {spec.wire!r} (known: {', '.join(sorted(formats))})")
        self._format = formats[spec.wire]
        self._httpx = httpx
        # The key never leaves in a reply, even split across chunks; no secret leaves in an error (engine.scrub).
        self._scrubber = SecretScrubber.for_request(spec.api_key, spec.headers, spec.basic_auth)
        # httpx's read timeout bounds each wait for bytes. Until the response headers arrive
        # that wait is part of the wait for the first text, so it starts as the first-text
        # timeout; `_once` sets it to the between-chunks timeout once the headers are in.
        self._client = httpx.Client(
            timeout=httpx.Timeout(spec.first_token_timeout_s, connect=spec.connect_timeout_s),
            transport=transport_for(spec.uds) if spec.uds else None,  # a Unix socket, or a Windows pipe
        )

    def close(self) -> None:
        self._client.close()

    # -- one reply ---------------------------------------------------------------------
    def generate(self, cmd: Generate, cancel: threading.Event, emit: Emit, received_at: float) -> None:
        """Run one reply to its end, emitting exactly one terminal event."""
        gid = cmd.generation_id
        counts = {"n": 0, "prompt": None, "completion": None}
        times: dict[str, float] = {}

        def stats() -> GenerationStats:
            n = counts["completion"] or counts["n"]
            first, last = times.get("first"), times.get("last")
            tps = (n - 1) / (last - first) if n and n > 1 and first and last and last > first else 0.0
            return GenerationStats(
                prompt_tokens=counts["prompt"] or 0,
                cached_tokens=0,
                completion_tokens=n or 0,
                prefill_ms=((first or time.perf_counter()) - received_at) * 1000,
                ttft_ms=((first - received_at) * 1000) if first else 0.0,
                decode_tokens_per_s=tps,
                total_ms=(time.perf_counter() - received_at) * 1000,
            )

        watch = _Watch(cancel, self.spec.first_token_timeout_s)
        self._scrubber.reset()
        calls = ToolCallAssembler()
        try:
            outcome = self._attempts(cmd, watch, emit, counts, times, calls)
            if calls and cancel.is_set() and not isinstance(outcome, Failed):
                raise _Stop(watch.why or "cancel")  # a stopped reply asks for no calls
        except _Stop as stop:
            self._flush(gid, emit)
            emit(Cancelled(gid, "timeout" if stop.kind == "timeout" else "user", stats()))
            return
        except Exception as e:  # noqa: BLE001 - a bug or an odd httpx error: ended here, where it can be scrubbed
            outcome = Failed(gid, "engine_error", f"The request to {self.spec.name} failed: {self._short(e)}")
        finally:
            watch.close()
        self._flush(gid, emit)
        if isinstance(outcome, Failed):
            emit(Failed(gid, outcome.code, self._scrub(outcome.message)))
            return
        if calls:
            emit(ToolCalls(gid, tuple(self._scrub_call(c) for c in calls.calls())))
            # Some servers end a reply of calls with "stop"; "length" says a call was cut off.
            outcome = "tool_calls" if outcome in ("eog", "function_call") else outcome
        elif outcome == "tool_calls":
            emit(
                Failed(
                    gid,
                    "bad_response",
                    f"{self.spec.name} said its reply ended in tool calls, but it sent none.",
                )
            )
            return
        emit(Final(gid, outcome, stats()))

    def _attempts(
        self,
        cmd: Generate,
        watch: _Watch,
        emit: Emit,
        counts: dict[str, Any],
        times: dict[str, float],
        calls: ToolCallAssembler,
    ) -> str | Failed:
        """Retry what may be retried before the first text; returns the finish reason or a Failed."""
        name = self.spec.name
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._once(cmd, watch, emit, counts, times, calls)
            except _Retryable as r:
                if watch.got_text or attempt > self.spec.max_retries:
                    return Failed(cmd.generation_id, r.code, r.message)
                wait = r.wait if r.wait is not None else min(8.0, 0.5 * 2 ** (attempt - 1))
                if watch.cancel.wait(min(wait, _MAX_RETRY_WAIT_S)):
                    raise _Stop("cancel") from None
            except self._httpx.TimeoutException as e:
                if watch.why is not None:
                    raise _Stop(watch.why) from None
                if not isinstance(e, self._httpx.ConnectTimeout):
                    raise _Stop("timeout") from None  # the server went quiet between chunks
                if attempt > self.spec.max_retries:
                    return Failed(
                        cmd.generation_id,
                        "unreachable",
                        f"Could not connect to {name} at "
                        f"{self.spec.base_url} within "
                        f"{self.spec.connect_timeout_s:.0f} s.",
                    )
            except (self._httpx.TransportError, OSError) as e:
                if watch.why is not None:
                    raise _Stop(watch.why) from None
                if watch.got_text:  # the connection dropped mid-reply: what arrived is kept
                    return Failed(
                        cmd.generation_id,
                        "incomplete",
                        f"The connection to {name} broke in the middle of the reply ({self._short(e)}).",
                    )
                if attempt > self.spec.max_retries:
                    return Failed(
                        cmd.generation_id,
                        "unreachable",
                        f"Could not reach {name} at {self.spec.base_url} ({self._short(e)}).",
                    )
                if watch.cancel.wait(min(8.0, 0.5 * 2 ** (attempt - 1))):
                    raise _Stop("cancel") from None

    def _once(
        self,
        cmd: Generate,
        watch: _Watch,
        emit: Emit,
        counts: dict[str, Any],
        times: dict[str, float],
        calls: ToolCallAssembler,
    ) -> str | Failed:
        gid = cmd.generation_id
        name = self.spec.name
        if refused := self._tools_refused(cmd):
            return Failed(gid, "tools_unsupported", refused)
        url, body = self._request(cmd)
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream, application/x-ndjson",
            **{k: v.strip() for k, v in self.spec.headers},
        }  # whitespace around a value is not part of it
        if self.spec.api_key:
            headers["Authorization"] = f"Bearer {self.spec.api_key.strip()}"
        if refused := self._unsendable():
            return Failed(gid, "bad_credential", refused)
        auth = self.spec.basic_auth or self._httpx.USE_CLIENT_DEFAULT
        with self._client.stream(
            "POST", url, headers=headers, content=json.dumps(body).encode(), auth=auth
        ) as response:
            # The body has not been read yet: its reads take the timeout from this (the request's
            # "timeout" extension, read by the transport when the body starts streaming).
            response.request.extensions["timeout"]["read"] = self.spec.between_tokens_timeout_s
            watch.attach(response)
            if watch.why is not None:
                raise _Stop(watch.why)
            status = response.status_code
            if status != 200:
                text = _error_text(response, self._scrub)
                if status in _RETRY_STATUSES:
                    raise _Retryable(
                        "rate_limited" if status == 429 else "server_error",
                        f"{name} answered {status}{': ' + text if text else ''}",
                        _retry_after(response.headers.get("Retry-After")),
                    )
                return Failed(gid, _status_code(status), _status_message(name, status, text))
            emit(Started(gid, 0, 0))
            decoder = StreamDecoder(self._format)
            finish: str | None = None
            unparsed = 0  # bytes since the last complete event: bounded, so a hostile server cannot fill memory
            for chunk in response.iter_raw():
                if watch.why is not None:
                    raise _Stop(watch.why)
                items = decoder.feed(chunk)
                unparsed = 0 if items else unparsed + len(chunk)
                if unparsed > _MAX_EVENT_BYTES:
                    return Failed(
                        gid,
                        "bad_response",
                        f"{name} sent more than {_MAX_EVENT_BYTES >> 20} MiB without "
                        "a complete event; Hearth stopped reading.",
                    )
                result = self._handle(gid, items, watch, emit, counts, times, calls)
                if result is not None:
                    if isinstance(result, Failed):
                        return result
                    finish = result
                    break
            else:
                result = self._handle(gid, decoder.close(), watch, emit, counts, times, calls)
                if isinstance(result, Failed):
                    return result
                finish = result
            if watch.why is not None:
                raise _Stop(watch.why)
            if finish is None:
                return Failed(
                    gid,
                    "incomplete",
                    f"The reply from {name} stopped before it said it was finished "
                    "(the stream ended without a finish reason).",
                )
            return finish

    def _handle(
        self,
        gid: int,
        items: list[Any],
        watch: _Watch,
        emit: Emit,
        counts: dict[str, Any],
        times: dict[str, float],
        calls: ToolCallAssembler,
    ) -> str | Failed | None:
        for item in items:
            if isinstance(item, WireToolCall):
                now = time.perf_counter()
                times.setdefault("first", now)
                times["last"] = now
                watch.got_text = True  # the reply has begun: no first-text timeout, no retry
                counts["n"] += 1
                try:
                    calls.add(item)
                except TooLarge as e:
                    return Failed(
                        gid,
                        "tool_call_too_large",
                        f"{self.spec.name} sent {e}; Hearth stopped reading the reply "
                        "(a model repeating itself, or a server that misbehaves).",
                    )
                continue
            if isinstance(item, WireText):
                if not item.text and not item.replace:
                    continue
                now = time.perf_counter()
                times.setdefault("first", now)
                times["last"] = now
                watch.got_text = True
                counts["n"] += 1
                if item.replace:  # the server rewrote its reply: what was held belongs to the old one
                    self._scrubber.reset()
                    emit(Delta(gid, self._scrubber.reply(item.text), 1, replace=True))
                else:
                    emit(Delta(gid, self._scrubber.feed(item.text), 1))
            elif isinstance(item, WireSession):
                emit(ProviderSession(gid, self.spec.name, item.value))
            elif isinstance(item, WireQueued):
                watch.waiting()
                emit(Queued(gid, item.ahead))
            elif isinstance(item, WireUsage):
                counts["prompt"] = item.prompt_tokens if item.prompt_tokens is not None else counts["prompt"]
                counts["completion"] = (
                    item.completion_tokens if item.completion_tokens is not None else counts["completion"]
                )
            elif isinstance(item, WireError):
                code: FailureCode = "provider_error" if item.code == "provider_error" else "bad_response"
                return Failed(
                    gid,
                    code,
                    f"{self.spec.name} reported an error: {item.message}"
                    if code == "provider_error"
                    else f"{self.spec.name} sent something Hearth could not read: {item.message}",
                )
            elif isinstance(item, WireEnd):
                if item.reason == "done":
                    # An end marker ([DONE]) with no finish reason before it: the server cut the
                    # reply short (llama-cpp-python's server does this when it is interrupted).
                    return Failed(
                        gid,
                        "incomplete",
                        f"The reply from {self.spec.name} ended without saying it "
                        "was finished (no finish reason before the end marker).",
                    )
                return {"stop": "eog", "eos": "eog", "end_turn": "eog"}.get(item.reason, item.reason)
        return None

    # -- the request -----------------------------------------------------------------------
    def _request(self, cmd: Generate) -> tuple[str, dict[str, Any]]:
        spec, s = self.spec, cmd.sampling
        shape = getattr(self._format, "request", None) or spec.wire
        if shape == "openai":
            messages = [openai_message(m) for m in cmd.messages]
        else:
            messages = [{"role": m.role, "content": m.content} for m in cmd.messages]
        if cmd.continue_text:  # resume an answer: the partial answer as the last assistant turn
            messages.append({"role": "assistant", "content": cmd.continue_text})
        base = spec.base_url.rstrip("/")
        path = spec.path or _PATHS.get(shape, "/chat/completions")
        # max_tokens 0: no limit asked for (a `hearth serve` client named none), so none is sent and the
        # server's own default applies; vLLM refuses 0.
        limit = {"max_tokens": s.max_tokens} if s.max_tokens > 0 else {}
        if shape == "ollama":
            return base + path, {
                "model": spec.model,
                "messages": messages,
                "stream": True,
                "options": {
                    "temperature": s.temperature,
                    "top_k": s.top_k,
                    "top_p": s.top_p,
                    "min_p": s.min_p,
                    "repeat_penalty": s.repeat_penalty,
                    "seed": s.seed,
                    **({"num_predict": s.max_tokens} if s.max_tokens > 0 else {}),
                },
            }
        if shape in ("dify-chat", "dify-workflow"):
            # Dify keeps the conversation on its side: Hearth sends the newest message.
            query = next((m.content for m in reversed(cmd.messages) if m.role == "user"), "")
            if shape == "dify-workflow":
                return base + path, {"inputs": {"query": query}, "response_mode": "streaming", "user": "hearth"}
            # The conversation id Dify gave on an earlier turn keeps its side of the history.
            return base + path, {
                "inputs": {},
                "query": query,
                "response_mode": "streaming",
                "user": "hearth",
                "conversation_id": spec.session,
            }
        body: dict[str, Any] = {
            "model": spec.model,
            "messages": messages,
            "stream": True,
            "temperature": s.temperature,
            "top_p": s.top_p,
            **limit,
            "seed": s.seed,
            "stream_options": {"include_usage": True},
        }
        if cmd.tools:
            body["tools"] = openai_tools(cmd.tools)
            if cmd.tool_choice != "auto":  # the default with tools; vLLM wants a flag to accept it said
                body["tool_choice"] = openai_tool_choice(cmd.tool_choice)
        return base + path, body

    def _tools_refused(self, cmd: Generate) -> str | None:
        """Why this Generate's tools cannot go to this server, or None. A tool choice of "none"
        needs no tools sent: the reply is asked for as usual."""
        shape = self._format.request or self.spec.wire
        if not cmd.tools or cmd.tool_choice == "none" or (shape == "openai" and self._format.carries_tools):
            return None
        return (
            f"{self.spec.name} speaks the {self.spec.wire} format, which cannot carry tool calls: "
            "turn the tools off for this chat, or use this provider through an OpenAI-compatible endpoint."
        )

    def _scrub_call(self, call: ToolCall) -> ToolCall:
        """No secret leaves in a call either (a server that quotes the key in arguments)."""
        return ToolCall(self._scrub(call.id), self._scrub(call.name), self._scrub(call.arguments))

    def _scrub(self, text: str) -> str:
        return self._scrubber.scrub(text)

    def _short(self, e: BaseException) -> str:
        """An exception's first line, scrubbed before it is cut (a cut could keep a secret's start)."""
        text = self._scrub(str(e)).strip()
        return text.splitlines()[0][:200] if text else type(e).__name__

    def _unsendable(self) -> str | None:
        """Why a credential cannot be sent (a control character h11 would quote back), or None."""
        spec, name = self.spec, self.spec.name
        checks = [(spec.api_key or "", f"The API key for {name}")]
        checks += [(value, f"The value of the header {header} for {name}") for header, value in spec.headers]
        return next((p for value, what in checks if (p := problem(value, what))), None)

    def _flush(self, gid: int, emit: Emit) -> None:
        """Text held back in case it was the start of the key: the reply ended, so it was not."""
        if held := self._scrubber.flush():
            emit(Delta(gid, held, 0))


class _Retryable(Exception):
    def __init__(self, code: FailureCode, message: str, wait: float | None) -> None:
        super().__init__(message)
        self.code, self.message, self.wait = code, message, wait


def _error_text(response: Any, scrub: Callable[[str], str]) -> str:
    """The server's own words about an error, short and printable, scrubbed before they are cut."""
    import httpx

    try:
        raw = response.read()[:4096].decode("utf-8", "replace")
    except (httpx.HTTPError, httpx.StreamError, OSError):  # the body itself failed to arrive
        return ""
    try:
        data = json.loads(raw)
        if isinstance(data, dict):
            err = data.get("error", data.get("message", data.get("detail")))
            if isinstance(err, dict):
                err = err.get("message", err)
            raw = str(err)
    except ValueError:
        pass
    text = " ".join(scrub(raw).split())
    return scrub(text)[:300]


_STATUS_CODES: dict[int, FailureCode] = {401: "unauthorized", 403: "unauthorized", 404: "not_found", 400: "bad_request"}


def _status_code(status: int) -> FailureCode:
    return _STATUS_CODES.get(status, "http_error")


def _status_message(name: str, status: int, text: str) -> str:
    said = f" It said: {text}" if text else ""
    if status in (401, 403):
        return f"{name} refused the request ({status}): check its API key in the provider settings.{said}"
    if status == 404:
        return f"{name} has no such endpoint or model ({status}): check its base URL and model name.{said}"
    return f"{name} answered {status}.{said}"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
