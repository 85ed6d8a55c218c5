"""Markdown that arrives a few characters at a time, split into committed blocks and one pending block.

Owns: the parser Hearth renders answers with (markdown-it-py: CommonMark, tables, strikethrough;
raw HTML off, so it stays text) and the streaming split. A block is a top-level Markdown block,
or one item of a top-level list. Once a later block has started, a block is closed for good:
it is *committed*, handed out once and never again. Only the last block is *pending*; each
update re-parses the text from that block's first line, so the cost of an update is the size
of the pending block, never the size of the answer (Textual's MarkdownStream, mdstream).

The contract, pinned by a property test: for any chunking of any text, the committed blocks
plus the pending one equal the blocks of a full parse of the same text.

Reference-style link definitions are off: one at the end of an answer would change a link at
its start, which would break the contract (and a chat answer has no use for them).
A bare block opener at the very end (`-`, `#`, `1.`, a backtick fence) is held back until its
next character arrives, so a paragraph does not flash into a list or heading for one frame.
Must not: import Qt or know how blocks are drawn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["Block", "ListInfo", "MarkdownStream", "Update", "blocks_of", "parser"]

# The last line, unfinished, is nothing but the start of a block: wait for its next character.
_BARE_OPENER = re.compile(r"(?:^|\n)[ \t]*(?:[-+*>#=_~`|:]+|\d{1,9}[.)]?)[ \t]*\Z")
_NEWLINES = re.compile(r"\r\n?")


def parser() -> MarkdownIt:
    """The CommonMark parser answers are rendered with. Raw HTML is parsed as text."""
    md = MarkdownIt("commonmark", {"html": False})
    md.enable(["table", "strikethrough"])
    md.disable("reference")
    return md


@dataclass(frozen=True)
class ListInfo:
    """Where a list item belongs: items with the same `list_id` are one list."""

    list_id: int  # the line the list starts on, in the whole answer
    ordered: bool
    number: int  # this item's number (ordered lists)
    start: int  # the list's first number


@dataclass(frozen=True, eq=False)
class Block:
    """One block: its markdown-it tokens and the lines it spans in the whole answer."""

    kind: str  # paragraph, heading, fence, code_block, list_item, table, blockquote, hr
    tokens: tuple[Token, ...]
    start_line: int
    end_line: int
    list: ListInfo | None = None

    def signature(self) -> tuple[object, ...]:
        """What the block shows. Tight and loose lists are drawn alike, so `hidden` is left out."""
        return (self.kind, self.list, tuple(_token_signature(t) for t in self.tokens))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Block) and self.signature() == other.signature()

    def __hash__(self) -> int:
        return hash(self.signature())


@dataclass
class Update:
    """What changed: blocks committed since the last update (render them once), and the pending one."""

    committed: list[Block] = field(default_factory=list)
    pending: Block | None = None


def _token_signature(t: Token) -> tuple[object, ...]:
    children = tuple(_token_signature(c) for c in t.children or ())
    return (t.type, t.tag, t.nesting, t.content, t.markup, t.info, tuple(sorted(t.attrs.items())), children)


def blocks_of(tokens: Sequence[Token], line_offset: int = 0, carry: ListInfo | None = None) -> list[Block]:
    """Split a token stream into blocks. `carry`: the list that the first list here continues
    (its id, and the number of its first item here)."""
    out: list[Block] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        end = _matching_close(tokens, i)
        first_line, last_line = (t.map or [0, 0])
        if t.type in ("bullet_list_open", "ordered_list_open"):
            ordered = t.type == "ordered_list_open"
            start = int(t.attrs.get("start", 1)) if ordered else 1
            list_id = line_offset + first_line
            if carry is not None and i == 0:
                start, list_id = carry.start, carry.list_id
                number = carry.number
            else:
                number = start
            j = i + 1
            while j < end:
                item_end = _matching_close(tokens, j)
                item = tokens[j]
                lines = item.map or [first_line, last_line]
                out.append(Block("list_item", tuple(tokens[j:item_end + 1]), line_offset + lines[0],
                                 line_offset + lines[1], ListInfo(list_id, ordered, number, start)))
                number += 1
                j = item_end + 1
        else:
            out.append(Block(t.type.removesuffix("_open"), tuple(tokens[i:end + 1]),
                             line_offset + first_line, line_offset + last_line))
        i = end + 1
    return out


def _matching_close(tokens: Sequence[Token], i: int) -> int:
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth <= 0:
            return j
    return len(tokens) - 1


class MarkdownStream:
    """Feed it chunks; each update returns the newly committed blocks and the pending one."""

    def __init__(self, md: MarkdownIt | None = None) -> None:
        self._md = md or parser()
        self._text = ""
        self._held_cr = False  # a chunk ended with "\r": the next one may start with "\n"
        self._tail = 0  # where the pending block's source starts, in _text
        self._tail_line = 0  # the line it starts on
        self._carry: ListInfo | None = None  # the pending block is an item of this list
        self.pending: Block | None = None

    @property
    def text(self) -> str:
        return self._text

    def shown_text(self) -> str:
        """The text the blocks so far stand for: all of it, short of a held-back opener."""
        held = _BARE_OPENER.search(self._text[self._tail:])
        return self._text if held is None else self._text[:self._tail + held.start()]

    def feed(self, chunk: str) -> Update:
        if self._held_cr:
            chunk = "\r" + chunk
        self._held_cr = chunk.endswith("\r")
        if self._held_cr:
            chunk = chunk[:-1]
        self._text += _NEWLINES.sub("\n", chunk)
        return self._update(final=False)

    def finish(self) -> Update:
        """The answer is complete: everything is committed, held-back text included."""
        if self._held_cr:
            self._text += "\n"
            self._held_cr = False
        return self._update(final=True)

    def _update(self, *, final: bool) -> Update:
        source = self._text[self._tail:]
        if not final:
            held = _BARE_OPENER.search(source)
            if held is not None:
                source = source[:held.start()]
        blocks = blocks_of(self._md.parse(source), self._tail_line, self._carry)
        if final or not blocks:
            self.pending = None
            if final:
                self._tail, self._carry = len(self._text), None
            return Update(blocks, None)
        pending = blocks[-1]
        skip = pending.start_line - self._tail_line
        offset = self._tail
        for _ in range(skip):
            offset = self._text.index("\n", offset) + 1
        self._tail, self._tail_line = offset, pending.start_line
        self._carry = pending.list
        self.pending = pending
        return Update(blocks[:-1], pending)
