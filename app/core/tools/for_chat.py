"""The tools one chat's message may use, as a ToolRegistry: the servers of mcp.json that its
choice names (enabled ones only) and the built-ins it chose. Qt-free.

Must not: read mcp.json itself (the caller hands in the McpConfig it read off the event loop's
thread), start a server (the registry does that on first use), or decide what is offered (the
tool loop filters the registry's tools by the chat's choice).
"""

from __future__ import annotations

from app.core.tools.builtin import BUILTIN_TOOLS, BuiltinTool, builtin_tools
from app.core.tools.choice import ChatTools
from app.core.tools.config import McpConfig
from app.core.tools.registry import ToolRegistry
from app.core.tools.values import BUILTIN_SERVER

__all__ = ["registry_for"]


def registry_for(
    chat_tools: ChatTools, config: McpConfig | None, *, documents: BuiltinTool | None = None
) -> ToolRegistry:
    """A registry with only what `chat_tools` chose: a server no entry names is never started.
    `config` None: mcp.json could not be read, so the built-ins alone. `documents`: search_documents
    bound to the person's store (app.core.tools.documents_tool), in place of the unbound built-in."""
    wanted = chat_tools.servers()
    servers = [s for s in config.enabled() if s.name in wanted] if config is not None else []
    names = [n for n in BUILTIN_TOOLS if chat_tools.offers(f"{BUILTIN_SERVER}/{n}")]
    builtins = [documents if documents is not None and b.info.name == "search_documents" else b
                for b in builtin_tools(names)]  # fmt: skip
    return ToolRegistry(servers, builtins)
