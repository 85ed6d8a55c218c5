"""The Markdown body of one assistant message in the transcript, while it streams and after.

Owns: three cursors into the document (where the body starts, where its pending block starts,
where it ends) and the MarkdownStream that feeds them. Each frame removes the pending block,
draws the blocks committed since the last frame (once, for good) and draws the new pending
block: the cost of a frame is the size of the pending block, never of the answer. A code
block that is still streaming grows by appending its new text, so a long one costs
O(chunk) too; it is coloured once, when it closes.
Must not: touch anything before the body (the role name, the reasoning) or after it, or scroll.
"""

from __future__ import annotations

from PySide6.QtGui import QTextCursor, QTextDocument

from app.core.markdown_stream import Block, MarkdownStream, Update, blocks_of, live_limit, parser
from app.ui.widgets.live_table import LiveTable
from app.ui.widgets.markdown_writer import MarkdownWriter, collapsed_block, too_big

__all__ = ["AnswerBody", "write_markdown"]

_MD = parser()


def write_markdown(cursor: QTextCursor, text: str, writer: MarkdownWriter) -> None:
    """A finished answer: every block drawn once, at `cursor`, which sits on an empty block."""
    writer.reuse = True
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as MarkdownStream reads it
    for block in blocks_of(_MD.parse(text), lines=text.split("\n")):  # sources: a huge block is drawn as written
        writer.write(cursor, block, final=True)


class AnswerBody:
    """`cursor` sits on the empty block the answer's first block will take."""

    def __init__(self, document: QTextDocument, cursor: QTextCursor, writer: MarkdownWriter) -> None:
        self._doc = document
        self._writer = writer
        self._stream = MarkdownStream(_MD)
        self._start = self._cursor(cursor.position(), keep=True)
        self._pending_at = self._cursor(cursor.position(), keep=True)
        self.end = self._cursor(cursor.position(), keep=False)  # text inserted here moves it along
        self._pending: list[Block] = []
        self._pending_start = 0  # where the pending blocks' text starts in the stream's text
        self._raw_upto: int | None = None  # the pending block is shown as written, up to here
        self._reuse_before_pending = True  # the pending block took an empty block Qt left
        self._live: LiveTable | None = None  # the pending table, grown row by row
        self.frames = 0  # updates drawn (the benchmark counts them)

    def _cursor(self, position: int, *, keep: bool) -> QTextCursor:
        c = QTextCursor(self._doc)
        c.setPosition(position)
        c.setKeepPositionOnInsert(keep)
        return c

    @property
    def text(self) -> str:
        return self._stream.text

    def fold_if_empty(self) -> None:
        """An answer that ended with no text (one that only asked for tool calls): its empty body
        block takes no height, so its footer sits under its role name."""
        if not self._stream.text.strip():
            c = self._cursor(self._start.position(), keep=True)
            c.setBlockFormat(collapsed_block())

    def feed(self, chunk: str) -> None:
        self._edit(self._stream.feed(chunk))

    def finish(self) -> None:
        self._edit(self._stream.finish())

    def _edit(self, update: Update) -> None:
        """One frame's changes as one edit: the document is laid out once, not per insert."""
        edit = QTextCursor(self._doc)
        edit.beginEditBlock()
        try:
            self._apply(update)
        finally:
            edit.endEditBlock()

    def replace(self, text: str) -> None:
        """The provider rewrote the answer: draw it again from its first block."""
        self._pending_at.setPosition(self._start.position())
        self._reuse_before_pending = True
        self._pending, self._raw_upto, self._live = [], None, None
        self._stream = MarkdownStream(_MD)
        self._edit(self._stream.feed(text))

    def _apply(self, update: Update) -> None:
        self.frames += 1
        if not update.committed and self._grow(update):
            return
        writer = self._writer
        c = QTextCursor(self._doc)
        committed = update.committed
        live, self._live = self._live, None
        if (
            live is not None
            and committed
            and committed[0].kind == "table"
            and not too_big(committed[0])
            and live.settle(writer, committed[0])
        ):
            # The table that grew in place is the one that closed: keep it, draw what follows.
            c.setPosition(live.table.lastPosition() + 1)
            writer.reuse = True
            committed = committed[1:]
        else:
            c.setPosition(self._pending_at.position())
            writer.reuse = self._reuse_before_pending
        c.setPosition(self.end.position(), QTextCursor.MoveMode.KeepAnchor)
        c.removeSelectedText()
        for block in committed:
            writer.write(c, block, final=True)
        self._pending_at.setPosition(c.position())
        self._reuse_before_pending = writer.reuse
        self._pending, self._pending_start, self._raw_upto = update.pending, update.start, None
        writer.code_end = None
        one = update.pending[0] if len(update.pending) == 1 else None
        if one is not None and update.end - update.start > live_limit(one) and (update.raw or one.kind != "fence"):
            # Thousands of characters in one block: shown as written, and appended to, until it closes.
            writer.write_source(c, self._stream.text[update.start : update.end])
            self._raw_upto = update.end
        else:
            writer.last_table = None
            for block in update.pending:
                writer.write(c, block, final=False)
            if one is not None and one.kind == "table" and writer.last_table is not None:
                table = LiveTable(writer.last_table, one, self._stream.text, update.start, update.end)
                self._live = table if table.valid else None
        # Set, not left to follow the inserts: a cursor at a frame's insertion point ends up
        # inside the frame (a code box), and the next frame would remove only part of it.
        self.end.setPosition(c.position())

    def _grow(self, update: Update) -> bool:
        """The one pending block is last frame's, longer: append its new text instead of redrawing."""
        if len(update.pending) != 1 or len(self._pending) != 1 or update.start != self._pending_start:
            return False
        text = self._stream.text
        if self._live is not None and update.pending[0].kind == "table":
            # Qt lays out a whole QTextTable again on every change: past its live limit a table
            # is shown as written until it closes (redrawn once, by the caller).
            fits = update.end - update.start <= live_limit(update.pending[0])
            return fits and self._live.grow(_MD, self._writer, text, update.end)
        if self._raw_upto is not None:
            self._writer.append_source(self.end, text[self._raw_upto : update.end])
            self._raw_upto = update.end
            return True
        block, code_end = update.pending[0], self._writer.code_end
        if code_end is None or block.kind != "fence" or self._pending[0].kind != "fence":
            return False
        if update.raw:  # the tokens are last parse's: the code is the text under the opener line
            if block.source[:1] in (" ", "\t"):
                return False
            content = text[update.start : update.end].partition("\n")[2]
        elif block.tokens[0].info != self._pending[0].tokens[0].info:
            return False
        else:
            content = block.tokens[0].content
        content = content.removesuffix("\n")
        if not content.startswith(self._writer.code_text):
            return False
        self._writer.write_code(code_end, content[len(self._writer.code_text) :], "")
        self._writer.code_text = content
        self._pending = update.pending
        return True
