"""Drawing Markdown blocks into a QTextDocument, at a cursor, with formats only.

Owns: how each kind of block looks (paragraphs, headings, lists, quotes, tables, code blocks
with a language label and a Copy link, rules) and how inline text looks (emphasis, code,
strikethrough, links, images as a link placeholder). Every character goes in through
`QTextCursor.insertText` with a QTextCharFormat: nothing is ever parsed as HTML, so text the
model wrote can never become markup, and no resource is ever named to the document.
Links from the model are stored under `MODEL_LINK` so they can never pose as Hearth's own
anchors (`hearth-copy:`, the message actions); the transcript confirms before opening one.
Must not: scroll, hold the stream, or re-render a block it drew before (the caller removes
what it wants redrawn).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from markdown_it.token import Token
from PySide6.QtCore import Qt
from PySide6.QtGui import (
    QBrush,
    QFont,
    QFontDatabase,
    QPalette,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
    QTextFrame,
    QTextFrameFormat,
    QTextLength,
    QTextList,
    QTextListFormat,
    QTextTable,
    QTextTableFormat,
)

from app.core.markdown_stream import PLAIN_OVER, Block, close_of
from app.ui.theme import Colours, colours, pygments_style
from app.ui.widgets.code_highlight import runs

__all__ = [
    "CODE_COPY",
    "MODEL_LINK",
    "ColourLater",
    "MarkdownWriter",
    "Row",
    "body_block_format",
    "collapsed_block",
    "table_rows",
    "too_big",
]

MODEL_LINK = "hearth-model-link:"  # + the URL the model wrote
CODE_COPY = "hearth-copy-code:"  # + the code block's number

# Colours a code block's text after it is drawn: (its first character, code, language, style).
ColourLater = Callable[[QTextCursor, str, str, str], None]

_HEADING_SIZE = {"h1": 3, "h2": 2, "h3": 1, "h4": 0, "h5": 0, "h6": 0}  # QTextFormat.FontSizeAdjustment
INDENT_PX = 22
# Items one QTextList holds: Qt lays out every item of a list again when one is added, so a
# long list goes on in another QTextList of the same look (numbers carried on).
LIST_RUN = 32
LINE_BLOCK = 1_000  # characters one QTextBlock holds at most, in code and source text
MAX_COLUMNS = 24  # a table wider than this is shown as written


def body_block_format(top: float = 6) -> QTextBlockFormat:
    block = QTextBlockFormat()
    block.setTopMargin(top)
    block.setLineHeight(125, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
    return block


def _source_line() -> QTextBlockFormat:
    """A line of a block shown as written: no gap above it, so its lines read as one block."""
    return body_block_format(0)


def _insert_lines(cursor: QTextCursor, text: str, fmt: QTextCharFormat, block: QTextBlockFormat | None) -> None:
    """`text` at `cursor`, each line its own QTextBlock (`block`: their format; None: the
    current block's). Qt lays out a whole QTextBlock again when text is added to it, so a
    long code block or source kept in one block (lines joined by U+2028) cost O(block) per
    frame; one block per line costs O(line). A line is also cut into blocks of at most
    LINE_BLOCK characters (at a space where there is one): a model caught in a loop can
    write 100,000 characters without a newline."""
    lines = text.split("\n")
    for n, line in enumerate(lines):
        if n:
            if block is None:
                cursor.insertBlock()
            else:
                cursor.insertBlock(block)
        room = LINE_BLOCK - cursor.positionInBlock()
        while len(line) > room:
            cut = line.rfind(" ", max(0, room - 200), room) + 1 or max(room, 1)  # at a space if one is near
            cursor.insertText(line[:cut], fmt)
            line = line[cut:]
            if block is None:
                cursor.insertBlock()
            else:
                cursor.insertBlock(block)
            room = LINE_BLOCK
        if line:
            cursor.insertText(line, fmt)


# A table row: each cell's inline token and its style attribute (the column's alignment).
Row = list[tuple[Token, str]]


def table_rows(tokens: Sequence[Token]) -> list[Row]:
    """The rows of a table's tokens, its header first."""
    rows: list[Row] = []
    for i, t in enumerate(tokens):
        if t.type == "tr_open":
            rows.append([])
        elif t.type in ("th_open", "td_open"):
            rows[-1].append((tokens[i + 1], str(t.attrs.get("style", ""))))
    return rows


def too_big(block: Block) -> bool:
    """Drawn as written: past what one frame should parse and draw, or a table of more columns
    than a reading column can show."""
    if len(block.source) > PLAIN_OVER and block.kind != "fence":
        return True
    return block.kind == "table" and sum(t.type == "th_open" for t in block.tokens) > MAX_COLUMNS


def collapsed_block() -> QTextBlockFormat:
    """An empty block Qt keeps before or after a table: as short as a block can be."""
    block = QTextBlockFormat()
    block.setLineHeight(1, QTextBlockFormat.LineHeightTypes.FixedHeight.value)
    return block


@dataclass(frozen=True)
class _Context:
    indent: int = 0  # list and quote depth
    quote: bool = False
    tight: bool = False  # inside a list item: paragraphs sit close


class MarkdownWriter:
    """Writes blocks for one message. `lists` remembers the lists of committed items, so an
    item committed later joins the list its earlier items started."""

    def __init__(
        self, palette: QPalette, register_code: Callable[[str], int], colour_later: ColourLater | None = None
    ) -> None:
        self.colours: Colours = colours(palette)
        self.style = pygments_style(palette)
        self._register_code = register_code
        self._colour_later = colour_later  # None: colour code blocks as they are drawn
        self._lists: dict[int, QTextList] = {}
        family = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont).family()
        self._mono = [family, "monospace"]
        self.reuse = False  # the cursor sits on an empty block that the next block may take
        self._last_list: QTextList | None = None  # the top-level list the last item drew into
        self.code_end: QTextCursor | None = None  # the end of the last pending code block's text
        self.code_text = ""  # and the code drawn there
        self.last_table: QTextTable | None = None  # the table drawn last (a pending one grows in place)

    # -- blocks ------------------------------------------------------------------------
    def write(self, cursor: QTextCursor, block: Block, *, final: bool) -> None:
        """Draw `block` at `cursor` (left at its end). Not final: the pending block, drawn cheap
        (code without colours or Copy), and its list not remembered."""
        if too_big(block):
            self.write_source(cursor, block.source)  # past what one frame should parse and draw
        elif block.kind == "list_item" and block.list is not None:
            info = block.list
            lst = self._lists.get(info.list_id)
            start = info.start
            if lst is not None and lst.count() >= LIST_RUN:
                lst, start = None, info.number  # a fresh QTextList that goes on counting
            fresh = lst is None
            self._tokens(
                cursor, block.tokens, _Context(indent=1, tight=True), final=final, top_list=(lst, info.ordered, start)
            )
            if fresh and final and self._last_list is not None:
                self._lists[info.list_id] = self._last_list
        else:
            self._tokens(cursor, block.tokens, _Context(), final=final)

    def _tokens(
        self,
        cursor: QTextCursor,
        tokens: Sequence[Token],
        ctx: _Context,
        *,
        final: bool,
        top_list: tuple[QTextList | None, bool, int] | None = None,
    ) -> None:
        lists: list[tuple[QTextList | None, bool, int]] = [top_list] if top_list else []
        item_first: list[bool] = []  # per open list item: its first block is still to come
        i = 0
        while i < len(tokens):
            t = tokens[i]
            kind = t.type
            if kind in ("bullet_list_open", "ordered_list_open"):
                start = int(t.attrs.get("start", 1)) if kind == "ordered_list_open" else 1
                lists.append((None, kind == "ordered_list_open", start))
                ctx = replace(ctx, indent=ctx.indent + 1, tight=True)
            elif kind in ("bullet_list_close", "ordered_list_close"):
                lists.pop()
                ctx = replace(ctx, indent=ctx.indent - 1, tight=bool(lists))
            elif kind == "list_item_open":
                item_first.append(True)
            elif kind == "list_item_close":
                item_first.pop()
            elif kind == "blockquote_open":
                ctx = replace(ctx, indent=ctx.indent + 1, quote=True)
            elif kind == "blockquote_close":
                ctx = replace(ctx, indent=ctx.indent - 1, quote=False)
            elif kind in ("paragraph_open", "heading_open"):
                inline = tokens[i + 1]
                self._new_block(cursor, self._block_format(ctx, t, item_first), ctx)
                if item_first and item_first[-1]:
                    item_first[-1] = False
                    self._add_to_list(cursor, lists, ctx)
                self._inline(cursor, inline.children or [], self._char_format(ctx, t))
                i += 2  # the inline token and the close
            elif kind in ("fence", "code_block"):
                if item_first and item_first[-1]:  # an item that starts with code: its marker line
                    item_first[-1] = False
                    self._new_block(cursor, self._block_format(ctx, t, item_first), ctx)
                    self._add_to_list(cursor, lists, ctx)
                self._code(cursor, t.content, t.info if kind == "fence" else "", ctx, final=final)
            elif kind == "hr":
                self._rule(cursor)
            elif kind == "table_open":
                end = close_of(tokens, i)
                self._table(cursor, tokens[i : end + 1], ctx)
                i = end
            i += 1

    def _add_to_list(self, cursor: QTextCursor, lists: list[tuple[QTextList | None, bool, int]], ctx: _Context) -> None:
        lst, ordered, start = lists[-1]
        if lst is None:
            fmt = QTextListFormat()
            fmt.setStyle(
                QTextListFormat.Style.ListDecimal
                if ordered
                else (
                    QTextListFormat.Style.ListDisc,
                    QTextListFormat.Style.ListCircle,
                    QTextListFormat.Style.ListSquare,
                )[(ctx.indent - 1) % 3]
            )
            fmt.setIndent(ctx.indent)
            if ordered:
                fmt.setStart(start)
            lst = cursor.createList(fmt)
            lists[-1] = (lst, ordered, start)
            if len(lists) == 1:
                self._last_list = lst
        else:
            lst.add(cursor.block())

    def _new_block(self, cursor: QTextCursor, fmt: QTextBlockFormat, ctx: _Context) -> None:
        char = QTextCharFormat()
        char.setForeground(self.colours.muted if ctx.quote else self.colours.text)
        if self.reuse:
            self.reuse = False
            block = cursor.block()
            if (lst := block.textList()) is not None:
                lst.remove(block)
            cursor.setBlockFormat(fmt)
            cursor.setBlockCharFormat(char)
        else:
            cursor.insertBlock(fmt, char)

    def _block_format(self, ctx: _Context, t: Token, item_first: list[bool]) -> QTextBlockFormat:
        top = 2.0 if ctx.tight else 6.0
        if t.type == "heading_open":
            top = 12.0
        fmt = body_block_format(top)
        if ctx.indent and not (item_first and item_first[-1]):
            fmt.setIndent(ctx.indent)  # a later paragraph of a list item, or a quote
        return fmt

    def _char_format(self, ctx: _Context, t: Token) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self.colours.muted if ctx.quote else self.colours.text)
        if ctx.quote:
            fmt.setFontItalic(True)
        if t.type == "heading_open":
            fmt.setFontWeight(QFont.Weight.Bold)
            fmt.setProperty(QTextFormat.Property.FontSizeAdjustment, _HEADING_SIZE.get(t.tag, 0))
        return fmt

    # -- inline ------------------------------------------------------------------------
    def _inline(self, cursor: QTextCursor, children: Sequence[Token], base: QTextCharFormat) -> None:
        stack = [base]
        for t in children:
            fmt = stack[-1]
            kind = t.type
            if kind == "text":
                cursor.insertText(t.content, fmt)
            elif kind in ("softbreak", "hardbreak"):
                cursor.insertText("\u2028", fmt)  # a line break inside the paragraph
            elif kind == "code_inline":
                code = QTextCharFormat(fmt)
                code.setFontFamilies(self._mono)
                code.setFontFixedPitch(True)
                code.setBackground(self.colours.code_background)
                cursor.insertText(t.content, code)
            elif kind.endswith("_open"):
                stack.append(self._opened(kind, t, fmt))
            elif kind.endswith("_close"):
                if len(stack) > 1:
                    stack.pop()
            elif kind == "image":
                self._image(cursor, t, fmt)
            else:  # anything else is shown as the text it was written as
                cursor.insertText(t.content, fmt)

    def _opened(self, kind: str, t: Token, fmt: QTextCharFormat) -> QTextCharFormat:
        out = QTextCharFormat(fmt)
        if kind == "strong_open":
            out.setFontWeight(QFont.Weight.Bold)
        elif kind == "em_open":
            out.setFontItalic(not fmt.fontItalic())
        elif kind == "s_open":
            out.setFontStrikeOut(True)
        elif kind == "link_open":
            self._linked(out, str(t.attrs.get("href", "")))
        return out

    def _linked(self, fmt: QTextCharFormat, url: str) -> None:
        fmt.setAnchor(True)
        fmt.setAnchorHref(MODEL_LINK + url)
        fmt.setForeground(self.colours.accent)
        fmt.setFontUnderline(True)
        fmt.setToolTip(url)

    def _image(self, cursor: QTextCursor, t: Token, fmt: QTextCharFormat) -> None:
        """Never fetched: the alt text and the address, as a link the person may choose to open."""
        url = str(t.attrs.get("src", ""))
        alt = "".join(c.content for c in t.children or []) or "image"
        link = QTextCharFormat(fmt)
        self._linked(link, url)
        cursor.insertText(f"[image: {alt}] ", fmt)
        cursor.insertText(url, link)

    # -- code and tables ---------------------------------------------------------------
    def _code(self, cursor: QTextCursor, code: str, info: str, ctx: _Context, *, final: bool) -> None:
        """A box (a QTextFrame: a table relays out all of its cell on every append) holding a
        line with the language and Copy, then the code, one QTextBlock per line."""
        code = code.removesuffix("\n")
        frame = self._code_box(cursor, ctx)
        language = info.strip().split()[0] if info.strip() else ""
        head = frame.firstCursorPosition()
        head.setBlockFormat(self._code_line(bottom=4))
        label = QTextCharFormat()
        label.setForeground(self.colours.muted)
        label.setProperty(QTextFormat.Property.FontSizeAdjustment, -1)
        head.insertText(language or "code", label)
        if final:
            copy = QTextCharFormat(label)
            copy.setAnchor(True)
            copy.setAnchorHref(f"{CODE_COPY}{self._register_code(code)}")
            copy.setForeground(self.colours.accent)
            head.insertText("    ", label)
            head.insertText("Copy", copy)
        head.insertBlock(self._code_line(), QTextCharFormat())
        body = head
        colour = language if final and len(code) <= PLAIN_OVER else ""
        if colour and self._colour_later is not None:
            start = QTextCursor(body)
            start.setKeepPositionOnInsert(True)  # stays at the code's first character
            self.write_code(body, code, "")
            self._colour_later(start, code, colour, self.style)
        else:
            self.write_code(body, code, colour)
        if not final:  # it may grow next frame: AnswerBody appends here
            self.code_end, self.code_text = body, code
        cursor.setPosition(frame.lastPosition() + 1)
        self._after_frame(cursor)

    @staticmethod
    def _code_line(bottom: float = 0) -> QTextBlockFormat:
        block = QTextBlockFormat()
        block.setBottomMargin(bottom)
        return block

    def _code_box(self, cursor: QTextCursor, ctx: _Context) -> QTextFrame:
        fmt = QTextFrameFormat()
        fmt.setBorder(1)
        fmt.setBorderBrush(QBrush(self.colours.code_border))
        fmt.setBorderStyle(QTextFrameFormat.BorderStyle.BorderStyle_Solid)
        fmt.setPadding(6)
        fmt.setTopMargin(6)
        fmt.setLeftMargin(ctx.indent * INDENT_PX)
        fmt.setBackground(self.colours.code_background)
        fmt.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
        self._before_frame(cursor)
        return cursor.insertFrame(fmt)

    def write_source(self, cursor: QTextCursor, text: str) -> None:
        """A block as the model wrote it, Markdown marks and all, in one block."""
        self._new_block(cursor, body_block_format(), _Context())
        self.append_source(cursor, text)

    def append_source(self, cursor: QTextCursor, text: str) -> None:
        fmt = QTextCharFormat()
        fmt.setForeground(self.colours.text)
        _insert_lines(cursor, text, fmt, _source_line())

    def write_code(self, cursor: QTextCursor, code: str, language: str) -> None:
        """Code text at `cursor`, coloured when `language` is known (each line break a line
        separator, so the block stays one block)."""
        plain = QTextCharFormat()
        plain.setFontFamilies(self._mono)
        plain.setFontFixedPitch(True)
        plain.setForeground(self.colours.text)
        for text, colour in runs(code, language, self.style):
            fmt = plain
            if colour is not None:
                fmt = QTextCharFormat(plain)
                fmt.merge(colour)
            _insert_lines(cursor, text, fmt, None)

    def _grid(self, padding: float, ctx: _Context) -> QTextTableFormat:
        """A table with one-pixel collapsed borders in the code border colour (code boxes,
        tables and rules are all drawn as tables)."""
        fmt = QTextTableFormat()
        fmt.setBorder(1)
        fmt.setBorderBrush(QBrush(self.colours.code_border))
        fmt.setBorderStyle(QTextFrameFormat.BorderStyle.BorderStyle_Solid)
        fmt.setBorderCollapse(True)
        fmt.setCellPadding(padding)
        fmt.setCellSpacing(0)
        fmt.setTopMargin(6)
        fmt.setLeftMargin(ctx.indent * INDENT_PX)
        return fmt

    def _table(self, cursor: QTextCursor, tokens: Sequence[Token], ctx: _Context) -> None:
        rows = table_rows(tokens)
        columns = max((len(r) for r in rows), default=1)
        fmt = self._grid(4, ctx)
        fmt.setHeaderRowCount(1)
        self._before_frame(cursor)
        table = cursor.insertTable(max(1, len(rows)), columns, fmt)
        for r, row in enumerate(rows):
            self.fill_row(table, r, row, ctx)
        self.last_table = table
        cursor.setPosition(table.lastPosition() + 1)
        self._after_frame(cursor)

    def fill_row(self, table: QTextTable, r: int, row: Row, ctx: _Context | None = None) -> None:
        """Draw row `r` of `table` (the header when 0) from its cells' inline tokens."""
        ctx = ctx or _Context()
        for col, (inline, style) in enumerate(row[: table.columns()]):
            cell = table.cellAt(r, col).firstCursorPosition()
            align = QTextBlockFormat()
            if "right" in style:
                align.setAlignment(Qt.AlignmentFlag.AlignRight)
            elif "center" in style:
                align.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            cell.setBlockFormat(align)
            base = self._char_format(ctx, inline)
            if r == 0:
                base.setFontWeight(QFont.Weight.DemiBold)
            self._inline(cell, inline.children or [], base)

    def _rule(self, cursor: QTextCursor) -> None:
        """A thematic break: a one-cell table one pixel high (a block's own ruler is drawn
        across the whole document, outside the message)."""
        fmt = self._grid(0, _Context())
        fmt.setTopMargin(10)
        fmt.setBottomMargin(4)
        fmt.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
        self._before_frame(cursor)
        table = cursor.insertTable(1, 1, fmt)
        table.cellAt(0, 0).firstCursorPosition().setBlockFormat(collapsed_block())
        cursor.setPosition(table.lastPosition() + 1)
        self._after_frame(cursor)

    def _before_frame(self, cursor: QTextCursor) -> None:
        if self.reuse:  # Qt keeps the empty block the table is inserted at above it: make it short
            self.reuse = False
            cursor.setBlockFormat(collapsed_block())

    def _after_frame(self, cursor: QTextCursor) -> None:
        """Qt puts an empty block after a table: the next block takes it, or it stays short."""
        cursor.setBlockFormat(collapsed_block())
        self.reuse = True
