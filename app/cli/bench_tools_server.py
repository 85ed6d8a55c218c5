"""The MCP server `hearth bench tools` starts over stdio (`python -m app.cli.bench_tools_server`):
`echo` answers at once (the round trip of a call), `hang` never does (what Stop must end).
Written with the `mcp` SDK, as a person's own server would be. Not a tool anyone is offered.
"""

from __future__ import annotations

import anyio
from mcp.server.mcpserver import MCPServer

server = MCPServer("hearth-bench")


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    return text


@server.tool()
async def hang() -> str:
    """Never answer (waits an hour)."""
    await anyio.sleep(3600)
    return "late"


if __name__ == "__main__":
    server.run("stdio")
