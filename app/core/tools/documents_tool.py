"""`hearth/search_documents`: the person's documents (the retrieval flow, app.core.documents) as a
tool the model may call with a query of its own, instead of (or beside) the passages put after a
message. Off until chosen, like every built-in; asked about before each call, like every tool.

Owns: the tool's description and its run over a `Retriever` and the collections it may search
(the chat's, or every collection). The passages come back as numbered, labelled quotes, bounded
like any tool's result: data for the model, never instructions.
Must not: index anything, or reach a collection it was not given.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from app.core.tools.builtin import SEARCH_DOCUMENTS, BuiltinTool
from app.core.tools.errors import ToolError
from app.core.tools.results import bounded_text
from app.core.tools.values import BUILTIN_SERVER, CallLimits, ToolResult

if TYPE_CHECKING:
    from app.core.documents.retrieval import Retriever

__all__ = ["documents_tool"]


def documents_tool(retriever: Retriever, collection_ids: Sequence[int] | None) -> BuiltinTool:
    """The tool over `retriever`, searching `collection_ids` (None: every collection)."""

    async def run(arguments: Mapping[str, Any], limits: CallLimits) -> ToolResult:
        from app.core.documents.retrieval import source_label

        started = time.perf_counter()
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError("bad_arguments", 'search_documents needs "query": what to look for.',
                            server=BUILTIN_SERVER, tool="search_documents")  # fmt: skip
        found = await retriever.retrieve(query, collection_ids)
        if not found.passages:
            text = "No passage of the person's documents matches." + (f" ({found.note})" if found.note else "")
        else:
            text = "\n\n".join(
                f"[{i}] {source_label(p)}\n" + "\n".join(f"> {line}" for line in p.text.splitlines())
                for i, p in enumerate(found.passages, start=1)
            )
            if found.note:
                text += f"\n\n({found.note})"
        kept, truncated = bounded_text(text, limits.max_bytes)
        return ToolResult(kept, False, (time.perf_counter() - started) * 1000, truncated)

    return BuiltinTool(SEARCH_DOCUMENTS, run)
