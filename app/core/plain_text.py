"""An answer as plain text: its Markdown's words without the markup (for "Copy as plain text").

Answers are Markdown; pasting one into an e-mail or a form wants `Use the **-v** flag` to read
`Use the -v flag`. Parsed with markdown-it-py (CommonMark plus tables and strikethrough, as the
transcript will render them), so `2 * 3 * 4` or a `*` inside code stays what it is: a regex
stripper gets those wrong. Code blocks keep their text verbatim, lists keep a bullet or their
number, table cells are separated by tabs. No Qt.
"""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["to_plain_text"]


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def to_plain_text(markdown: str) -> str:
    """The text a person reads in rendered `markdown`, with paragraphs separated by blank lines."""
    out: list[str] = []
    lists: list[list[int]] = []  # per open list: [next number] for ordered, [] for bullets
    for token in _parser().parse(markdown):
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append([int(token.attrs.get("start", 1) or 1)] if kind == "ordered_list_open" else [])
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
            _end_block(out, lists)
        elif kind == "list_item_open":
            marker = f"{lists[-1][0]}. " if lists and lists[-1] else "• "
            if lists and lists[-1]:
                lists[-1][0] += 1
            out.append("  " * (len(lists) - 1) + marker)
        elif kind == "inline":
            out.append(_inline(token))
        elif kind in ("fence", "code_block"):
            out.append(token.content.rstrip("\n"))
            _end_block(out, lists)
        elif kind in ("th_open", "td_open") and out and not out[-1].endswith("\n"):
            out.append("\t")
        elif kind == "tr_close":
            out.append("\n")
        elif kind == "hr":
            out.append("—" * 3)
            _end_block(out, lists)
        elif kind in ("paragraph_close", "heading_close", "table_close", "html_block"):
            if kind == "html_block":
                out.append(token.content.rstrip("\n"))
            _end_block(out, lists)
    return "".join(out).strip("\n")


def _end_block(out: list[str], lists: list[list[int]]) -> None:
    """A blank line between blocks; one line break between the items of a list."""
    wanted = 1 if lists else 2
    have = 0
    for part in reversed(out):
        stripped = part.rstrip("\n")
        have += len(part) - len(stripped)
        if stripped:
            break
    if have < wanted:
        out.append("\n" * (wanted - have))


def _inline(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content or child.attrs.get("src", "") or "")  # type: ignore[arg-type]
    return "".join(parts)
