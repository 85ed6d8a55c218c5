"""Markdown that arrives a few characters at a time, split into committed blocks and pending ones.

Owns: the parser Hearth renders answers with (markdown-it-py: CommonMark, tables, strikethrough;
raw HTML off, so it stays text) and the streaming split. A block is a top-level Markdown block,
or one item of a top-level list. Once a later block has started, a block is closed for good:
it is *committed*, handed out once and never again. Only the last block is *pending*, and
the one before it while the last starts on an unfinished line (a line that looks like a
block's start may turn out to continue the block above: "```py```" is not a fence). Each
update re-parses the text from the first pending block's first line, so the cost of an update
is the size of the pending blocks, never the size of the answer (Textual's MarkdownStream,
mdstream).

The contract, pinned by a property test: for any chunking of any text, the committed blocks
plus the pending ones equal the blocks of a full parse of the same text.

A pending block bigger than LIVE_LIMIT (a paragraph of thousands of characters, a long code
block; TABLE_LIVE_LIMIT for a table) is not re-parsed on every update: only when a new line
could start or end a block (in a table, a line that starts with "|" only adds a row). In
between, the update says `raw` and the caller appends the new source as it is; a block bigger
than PLAIN_OVER is drawn as its source text even once closed, live or reopened alike, so no
single frame ever parses or draws more than about PLAIN_OVER characters.

Reference-style link definitions are off: one at the end of an answer would change a link at
its start, which would break the contract (and a chat answer has no use for them).
A bare block opener at the very end (`-`, `#`, `1.`, a backtick fence) is held back until its
next character arrives, so a paragraph does not flash into a list or heading for one frame.
Must not: import Qt or know how blocks are drawn.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = [
    "LIVE_LIMIT",
    "PLAIN_OVER",
    "TABLE_LIVE_LIMIT",
    "Block",
    "ListInfo",
    "MarkdownStream",
    "Update",
    "blocks_of",
    "close_of",
    "live_limit",
    "parser",
]

LIVE_LIMIT = 2_000  # characters of pending block re-parsed on every update
# The same for a table: drawing one costs far more per character (about 25 ms for 60 rows here).
TABLE_LIVE_LIMIT = 600
PLAIN_OVER = 12_000  # a block bigger than this is shown as written

# The last line, unfinished, is nothing but the start of a block: wait for its next character.
_BARE_LINE = re.compile(r"[ \t]*(?:[-+*>#=_~`|:]+|\d{1,9}[.)]?)[ \t]*")
_HEAD = 16  # a bare opener is shorter than this; so is what decides whether a line may split
_NEWLINES = re.compile(r"\r\n?")
# A line that could end the pending block or start another: blank, or starting like a block.
_MAY_SPLIT = re.compile(r"\n[ \t]*(?:\n|[-+*>#=_~`|:0-9])")
# An unfinished line that may still change the block above it: a setext underline, a table's
# delimiter row, a fence's close, a rule. A line with any other character cannot, so the block
# above is committed (else a line that runs on without a newline would keep it redrawn).
# A backtick fence's opening line, unfinished: a backtick later on that line would make it no
# fence but text that continues the paragraph above ("```1. ```"), so it may join too.
_MAY_JOIN = re.compile(r"[-=|:`~+*_ \t]*$| {0,3}```")
# The same, in a table: a line that starts with "|" (indented less than code) is one more row.
_MAY_SPLIT_TABLE = re.compile(r"\n(?! {0,3}\|)[ \t]*(?:\n|[-+*>#=_~`|:0-9])")


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
    marker: str  # "-", "*" or "+"; "." or ")" for ordered lists: another marker starts another list


@dataclass(frozen=True, eq=False)
class Block:
    """One block: its markdown-it tokens and the lines it spans in the whole answer."""

    kind: str  # paragraph, heading, fence, code_block, list_item, table, blockquote, hr
    tokens: tuple[Token, ...]
    start_line: int
    end_line: int
    list: ListInfo | None = None
    source: str = ""  # its lines as written

    def signature(self) -> tuple[object, ...]:
        """What the block shows. Tight and loose lists are drawn alike, so `hidden` is left out."""
        return (self.kind, self.list, tuple(_token_signature(t) for t in self.tokens))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Block) and self.signature() == other.signature()

    def __hash__(self) -> int:
        return hash(self.signature())


@dataclass
class Update:
    """What changed: blocks committed since the last update (render them once), and the pending ones."""

    committed: list[Block] = field(default_factory=list)
    pending: list[Block] = field(default_factory=list)
    start: int = 0  # where the pending blocks' text starts in the stream's text
    end: int = 0  # where the text shown ends (short of a held-back opener)
    raw: bool = False  # not parsed this time: `pending` is the last parse's, the text up to `end` is newer


def _token_signature(t: Token) -> tuple[object, ...]:
    children = tuple(_token_signature(c) for c in t.children or ())
    return (t.type, t.tag, t.nesting, t.content, t.markup, t.info, tuple(sorted(t.attrs.items())), children)


def live_limit(block: Block) -> int:
    """How big `block` may grow, pending, before it is shown as written until it closes."""
    return TABLE_LIVE_LIMIT if block.kind == "table" else LIVE_LIMIT


def blocks_of(
    tokens: Sequence[Token], line_offset: int = 0, carry: ListInfo | None = None, lines: Sequence[str] = ()
) -> list[Block]:
    """Split a token stream into blocks. `carry`: the list that the first list here continues
    (its id, and the number of its first item here) when it has the same marker. `lines`: the parsed text's lines, for
    each block's `source`."""
    out: list[Block] = []

    def source(first: int, last: int) -> str:
        return "\n".join(lines[first:last])

    i = 0
    while i < len(tokens):
        t = tokens[i]
        end = close_of(tokens, i)
        first_line, last_line = t.map or [0, 0]
        if t.type in ("bullet_list_open", "ordered_list_open"):
            ordered = t.type == "ordered_list_open"
            start = int(t.attrs.get("start", 1)) if ordered else 1
            list_id = line_offset + first_line
            if carry is not None and i == 0 and carry.ordered == ordered and carry.marker == t.markup:
                start, list_id = carry.start, carry.list_id
                number = carry.number
            else:
                number = start
            j = i + 1
            while j < end:
                item_end = close_of(tokens, j)
                item = tokens[j]
                span = item.map or [first_line, last_line]
                out.append(
                    Block(
                        "list_item",
                        tuple(tokens[j : item_end + 1]),
                        line_offset + span[0],
                        line_offset + span[1],
                        ListInfo(list_id, ordered, number, start, t.markup),
                        source(span[0], span[1]),
                    )
                )
                number += 1
                j = item_end + 1
        else:
            out.append(
                Block(
                    t.type.removesuffix("_open"),
                    tuple(tokens[i : end + 1]),
                    line_offset + first_line,
                    line_offset + last_line,
                    source=source(first_line, last_line),
                )
            )
        i = end + 1
    return out


def close_of(tokens: Sequence[Token], i: int) -> int:
    """The index of the token that closes the one at `i` (itself when it opens nothing)."""
    depth = 0
    for j in range(i, len(tokens)):
        depth += tokens[j].nesting
        if depth <= 0:
            return j
    return len(tokens) - 1


class MarkdownStream:
    """Feed it chunks; each update returns the newly committed blocks and the pending ones."""

    def __init__(self, md: MarkdownIt | None = None) -> None:
        self._md = md or parser()
        self._text = ""
        self._held_cr = False  # a chunk ended with "\r": the next one may start with "\n"
        self._tail = 0  # where the pending block's source starts, in _text
        self._tail_line = 0  # the line it starts on
        self._carry: ListInfo | None = None  # a list at the pending block continues this list
        self._last: Block | None = None  # the last block committed
        self.pending: list[Block] = []
        self._line_head = ""  # the first _HEAD characters of the last line
        self._line_len = 0  # and its length
        self._may_split = False  # since the last parse, a line began that may end or start a block

    @property
    def text(self) -> str:
        return self._text

    def shown_text(self) -> str:
        """The text the blocks so far stand for: all of it, short of a held-back opener."""
        return self._text[: len(self._text) - self._held()]

    def _held(self) -> int:
        """How many characters at the end are held back (a bare opener on the last line)."""
        line = self._line_head
        bare = (
            self._line_len <= len(line)
            and len(self._text) - self._line_len >= self._tail
            and _BARE_LINE.fullmatch(line) is not None
        )
        return self._line_len if bare else 0

    def feed(self, chunk: str) -> Update:
        if self._held_cr:
            chunk = "\r" + chunk
        self._held_cr = chunk.endswith("\r")
        if self._held_cr:
            chunk = chunk[:-1]
        chunk = _NEWLINES.sub("\n", chunk)
        # Only the new text and the head of the line it continues are looked at: O(chunk).
        head = "\n" + self._line_head if self._line_len < _HEAD else ""
        splits = _MAY_SPLIT_TABLE if len(self.pending) == 1 and self.pending[0].kind == "table" else _MAY_SPLIT
        self._may_split = self._may_split or splits.search(head + chunk) is not None
        last = chunk.rfind("\n")
        if last >= 0:
            self._line_head, self._line_len = chunk[last + 1 : last + 1 + _HEAD], len(chunk) - last - 1
        else:
            self._line_head, self._line_len = (self._line_head + chunk[:_HEAD])[:_HEAD], self._line_len + len(chunk)
        self._text += chunk
        return self._update(final=False)

    def finish(self) -> Update:
        """The answer is complete: everything is committed, held-back text included."""
        if self._held_cr:
            self._text += "\n"
            self._held_cr = False
        return self._update(final=True)

    def _update(self, *, final: bool) -> Update:
        end = len(self._text) - (0 if final else self._held())
        if (
            not final
            and len(self.pending) == 1
            and end - self._tail > live_limit(self.pending[0])
            and not self._may_split
        ):
            return Update([], self.pending, self._tail, end, raw=True)
        self._may_split = False
        source = self._text[self._tail : end]
        blocks = blocks_of(self._md.parse(source), self._tail_line, self._carry, source.split("\n"))
        if final or not blocks:
            self.pending = []
            if final:
                self._tail, self._carry = len(self._text), None
            return Update(blocks, [], self._tail, end)
        keep = 1
        last_line = self._tail_line + source.count("\n")
        if (
            len(blocks) > 1
            and not source.endswith("\n")
            and blocks[-1].start_line == last_line
            and _MAY_JOIN.match(source, source.rfind("\n") + 1) is not None
        ):
            keep = 2  # the last block starts on an unfinished line: it may yet join the one above
        committed, pending = blocks[:-keep], blocks[-keep:]
        skip = pending[0].start_line - self._tail_line
        offset = self._tail
        for _ in range(skip):
            offset = self._text.index("\n", offset) + 1
        self._tail, self._tail_line = offset, pending[0].start_line
        last = committed[-1] if committed else self._last
        self._last = last
        # The next parse starts at the first pending block: a list there continues its list, or
        # the list of the item just before it (a "- - -" rule may become an item of that list).
        if pending[0].list is not None:
            self._carry = pending[0].list
        elif last is not None and last.list is not None:
            self._carry = replace(last.list, number=last.list.number + 1)
        else:
            self._carry = None
        self.pending = pending
        return Update(committed, pending, offset, end)
