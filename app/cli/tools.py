"""`hearth tools list [--json]`: every MCP server in mcp.json (enabled or not, reachable or not,
and why) with its tools, and Hearth's built-in tools.

Every enabled server is started or reached at once, each within --timeout, so one that hangs
holds up none of the others. Tool names and descriptions come from the servers: untrusted text,
escaped on a terminal. Exit codes: 0 listed (also when a server cannot be reached: the list says
why), 2 mcp.json cannot be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from app.cli.support import fail
from app.cli.terminal import for_stream
from app.core.tools.builtin import BUILTIN_TOOLS
from app.core.tools.config import load_mcp_config, mcp_path
from app.core.tools.errors import McpConfigError
from app.core.tools.registry import ServerReport, survey
from app.core.tools.values import HttpServer, ServerConfig, StdioServer, ToolInfo

__all__ = ["add_tools_parser", "run_tools"]


def add_tools_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], data_dir: argparse.ArgumentParser
) -> None:
    p = sub.add_parser("tools", parents=[data_dir], help="tools a model may use: MCP servers (mcp.json) and built-ins")
    verbs = p.add_subparsers(dest="verb", metavar="{list}")
    listing = verbs.add_parser(
        "list", parents=[data_dir], help="every server in mcp.json and its tools, and the built-ins"
    )
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    listing.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds each server has to start and answer (10)"
    )


def run_tools(args: argparse.Namespace, data_dir: Path) -> int:
    if getattr(args, "verb", None) != "list":
        return fail("say what to do: hearth tools list")
    path = mcp_path(data_dir)
    try:
        config = load_mcp_config(path)
    except McpConfigError as e:
        return fail(e.message)
    reports = asyncio.run(survey(config.servers, timeout_s=args.timeout))
    builtins = [b.info for b in BUILTIN_TOOLS.values()]
    if args.json:
        document = {
            "config": str(path),
            "servers": [_server_json(r) for r in reports],
            "problems": [{"server": p.server, "key": p.key, "message": p.message} for p in config.problems],
            "builtin": [_tool_json(t) for t in builtins],
        }
        print(for_stream(sys.stdout, json=True)(json.dumps(document, ensure_ascii=False)))
        return 0
    out = for_stream(sys.stdout)
    lines = [f"MCP servers ({path}):" if config.servers or config.problems else f"No MCP servers: {path} lists none."]
    for report in reports:
        lines.extend(_server_lines(report))
    lines.extend(f"  ! {p.message}" for p in config.problems)
    lines.append("Built-in tools (each off until chosen for a chat):")
    lines.extend(_tool_line(t) for t in builtins)
    print(out("\n".join(lines)))
    return 0


def _where(server: ServerConfig) -> str:
    if isinstance(server, StdioServer):
        return " ".join([server.command, *server.args])
    assert isinstance(server, HttpServer)
    return server.url  # never the headers: they may hold a token


def _server_lines(report: ServerReport) -> list[str]:
    server = report.server
    if report.state == "ready":
        head = f"  {server.name}  ({_where(server)}): {len(report.tools)} tool{'s' if len(report.tools) != 1 else ''}"
        return [head, *(_tool_line(t) for t in report.tools)]
    state = "disabled" if report.state == "disabled" else "not reachable"
    return [f"  {server.name}  ({_where(server)}): {state}: {report.problem}"]


def _tool_line(tool: ToolInfo) -> str:
    description = " ".join(tool.description.split())
    return f"    {tool.qualified}" + (f"  {description}" if description else "")


def _tool_json(tool: ToolInfo) -> dict[str, Any]:
    return {"name": tool.qualified, "description": tool.description, "input_schema": tool.input_schema}


def _server_json(report: ServerReport) -> dict[str, Any]:
    server = report.server
    return {
        "name": server.name,
        "transport": "stdio" if isinstance(server, StdioServer) else "http",
        "where": _where(server),
        "state": report.state,
        "problem": report.problem,
        "elapsed_ms": round(report.elapsed_ms, 1),
        "tools": [_tool_json(t) for t in report.tools],
    }
