"""`hearth serve`'s options. The command itself is app.server.command, handed to the CLI by
app.main (the CLI never imports the server)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["DEFAULT_PORT", "add_serve_parser"]

DEFAULT_PORT = 8765


def add_serve_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve",
        parents=[common],
        help="serve the local model and every provider over an "
        "OpenAI-compatible API (POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models, GET /metrics)",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this computer "
        "only; another address lets other machines in, with the token)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--yes", action="store_true", help="download a --model hf.co/OWNER/REPO:QUANT without asking")
    p.add_argument("--show-token", action="store_true", help="print the bearer token clients must send, and exit")
    p.add_argument("--no-auth", action="store_true", help="accept requests without the token (loopback only)")
    p.add_argument(
        "--queue",
        type=int,
        default=16,
        help="requests that may wait for the local model before more are refused with 429 (default 16)",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (e.g. https://chat.example.com, http://localhost:3000; * for any) "
        "use the server from a browser; repeatable, added to HEARTH_ALLOWED_ORIGINS (comma-separated). "
        "Requests from any other page are refused",
    )
    p.add_argument("--no-local", action="store_true", help="serve the providers only: load no local model")
    p.add_argument(
        "--no-share",
        action="store_true",
        help="keep the engine to this server: `hearth ask` and other windows load their own (HEARTH_NO_SHARE=1)",
    )
