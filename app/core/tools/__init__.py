"""Tools a model may call: MCP servers from mcp.json and Hearth's built-ins. Qt-free.

    config.py    mcp.json: load, save, add, remove (the `mcpServers` format other apps share)
    client.py    one MCP server's connection: list its tools, call one, bounded and cancellable
    results.py   what a tool returned, as bounded text (data, never interpreted)
    builtin.py   hearth/current_time, hearth/read_file
    registry.py  every tool by `server/tool`, and the call by that name; `survey` of all servers
    values.py    the frozen values; errors.py the errors

Must not: ask for consent or talk to a model (the chat's tool loop does both, around `call`).
"""

from app.core.tools.builtin import BUILTIN_TOOLS, BuiltinTool, builtin_tools
from app.core.tools.client import McpConnection
from app.core.tools.config import McpConfig, add_server, load_mcp_config, mcp_path, remove_server
from app.core.tools.errors import McpConfigError, ToolError, ToolErrorCode
from app.core.tools.registry import ServerReport, ServerState, ToolRegistry, split_name, survey
from app.core.tools.values import (
    BUILTIN_SERVER,
    CallLimits,
    HttpServer,
    ServerConfig,
    StdioServer,
    ToolInfo,
    ToolResult,
)

__all__ = [
    "BUILTIN_SERVER",
    "BUILTIN_TOOLS",
    "BuiltinTool",
    "CallLimits",
    "HttpServer",
    "McpConfig",
    "McpConfigError",
    "McpConnection",
    "ServerConfig",
    "ServerReport",
    "ServerState",
    "StdioServer",
    "ToolError",
    "ToolErrorCode",
    "ToolInfo",
    "ToolRegistry",
    "ToolResult",
    "add_server",
    "builtin_tools",
    "load_mcp_config",
    "mcp_path",
    "remove_server",
    "split_name",
    "survey",
]
