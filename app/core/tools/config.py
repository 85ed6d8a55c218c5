"""`<data dir>/mcp.json`: the MCP servers Hearth may use, in the `mcpServers` format that Claude
Desktop, Cursor and LM Studio share, so a file from one of them works as it is:

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/me"]},
        "search": {"url": "http://127.0.0.1:8931/mcp", "headers": {"Authorization": "Bearer ..."}},
        "old": {"command": "uvx", "args": ["old-server"], "disabled": true}}}

A stdio server has `command` (with optional `args` and `env`), an HTTP one `url` (with optional
`headers`); `type` may say which ("stdio", "http", "streamable-http"); `"disabled": true` is
Hearth's own. Other keys (other apps' settings) are kept on save and otherwise ignored.

Owns: reading (a missing file is no servers; one bad entry is reported and the others load),
writing atomically (a crash mid-write leaves the old file), adding and removing a server.
Must not: start or reach a server.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.tools.errors import McpConfigError
from app.core.tools.values import BUILTIN_SERVER, HttpServer, ServerConfig, StdioServer

__all__ = ["MCP_FILE", "McpConfig", "add_server", "load_mcp_config", "mcp_path", "remove_server"]

MCP_FILE = "mcp.json"
_MAX_FILE_BYTES = 1024 * 1024  # a configuration, not a data file: past this it is a mistake
# A name becomes the first half of `server/tool`, and is typed in commands.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_STDIO_TYPES = frozenset({"stdio"})
_HTTP_TYPES = frozenset({"http", "streamable-http", "streamable_http", "streamableHttp"})


def mcp_path(data_dir: Path) -> Path:
    """mcp.json sits in Hearth's data folder, beside providers.toml and settings.json."""
    return data_dir / MCP_FILE


@dataclass(frozen=True)
class McpConfig:
    """What mcp.json says: the servers that could be read (enabled or not), and one error per
    entry that could not (each names the file, the server and the key)."""

    path: Path
    servers: tuple[ServerConfig, ...]
    problems: tuple[McpConfigError, ...] = ()

    def enabled(self) -> tuple[ServerConfig, ...]:
        return tuple(s for s in self.servers if not s.disabled)


def load_mcp_config(path: Path) -> McpConfig:
    """Read mcp.json. A missing file is no servers; a file that is not a JSON object with an
    `mcpServers` object raises McpConfigError; a bad entry lands in `problems`."""
    document = _read(path)
    if document is None:
        return McpConfig(path, ())
    servers: list[ServerConfig] = []
    problems: list[McpConfigError] = []
    for name, entry in _servers_of(document, path).items():
        try:
            servers.append(_server(path, name, entry))
        except McpConfigError as e:
            problems.append(e)
    return McpConfig(path, tuple(servers), tuple(problems))


def add_server(path: Path, name: str, entry: dict[str, Any], *, replace: bool = False) -> ServerConfig:
    """Add the server `name` (an `mcpServers` entry, checked first) and save; the rest of the file
    is kept as it is. Raises McpConfigError (`exists` unless `replace`, or what is wrong with it)."""
    server = _server(path, name, entry)
    document = _read(path) or {"mcpServers": {}}
    servers = _servers_of(document, path)
    if name in servers and not replace:
        raise McpConfigError(
            "exists", f"{path}: a server named {name!r} is already there; remove it first or pick another name.",
            path=path, server=name,
        )  # fmt: skip
    servers[name] = entry
    _write(path, document)
    return server


def remove_server(path: Path, name: str) -> None:
    """Remove the server `name` and save. Raises McpConfigError (`no_such_server`) if it is not there."""
    document = _read(path)
    servers = _servers_of(document, path) if document is not None else {}
    if name not in servers:
        raise McpConfigError("no_such_server", f"{path}: there is no server named {name!r}.", path=path, server=name)
    del servers[name]
    _write(path, document or {})


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise McpConfigError(
            "unreadable", f"{path} cannot be read ({e.strerror}); check its permissions.", path=path
        ) from e
    if len(data) > _MAX_FILE_BYTES:
        raise McpConfigError("unreadable", f"{path} is over 1 MB: that is not a list of servers.", path=path)
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise McpConfigError(
            "not_json", f"{path} is not valid JSON ({e}); fix it, or move it away to start with no servers.", path=path
        ) from e
    if not isinstance(document, dict):
        raise McpConfigError("bad_shape", f'{path} must hold a JSON object with "mcpServers" in it.', path=path)
    return document


def _servers_of(document: dict[str, Any], path: Path) -> dict[str, Any]:
    servers = document.setdefault("mcpServers", {})
    if not isinstance(servers, dict):
        raise McpConfigError(
            "bad_shape", f'{path}: "mcpServers" must be an object of servers by name, '
            'e.g. {"files": {"command": ...}}.',
            path=path, key="mcpServers",
        )  # fmt: skip
    return servers


def _server(path: Path, name: str, entry: object) -> ServerConfig:
    def bad(key: str | None, what: str) -> McpConfigError:
        where = f'{path}, server "{name}"' + (f', key "{key}"' if key else "")
        return McpConfigError("bad_server", f"{where}: {what}", path=path, server=name, key=key)

    if not _NAME.match(name) or name == BUILTIN_SERVER:
        raise bad(None, "a name is letters, digits, '-', '_' and '.', up to 64, and not 'hearth' (Hearth's own tools).")
    if not isinstance(entry, dict):
        raise bad(None, 'must be an object with "command" (a program to start) or "url" (an HTTP server).')
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise bad("disabled", "must be true or false.")
    kind = entry.get("type")
    if kind is not None and kind not in _STDIO_TYPES | _HTTP_TYPES:
        hint = " (SSE servers are not supported; most also serve streamable HTTP at /mcp)" if kind == "sse" else ""
        raise bad("type", f'must be "stdio" or "http", not {kind!r}{hint}.')
    if "command" in entry and "url" in entry:
        raise bad(None, 'has both "command" and "url": keep the one that says how to reach the server.')
    if "url" in entry or kind in _HTTP_TYPES:
        url = entry.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            raise bad("url", "must be an http:// or https:// address, e.g. http://127.0.0.1:8931/mcp.")
        return HttpServer(name, url, _strings(entry, "headers", bad), disabled)
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise bad("command", 'is missing: give the program to start (e.g. "npx"), or "url" for an HTTP server.')
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise bad("args", 'must be a list of strings, e.g. ["-y", "some-server"].')
    return StdioServer(name, command, tuple(args), _strings(entry, "env", bad), disabled)


def _strings(entry: dict[str, Any], key: str, bad: Callable[[str | None, str], McpConfigError]) -> dict[str, str]:
    value = entry.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise bad(key, 'must be an object of text values, e.g. {"NAME": "value"}.')
    return dict(value)


def _write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Headers and env may hold tokens: the file is the person's alone, as it is for the other apps.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
