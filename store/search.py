"""Full-text search over titles and every message (FTS5, migration 0004_search_index).

Titles come best match first; messages best match first while the words are rare enough for
bm25 to be cheap (RANK_CAP), newest first otherwise, so that a common word stays fast at a
million messages (`hearth bench scale`).

A person's words become an FTS5 query here and nowhere else: each word is quoted, so
operators, quotes and column filters in what they type are just text; every word must
match, and the last one also as a prefix (results while typing). Snippets come back with
the matches as (start, end) offsets, so each front end marks them its own way, and at most
SNIPPET_CHARS long: FTS5 bounds a snippet in words, and one "word" can be a whole message
(10 MB of text without a space, or a language written without spaces).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection

__all__ = ["SNIPPET_CHARS", "SearchHit", "fts_query", "search"]

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One match: a conversation's title (message_id None) or one of its messages."""

    conversation_id: int
    title: str
    message_id: int | None
    role: str | None
    snippet: str  # the text around the match, plain
    highlights: tuple[tuple[int, int], ...]  # (start, end) offsets of the matches in `snippet`
    updated_at: float
    tool_name: str | None = None  # a "tool" message: the tool whose result matched (store.tool_rows)


def _phrases(text: str) -> list[str]:
    words = _WORD.findall(text)
    return [*(f'"{w}"' for w in words[:-1]), f'"{words[-1]}"*'] if words else []


def fts_query(text: str) -> str | None:
    """The FTS5 query for what a person typed; None when it holds no word to look for."""
    return " ".join(_phrases(text)) or None


# bm25 weighs a word by counting every message that holds it, on every query: at a million
# messages a common word ("the", "train") costs 0.1-2 s. Best match first only when every
# word is rarer than this; otherwise messages come newest first, which FTS5 streams.
RANK_CAP = 1_000
# About three lines of a result list; FTS5's 16 words of ordinary text fit well within it.
SNIPPET_CHARS = 300


def search(conn: Connection, text: str, *, limit: int = 50) -> list[SearchHit]:
    """Titles first (best match first), then messages of every branch (best first, or newest
    first for common words: RANK_CAP)."""
    query = fts_query(text)
    if query is None:
        return []
    # Markers with a fresh random part: no stored text can contain them, whatever bytes a
    # message holds (a fixed control character could, and would shift every highlight).
    nonce = secrets.token_hex(8)
    start, end = f"\x02{nonce}\x02", f"\x03{nonce}\x03"
    titles = conn.exec_driver_sql(
        "SELECT c.id, c.title, snippet(conversation_fts, 0, ?, ?, '…', 16), c.updated_at "
        "FROM conversation_fts JOIN conversation c ON c.id = conversation_fts.rowid "
        "WHERE conversation_fts MATCH ? ORDER BY rank LIMIT ?",
        (start, end, query, limit),
    ).all()
    order = "rank" if _all_rare(conn, _phrases(text)) else "message_fts.rowid DESC"
    messages = conn.exec_driver_sql(
        "SELECT m.conversation_id, c.title, m.id, m.role, snippet(message_fts, 0, ?, ?, '…', 16), c.updated_at, "
        "CASE WHEN m.role = 'tool' AND json_valid(m.tool_meta) THEN json_extract(m.tool_meta, '$.name') END "
        "FROM message_fts JOIN message m ON m.id = message_fts.rowid "
        f"JOIN conversation c ON c.id = m.conversation_id WHERE message_fts MATCH ? ORDER BY {order} LIMIT ?",
        (start, end, query, limit),
    ).all()
    hits = [
        SearchHit(cid, title, None, None, *_bounded(*_marks(snip, start, end)), updated)
        for cid, title, snip, updated in titles
    ]
    hits += [
        SearchHit(cid, title, mid, role, *_bounded(*_marks(snip, start, end)), updated, _name(role, tool))
        for cid, title, mid, role, snip, updated, tool in messages
    ]
    return hits[:limit]


def _name(role: str, tool: object) -> str | None:
    # A hand-edited record may hold anything: a tool message still says it is one.
    return (tool if isinstance(tool, str) and tool else "unknown tool") if role == "tool" else None


def _all_rare(conn: Connection, phrases: list[str]) -> bool:
    """Every word matches fewer than RANK_CAP messages (counted up to the cap: cheap)."""
    for phrase in phrases:
        (found,) = conn.exec_driver_sql(
            "SELECT count(*) FROM (SELECT 1 FROM message_fts WHERE message_fts MATCH ? LIMIT ?)", (phrase, RANK_CAP)
        ).one()
        if found >= RANK_CAP:
            return False
    return True


def _marks(marked: str, start: str, end: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The snippet without its markers, and where the markers were."""
    plain: list[str] = []
    spans: list[tuple[int, int]] = []
    at = 0
    for i, piece in enumerate(marked.split(start)):
        inside, _, after = piece.partition(end) if i else ("", "", piece)
        if i:
            spans.append((at, at + len(inside)))
        plain += [inside, after]
        at += len(inside) + len(after)
    return "".join(plain), tuple(spans)


def _bounded(snippet: str, spans: tuple[tuple[int, int], ...]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """At most SNIPPET_CHARS of the snippet (and an ellipsis for each end cut off), starting a
    little before the first match; the matches' offsets moved (or cut) to what is kept."""
    if len(snippet) <= SNIPPET_CHARS:
        return snippet, spans
    first = spans[0][0] if spans else 0
    begin = max(0, min(first - SNIPPET_CHARS // 4, len(snippet) - SNIPPET_CHARS))
    end = begin + SNIPPET_CHARS
    lead = "…" if begin > 0 else ""
    shift = len(lead) - begin
    kept = tuple((max(a, begin) + shift, min(b, end) + shift) for a, b in spans if a < end and b > begin)
    return lead + snippet[begin:end] + ("…" if end < len(snippet) else ""), kept
