"""What a tool returned, turned into text a model and a person can read, bounded.

Owns: joining text parts, describing the others ("[image/png, 12 KB]"), replacing what is not
valid Unicode, and cutting past the size limit with a note that says so. Must not: interpret the
text in any way (no control tokens, no markup, no further calls are looked for: it is data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

__all__ = ["bounded_text", "result_text"]

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def result_text(content: Sequence[Any], structured: dict[str, Any] | None, max_bytes: int) -> tuple[str, bool]:
    """The text of a call's content blocks (or its structured content when it has no blocks),
    cut to `max_bytes` of UTF-8; the flag says whether it was cut."""
    parts = [_part(block) for block in content]
    if not parts and structured is not None:
        parts = [json.dumps(structured, ensure_ascii=False)]
    return bounded_text("\n".join(parts), max_bytes)


def bounded_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """`text` with lone surrogates (which no file or terminal can encode) made U+FFFD, and cut to
    `max_bytes` of UTF-8 at a character boundary, with a note giving both sizes."""
    text = _SURROGATE.sub("\ufffd", text)
    if len(text) <= max_bytes // 4:  # no character takes more than 4 bytes: no need to encode
        return text, False
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text, False
    kept = data[:max_bytes].decode("utf-8", errors="ignore")  # drops a character cut in half
    note = f"\n[cut by Hearth: the tool returned {len(data):,} bytes of text; the first {max_bytes:,} are above]"
    return kept + note, True


def _part(block: Any) -> str:
    import mcp_types  # here, not at the top: the SDK's types take 0.3 s to import

    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        return f"[{block.mime_type}, {_size(len(block.data) * 3 // 4)}]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[link: {block.name} {block.uri}]"
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mcp_types.TextResourceContents):
            return f"[{resource.uri}]\n{resource.text}"
        if isinstance(resource, mcp_types.BlobResourceContents):
            kind = resource.mime_type or "binary data"
            return f"[{kind}, {_size(len(resource.blob) * 3 // 4)}: {resource.uri}]"
    return f"[{getattr(block, 'type', type(block).__name__)} content]"


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{round(n / 1024)} KB"
    return f"{n / (1024 * 1024):.1f} MB"
