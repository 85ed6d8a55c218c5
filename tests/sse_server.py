"""A scripted streaming HTTP server for the remote providers' fault tests: a real threaded
server on 127.0.0.1 that answers each request with a `Script` — status, headers, and a body
given as the exact byte writes to make, with pauses between them. Beyond the frame helpers
sse() and ndjson() it knows no protocol: tests/stream_samples.py holds streams shaped like
OpenAI's, Ollama's and Dify's.

Bodies go out with HTTP/1.1 chunked transfer encoding, one chunk per write and TCP_NODELAY,
so a test controls what arrives together: a UTF-8 character or an SSE line split across two
writes with a pause between arrives split. `close_early` ends the connection without the
chunked terminator (a truncated stream). A client that goes away mid-response is not an error
here: it is recorded on the Request (`disconnected_at`), seen within ~10 ms during a pause and
before each write.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

POLL_S = 0.01  # how often a pause looks at the client socket and at release()


@dataclass
class Script:
    """What one request gets."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # added last, so they can override
    # bytes: written and flushed as one chunk; float: pause this many seconds (a stall).
    body: list[bytes | float] = field(default_factory=list)
    close_early: bool = False  # after the body, close without the chunked terminator
    content_type: str = "text/event-stream"
    # False: Content-Length instead of chunked (what servers send for a JSON error);
    # close_early then closes before the last write, so the body is short of that length.
    chunked: bool = True
    headers_after: float = 0.0  # seconds before the status line: a server slow to start answering


@dataclass
class Request:
    """One request as received; the times are time.monotonic() values."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any  # the parsed body, or None when it is not JSON
    received_at: float
    completed_at: float | None = None  # the whole scripted response was written
    disconnected_at: float | None = None  # the client went away before that
    _gone: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    def wait_disconnected(self, timeout: float) -> bool:
        """True once the client has gone away mid-response (within timeout seconds)."""
        return self._gone.wait(timeout)


class ScriptedServer:
    """`with ScriptedServer([Script(...), ...]) as s:` serves the scripts in order, one per
    request (the last repeats), or asks a function for each request's script."""

    def __init__(self, scripts: list[Script] | Callable[[Request], Script]) -> None:
        if isinstance(scripts, list) and not scripts:
            raise ValueError("at least one Script")
        self._scripts = scripts
        self.requests: list[Request] = []  # appended under a lock, in arrival order
        self.base_url = ""  # "http://127.0.0.1:PORT", set on __enter__
        self._lock = threading.Lock()
        self._releases = 0
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._listener: _Listener | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ScriptedServer:
        self._listener = _Listener(self)
        self.base_url = f"http://127.0.0.1:{self._listener.server_port}"
        # A short poll interval so that shutdown() returns at once.
        self._thread = threading.Thread(target=self._listener.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # pauses end; remaining writes are skipped
        assert self._listener is not None and self._thread is not None
        self._listener.shutdown()
        with self._lock:
            open_now = list(self._connections)
        for conn in open_now:  # idle keep-alive connections block in a read for the next request
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._listener.server_close()  # joins the handler threads (daemon_threads is False)
        self._thread.join()

    def release(self) -> None:
        """End every pause now running (later pauses still pause)."""
        with self._lock:
            self._releases += 1

    def _script_for(self, request: Request) -> Script:
        with self._lock:
            self.requests.append(request)
            n = len(self.requests)
        if callable(self._scripts):
            return self._scripts(request)
        return self._scripts[min(n, len(self._scripts)) - 1]

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._connections.add if open_ else self._connections.discard)(conn)


class _Listener(http.server.ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins every handler thread

    def __init__(self, owner: ScriptedServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn); tests make no lookups.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class _ClientGone(Exception):
    """The client closed its end mid-response (a cancel)."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies
    timeout = 30  # a safety net; __exit__ ends idle connections itself
    server: _Listener

    def setup(self) -> None:
        super().setup()
        # Each write leaves at once, not held back to be merged with the next (Nagle).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        self.server.owner._track(self.connection, False)
        try:
            super().finish()
        except OSError:
            pass  # flushing to a client that has gone

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client went away between requests, or __exit__ shut the socket
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests read `requests` instead

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = Request(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, parsed, time.monotonic()
        )
        script = owner._script_for(request)
        try:
            self._respond(script, request)
        except _ClientGone:
            request.completed_at = None
            request.disconnected_at = time.monotonic()
            request._gone.set()
            self.close_connection = True

    def _respond(self, script: Script, request: Request) -> None:
        # An empty chunk would be the terminator: empty writes are skipped.
        items = [b for b in script.body if not isinstance(b, bytes) or b]
        headers = {"Content-Type": script.content_type, "Cache-Control": "no-cache"}
        if script.chunked:
            headers["Transfer-Encoding"] = "chunked"
            items = [b"%x\r\n%b\r\n" % (len(b), b) if isinstance(b, bytes) else b for b in items]
        else:
            headers["Content-Length"] = str(sum(len(b) for b in items if isinstance(b, bytes)))
        last = max((i for i, b in enumerate(items) if isinstance(b, bytes)), default=None)
        if script.close_early and not script.chunked and last is not None:
            del items[last]  # the body stops one write short of its Content-Length
        elif script.chunked and not script.close_early:
            items.append(b"0\r\n\r\n")
        if script.headers_after:
            self._pause(script.headers_after)
        self.send_response(script.status)
        for name, value in (headers | script.headers).items():
            self.send_header(name, value)
        try:
            self.end_headers()
        except OSError as e:
            raise _ClientGone from e
        writes_left = sum(isinstance(b, bytes) for b in items)
        for item in items:
            if self.server.owner._stopping.is_set():
                self.close_connection = True
                return
            if not isinstance(item, bytes):
                self._pause(float(item))
                continue
            writes_left -= 1
            if writes_left == 0 and not script.close_early:
                # Before the last write, so a client that has read the whole body sees it set.
                request.completed_at = time.monotonic()
            self._send(item)
        if request.completed_at is None:  # no body at all, or close_early: the client sees
            request.completed_at = time.monotonic()  # the end when the handler returns, later
        if script.close_early:
            self.close_connection = True

    def _send(self, data: bytes) -> None:
        if self._peer_gone(0):
            raise _ClientGone
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except OSError as e:  # BrokenPipe / ConnectionReset: the client cancelled
            raise _ClientGone from e

    def _pause(self, seconds: float) -> None:
        owner = self.server.owner
        with owner._lock:
            seen = owner._releases
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if owner._stopping.is_set() or owner._releases != seen:
                return
            if self._peer_gone(min(left, POLL_S)):
                raise _ClientGone

    def _peer_gone(self, wait: float) -> bool:
        """Whether the client has closed its end, waiting up to `wait` seconds to see it."""
        sock = self.connection
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            return False
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                return True  # EOF
        except OSError:
            return True  # reset
        time.sleep(wait)  # bytes of a next request are waiting: not a close, and select would not block
        return False


def sse(data: object, event: str | None = None) -> bytes:
    """One SSE frame: `event:` (if given), then `data:` lines, then the blank line. A str is
    sent as is (e.g. "[DONE]"); anything else is JSON with raw UTF-8, as OpenAI and vLLM send
    it (llama-cpp-python escapes non-ASCII instead), so a character can be split across writes."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    lines = ([f"event: {event}"] if event else []) + [f"data: {line}" for line in text.split("\n")]
    return ("\n".join(lines) + "\n\n").encode()


def sse_comment(text: str) -> bytes:
    """An SSE comment line, which clients must ignore (servers send them as keep-alives)."""
    return f": {text}\n\n".encode()


def ndjson(obj: object) -> bytes:
    """One NDJSON line, compact like Go's encoder (Ollama)."""
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def paced(writes: list[bytes], gap: float) -> list[bytes | float]:
    """The writes with a pause between each two: a stream that is still running when a test
    cancels it, and whose tokens arrive one by one."""
    out: list[bytes | float] = []
    for i, w in enumerate(writes):
        out += [gap, w] if i else [w]
    return out
