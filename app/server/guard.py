"""Which requests reach the API at all: a web page open in a browser must not drive the server.

A page on any site can send requests to 127.0.0.1 (a POST with a `text/plain` body needs no
preflight), and through DNS rebinding it can read the answers too: its own name is made to
resolve to 127.0.0.1, so the browser thinks it talks to the page's own site. Without a token
(`--no-auth`) that would hand the model and every provider to any page. So, before any route
and before the token:

- Host: on a loopback address only loopback names are served (localhost, 127.0.0.1, [::1], any
  port); a rebound name (`Host: attacker.example`) gets 403. On another address the token is
  required (app.server.command), which no page has, and the names clients use for this machine
  (its LAN name, a proxy's) cannot be known here, so Host is not checked there.
- Origin: browsers add it to every cross-origin request and every POST. A request that carries
  one is refused with 403 unless the origin is allowed (`--allow-origin`, HEARTH_ALLOWED_ORIGINS,
  as Ollama's OLLAMA_ORIGINS); an allowed one gets CORS headers, its preflight (OPTIONS) too.
- Content-Type: a POST must be `application/json`. text/plain, form bodies and none at all are
  what a page may send without a preflight: 415.

Must not: know the routes, read a body, or echo a token.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from app.core.errors import ServeError
from app.server.wire import error_body

__all__ = ["ORIGINS_ENV", "Guard", "allowed_origins", "loopback"]

ORIGINS_ENV = "HEARTH_ALLOWED_ORIGINS"
_ORIGIN = re.compile(r"[a-z][a-z0-9+.\-]*://[^/\s?#]+")  # scheme://host[:port], `*` allowed in host and port
_PREFLIGHT_MAX_AGE = "600"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def loopback(host: str) -> bool:
    """Whether `host` (an address or name to listen on, or a Host header's name) is this machine only."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_origins(given: Iterable[str] = ()) -> tuple[str, ...]:
    """The origins allowed to use the server from a browser: `given` (--allow-origin) and
    HEARTH_ALLOWED_ORIGINS (comma-separated). ServeError names an entry that is not an origin."""
    entries = [*given, *os.environ.get(ORIGINS_ENV, "").split(",")]
    out: list[str] = []
    for entry in (e.strip().lower().rstrip("/") for e in entries):
        if not entry:
            continue
        if entry not in ("*", "null") and not _ORIGIN.fullmatch(entry):
            raise ServeError(
                "cannot_serve",
                f"{entry[:80]!r} is not an origin (from --allow-origin or {ORIGINS_ENV}): write "
                "scheme://host[:port] without a path, e.g. https://chat.example.com or "
                "http://localhost:3000, or * for any page.",
            )
        out.append(entry)
    return tuple(dict.fromkeys(out))


def _pattern(origin: str) -> re.Pattern[str]:
    """`*` matches any run of characters but `/` (http://localhost:* is any port); the rest is literal."""
    return re.compile("[^/]*".join(re.escape(part) for part in origin.split("*")))


class Guard:
    """ASGI middleware in front of the whole app (every route, 404s included)."""

    def __init__(self, app: App, *, listen_host: str, origins: tuple[str, ...] = ()) -> None:
        self._app = app
        self._check_host = loopback(listen_host)
        self._origins = [_pattern(o) for o in origins]
        self._any_origin = "*" in origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        refusal = self._refusal(scope["method"], headers, origin)
        if refusal is not None:
            status, message, code = refusal
            await _answer(send, status, error_body(message, "invalid_request_error", code))
            return
        if origin is None:
            await self._app(scope, receive, send)
            return
        cors = [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            asked = headers.get("access-control-request-headers", "")
            await _answer(
                send,
                204,
                b"",
                [
                    *cors,
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", asked.encode("latin-1")),
                    (b"access-control-max-age", _PREFLIGHT_MAX_AGE.encode()),
                ],
            )
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *cors,
                    (b"access-control-expose-headers", b"Retry-After"),
                ]
            await send(message)

        await self._app(scope, receive, with_cors)

    def _refusal(self, method: str, headers: dict[str, str], origin: str | None) -> tuple[int, str, str] | None:
        """(status, message, code) when the request is refused, else None."""
        host = headers.get("host")
        # A request without Host (HTTP/1.0) cannot come from a browser, which always sends it.
        if self._check_host and host is not None and not _loopback_host(host):
            return (
                403,
                f"This server answers only requests addressed to localhost, 127.0.0.1 or [::1], not "
                f"{host[:80]!r}: a web page may be reaching it through a name of its own (DNS "
                "rebinding). Clients on this computer use http://127.0.0.1:<port>/v1.",
                "host_not_allowed",
            )
        if (
            origin is not None
            and not self._any_origin
            and not any(p.fullmatch(origin.lower().rstrip("/")) for p in self._origins)
        ):
            return (
                403,
                f"Requests from web pages are refused, and this one comes from {origin[:80]!r}. To let a "
                "web app you trust use this server, allow its origin: `hearth serve --allow-origin "
                f"ORIGIN` or the environment variable {ORIGINS_ENV} (comma-separated).",
                "origin_not_allowed",
            )
        if method == "POST":
            media = headers.get("content-type", "").partition(";")[0].strip().lower()
            if media != "application/json":
                got = f"this one is {media[:60]!r}" if media else "this one has none"
                return (
                    415,
                    f"Send the body as JSON with `Content-Type: application/json` ({got}): other types are "
                    "what a web page may send unasked, so they are refused.",
                    "unsupported_media_type",
                )
        return None


def _loopback_host(host: str) -> bool:
    """A Host header's value (`name`, `name:port`, `[v6]:port`) names this machine."""
    if host.startswith("["):
        name, _, port = host[1:].partition("]")
        if ":" not in name or (port and not port.startswith(":")):
            return False
        port = port[1:]
    else:
        name, _, port = host.partition(":")
    return (not port or (port.isascii() and port.isdigit())) and loopback(name)


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    start = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    if body:
        start.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
