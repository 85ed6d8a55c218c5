"""Start the test MCP server (mcp_server.py) as Hearth would: its mcp.json entries, and an HTTP one on a free port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from app.core.tools import HttpServer, StdioServer

SCRIPT = Path(__file__).with_name("mcp_server.py")


def stdio_entry() -> dict[str, object]:
    return {"command": sys.executable, "args": [str(SCRIPT), "stdio"]}


def stdio_server(name: str = "test") -> StdioServer:
    return StdioServer(name, sys.executable, (str(SCRIPT), "stdio"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def http_server(name: str = "web") -> Iterator[HttpServer]:
    """The same server over streamable HTTP on 127.0.0.1, up for the block."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the test MCP server did not start") from None
                time.sleep(0.05)
        yield HttpServer(name, f"http://127.0.0.1:{port}/mcp")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
