"""A local Hugging Face Hub for tests: a real threaded HTTP server on 127.0.0.1 answering
the requests huggingface-hub (2.4.0) makes to read a file's metadata and download it, with
faults a test can switch on while it runs. It stands in for the network, not for the app.

As the real Hub does for an LFS file:
- HEAD/GET /{repo_id}/resolve/{revision}/{filename}: 302 to the CDN, with X-Repo-Commit,
  X-Linked-Etag: "<sha256>", X-Linked-Size and ETag. Errors carry X-Error-Code (RepoNotFound,
  RevisionNotFound, EntryNotFound, GatedRepo), which hf_raise_for_status turns into its types.
- HEAD/GET /cdn/{sha256}: the bytes, with Content-Length, Accept-Ranges, ETag, and one Range
  per request (206 + Content-Range; 416 past the end).

And the API's JSON, as huggingface-hub's HfApi reads it:
- GET /api/models?search=&filter=gguf&sort=&limit=: the repos (from `repos`, else one per repo of
  `files`) whose id holds every search word, sorted by downloads, likes or lastModified.
- GET /api/models/{repo_id}[/revision/{rev}][?blobs=true]: one repo with its siblings (with
  `blobs`: size, blobId and lfs {sha256, size}); 401 + GatedRepo for a gated repo without a token
  (any Bearer token counts as one that accepted the terms), 404 + RepoNotFound.
`api_faults` answers every API request with a status (429 adds Retry-After), a delay, or JSON
that is not JSON. Every API request's Authorization header is kept in `authorizations`, any
that reaches the CDN in `cdn_authorizations` (it should stay empty).

The CDN listens on a second port. huggingface-hub follows a HEAD's redirect while it stays on
the same origin and then reads the metadata from the final response; the real CDN is another
host, so the client stops at the 302 and reads X-Linked-* from it. Another port is another
origin, so the client takes the same path here.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import json
import re
import socket
import socketserver
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK = 16 * 1024  # small writes, so throttling, drops, stalls and a client's cancel land mid-body
DEFAULT_COMMIT = "6c4f0d3a9b2e7f15d8a0c4e9b3f2a1d7e5c8b0a9"  # 40 hex, like a real commit id


@dataclass
class HubFile:
    """One file in one repo, at one revision (branch name) and commit."""

    repo_id: str
    filename: str
    data: bytes
    revision: str = "main"
    commit: str = DEFAULT_COMMIT
    gated: bool = False

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class HubRepo:
    """A repo's card facts for the API (defaults stand in for a repo only `files` name)."""

    repo_id: str
    downloads: int = 0
    likes: int = 0
    license: str | None = "apache-2.0"
    last_modified: str = "2026-01-01T00:00:00.000Z"
    gated: bool = False


@dataclass
class ApiFaults:
    """Faults on /api/ requests; a test may change them while the server runs."""

    status: int | None = None  # answer with this status (429 adds Retry-After: 2)
    delay_s: float = 0.0  # wait this long before answering (the socket open)
    bad_json: bool = False  # a 200 whose body is not JSON


@dataclass
class Faults:
    """Faults on CDN GETs of file bodies; a test may change them while the server runs.
    Offsets are file offsets, so a resumed Range request meets the same fault position."""

    ignore_range: bool = False  # answer 200 with the whole body even when Range is sent
    corrupt_at: int | None = None  # flip one byte (XOR 0xFF) at this offset in what is served
    drop_after: int | None = None  # close the connection when the body reaches this offset ...
    drop_times: int = 1  # ... in this many requests (counts down), then serve normally
    rate_bytes_per_s: int | None = None  # throttle, read on every write
    stall_after: int | None = None  # stop sending at this offset, socket open, until release()
    status: int | None = None  # answer with this status instead (429/503 add Retry-After: 1)


@dataclass
class Request:
    """One response, recorded as its status line goes out; body_bytes grows as it is sent."""

    method: str
    path: str
    range: str | None
    status: int
    # File-content bytes handed to the socket; counted before each write, so a client that
    # has read a body never sees a smaller count here.
    body_bytes: int = 0


class HubServer:
    """The hub and its CDN; a context manager that starts both on enter and stops them,
    joining every thread, on exit."""

    def __init__(self, files: list[HubFile], repos: list[HubRepo] | None = None) -> None:
        self.files = list(files)  # fixed once the server starts
        self.repos = {r.repo_id: r for r in repos or []}
        for f in self.files:
            self.repos.setdefault(f.repo_id, HubRepo(f.repo_id, gated=f.gated))
        self.faults = Faults()
        self.api_faults = ApiFaults()
        self.authorizations: list[str] = []
        self.cdn_authorizations: list[str] = []
        self.requests: list[Request] = []
        self.endpoint = ""  # "http://127.0.0.1:PORT", set on __enter__
        self.cdn_endpoint = ""
        self._lock = threading.Lock()
        self._served = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._unstall = threading.Condition()
        self._releases = 0
        self._listeners: list[_Listener] = []
        self._threads: list[threading.Thread] = []
        self._blobs: dict[str, HubFile] = {}

    def __enter__(self) -> HubServer:
        self._blobs = {f.sha256: f for f in self.files}  # hash once, not on every CDN request
        self._listeners = [_Listener(self), _Listener(self)]
        self.endpoint, self.cdn_endpoint = (f"http://127.0.0.1:{s.server_port}" for s in self._listeners)
        for s in self._listeners:
            # A short poll interval so that shutdown() returns at once.
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self.release()  # stalled and throttled writers see _stopping and end their response
        for s in self._listeners:
            s.shutdown()  # no new connections from here on
        with self._lock:
            open_now = list(self._connections)
        for conn in open_now:
            # Idle keep-alive connections sit in a blocking read for the next request;
            # shutting the socket down ends that read, so the joins below do not wait.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for s in self._listeners:
            s.server_close()  # joins the handler threads (daemon_threads is False)
        for t in self._threads:
            t.join()

    def release(self) -> None:
        """Let every response stalled at `faults.stall_after` go on (later ones stall again)."""
        with self._unstall:
            self._releases += 1
            self._unstall.notify_all()

    def bytes_served(self) -> int:
        """Total file-content bytes sent by the CDN."""
        with self._lock:
            return self._served

    def _wait_for_release(self) -> None:
        with self._unstall:
            seen = self._releases
            self._unstall.wait_for(lambda: self._releases != seen or self._stopping.is_set())

    def _take_drop(self) -> bool:
        with self._lock:
            if self.faults.drop_times <= 0:
                return False
            self.faults.drop_times -= 1
            return True

    def _count(self, request: Request, n: int) -> None:
        with self._lock:
            request.body_bytes += n
            self._served += n

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            (self._connections.add if open_ else self._connections.discard)(conn)


class _Listener(http.server.ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins every handler thread

    def __init__(self, hub: HubServer) -> None:
        self.hub = hub
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn); tests make no lookups.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx pools connections
    timeout = 30  # a safety net; __exit__ ends idle connections itself
    server: _Listener

    def setup(self) -> None:
        super().setup()
        self.server.hub._track(self.connection, True)

    def finish(self) -> None:
        self.server.hub._track(self.connection, False)
        super().finish()

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:  # the client went away (BrokenPipe, ConnectionReset) or we shut it
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: tests read `requests` instead

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def do_GET(self) -> None:
        self._route(send_body=True)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Every response passes here (send_error too, before headers may have been parsed).
        headers = getattr(self, "headers", None)
        wanted = headers.get("Range") if headers is not None else None
        self._request = Request(self.command or "", getattr(self, "path", ""), wanted, code)
        self.server.hub._record(self._request)
        super().send_response(code, message)

    def _route(self, send_body: bool) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/api/models"):
            self._api(path, send_body)
        elif path.startswith("/cdn/"):
            self._blob(path.removeprefix("/cdn/"), send_body)
        elif "/resolve/" in path:
            self._resolve(path, send_body)
        else:
            self._error(404, None, "Not found", send_body)

    def _api(self, path: str, send_body: bool) -> None:
        hub, faults = self.server.hub, self.server.hub.api_faults
        auth = self.headers.get("Authorization")
        if auth:
            with hub._lock:
                hub.authorizations.append(auth)
        if faults.delay_s and hub._stopping.wait(faults.delay_s):
            return self._error(503, None, "Stopping", send_body)
        if faults.status is not None:
            extra = {"Retry-After": "2"} if faults.status == 429 else {}
            return self._error(faults.status, None, "Injected fault", send_body, extra)
        query = parse_qs(urlsplit(self.path).query)
        rest = unquote(path.removeprefix("/api/models").strip("/"))
        if not rest:
            answer: object = self._search(query)
        else:
            repo_id, _, _revision = rest.partition("/revision/")
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found", send_body)
            if repo.gated and not auth:
                msg = f"Access to model {repo_id} is restricted. You must have access to it and be authenticated."
                return self._error(401, "GatedRepo", msg, send_body)
            answer = self._card(repo, with_files=query.get("blobs", ["false"])[0].lower() == "true")
        body = b"{not json" if faults.bad_json else json.dumps(answer).encode()
        self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
        if send_body:
            self.wfile.write(body)
        return None

    def _search(self, query: dict[str, list[str]]) -> list[dict[str, object]]:
        hub = self.server.hub
        words = query.get("search", [""])[0].lower().split()
        found = [r for r in hub.repos.values() if all(w in r.repo_id.lower() for w in words)]
        if "gguf" in query.get("filter", []):
            with_gguf = {f.repo_id for f in hub.files if f.filename.endswith(".gguf")}
            found = [r for r in found if r.repo_id in with_gguf]
        key = query.get("sort", ["downloads"])[0]
        order = {"likes": lambda r: r.likes, "lastModified": lambda r: r.last_modified}.get(key, lambda r: r.downloads)
        found.sort(key=order, reverse=True)
        limit = int(query.get("limit", ["1000"])[0])
        return [self._card(r, with_files=False) for r in found[:limit]]

    def _card(self, repo: HubRepo, *, with_files: bool) -> dict[str, object]:
        files = [f for f in self.server.hub.files if f.repo_id == repo.repo_id]
        card: dict[str, object] = {
            "id": repo.repo_id,
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "modelId": repo.repo_id,
            "author": repo.repo_id.partition("/")[0],
            "downloads": repo.downloads,
            "likes": repo.likes,
            "lastModified": repo.last_modified,
            "createdAt": repo.last_modified,
            "gated": "auto" if repo.gated else False,
            "private": False,
            "tags": ["gguf"] + ([f"license:{repo.license}"] if repo.license else []),
            "library_name": "gguf",
        }
        if with_files:
            card["sha"] = files[0].commit if files else DEFAULT_COMMIT
            card["cardData"] = {"license": repo.license} if repo.license else {}
            card["siblings"] = [
                {
                    "rfilename": f.filename,
                    "size": len(f.data),
                    "blobId": hashlib.sha1(f.data).hexdigest(),
                    "lfs": {"sha256": f.sha256, "size": len(f.data), "pointerSize": 135},
                }
                for f in files
            ]
        return card

    def _resolve(self, path: str, send_body: bool) -> None:
        hub = self.server.hub
        repo_id, _, rest = path[1:].partition("/resolve/")
        revision, _, filename = rest.partition("/")
        repo_id, revision, filename = unquote(repo_id), unquote(revision), unquote(filename)
        in_repo = [f for f in hub.files if f.repo_id == repo_id]
        if not in_repo:
            return self._error(404, "RepoNotFound", "Repository not found", send_body)
        at_rev = [f for f in in_repo if revision in (f.revision, f.commit)]
        if not at_rev:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", send_body)
        file = next((f for f in at_rev if f.filename == filename), None)
        if file is None:  # the real Hub names the commit even here; hf caches the miss by it
            headers = {"X-Repo-Commit": at_rev[0].commit}
            return self._error(404, "EntryNotFound", "Entry not found", send_body, headers)
        if file.gated and not self.headers.get("Authorization"):  # the Hub's answer without an accepted token
            msg = f"Access to model {repo_id} is restricted. You must have access to it and be authenticated."
            return self._error(401, "GatedRepo", msg, send_body)
        sha = file.sha256
        self._head(302, {
            "Location": f"{hub.cdn_endpoint}/cdn/{sha}",
            "X-Repo-Commit": file.commit,
            "X-Linked-Etag": f'"{sha}"',
            "X-Linked-Size": str(len(file.data)),
            "ETag": f'"{sha}"',
            "Content-Length": "0",
        })  # fmt: skip
        return None

    def _blob(self, sha: str, send_body: bool) -> None:
        hub, faults = self.server.hub, self.server.hub.faults
        if self.headers.get("Authorization"):  # the real CDN is another host: a token must never reach it
            with hub._lock:
                hub.cdn_authorizations.append(self.headers["Authorization"])
        file = hub._blobs.get(sha)
        if file is None:
            return self._error(404, None, "No such blob", send_body)
        if send_body and faults.status is not None:
            extra = {"Retry-After": "1"} if faults.status in (429, 503) else {}
            return self._error(faults.status, None, "Injected fault", send_body, extra)
        total = len(file.data)
        start, stop, status = 0, total, 200
        wanted = self.headers.get("Range")
        span = _byte_range(wanted, total) if wanted and not faults.ignore_range else None
        if span is not None and span[0] >= total:
            return self._error(416, None, "Range not satisfiable", send_body, {"Content-Range": f"bytes */{total}"})
        if span is not None:
            (start, stop), status = span, 206
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(stop - start)}
        headers |= {"Accept-Ranges": "bytes", "ETag": f'"{sha}"'}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
        self._head(status, headers)
        if send_body:
            self._write_body(file.data, start, stop)
        return None

    def _write_body(self, data: bytes, start: int, stop: int) -> None:
        """Write data[start:stop] in small pieces, applying the faults."""
        hub, faults = self.server.hub, self.server.hub.faults
        corrupt, stall, cut = faults.corrupt_at, faults.stall_after, stop
        drop = faults.drop_after
        if drop is not None and start <= drop < stop and hub._take_drop():
            cut = drop
        if stall is not None and not start <= stall < cut:
            stall = None
        pos = start
        while pos < cut:
            if stall is not None and pos == stall:
                hub._wait_for_release()
                stall = None
                if hub._stopping.is_set():
                    break
            rate = faults.rate_bytes_per_s
            # Throttled pieces are ~1/20 s of data, so a cancel is seen within ~50 ms.
            n = CHUNK if rate is None else max(1, min(CHUNK, rate // 20))
            end = min(pos + n, cut, stall if stall is not None else cut)
            piece = data[pos:end]
            if corrupt is not None and pos <= corrupt < end:
                flipped = bytearray(piece)
                flipped[corrupt - pos] ^= 0xFF
                piece = bytes(flipped)
            hub._count(self._request, len(piece))
            try:
                self.wfile.write(piece)
            except OSError:  # the client cancelled: not an error for the server
                hub._count(self._request, -len(piece))
                break
            pos = end
            if rate is not None and hub._stopping.wait(len(piece) / rate):
                break
        if pos < stop:  # the body is short of Content-Length: the connection cannot be reused
            self.close_connection = True

    def _error(self, status: int, code: str | None, msg: str, send_body: bool, headers: dict | None = None) -> None:
        body = json.dumps({"error": msg}).encode()
        sent = {"X-Error-Code": code} if code else {}
        sent |= {"X-Error-Message": msg, "Content-Type": "application/json", "Content-Length": str(len(body))}
        self._head(status, sent | (headers or {}))
        if send_body:
            self.wfile.write(body)

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _byte_range(header: str, total: int) -> tuple[int, int] | None:
    """[start, stop) for one `bytes=` range; None for a header to ignore (serve all).
    A start at or past `total` means the range cannot be satisfied (416)."""
    m = _RANGE.fullmatch(header.strip())
    if m is None or m.group(1) == m.group(2) == "":
        return None
    first, last = m.groups()
    if first == "":  # suffix: the last N bytes
        n = int(last)
        return (max(total - n, 0) if n else total), total
    start = int(first)
    if last and int(last) < start:
        return None  # invalid per RFC 9110: ignore the header
    return start, (total if last == "" else min(int(last) + 1, total))
