"""A table that is still streaming, grown row by row in place.

Owns: the QTextTable of the pending table block, and which of its rows are final (their line
has ended). Each update parses only the table's header, its delimiter row and the lines from
the first row that is not final (a table row is parsed on its own line, so this gives the
same cells as parsing the whole table), replaces the rows that are not final and adds the
new ones, so Hearth's own work is the new lines. Qt still lays the whole table out again on
each change, so a table is grown live only up to TABLE_LIVE_LIMIT characters (the caller
then shows it as written until it closes). When a live table closes, the same QTextTable is
brought in line with the full parse and kept: it is not drawn again.
Must not: touch anything outside its table.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from PySide6.QtGui import QTextTable

from app.core.markdown_stream import Block
from app.ui.widgets.markdown_writer import MarkdownWriter, Row, table_rows

__all__ = ["LiveTable"]


def _rows_in(lines: str) -> int:
    return sum(1 for line in lines.split("\n") if line.strip())


class LiveTable:
    def __init__(self, table: QTextTable, block: Block, text: str, start: int, end: int) -> None:
        """`block` was just drawn into `table` from text[start:end] (the stream's text)."""
        self.table = table
        self.block = block
        source = text[start:end]
        first = source.find("\n", source.find("\n") + 1) + 1  # after the header and delimiter lines
        self._head = source[:first]
        last = source.rfind("\n") + 1
        self._row_at = start + max(first, last)  # the first line that has not ended
        self._final = _rows_in(source[first:last]) if first else 0  # body rows whose line has ended
        self.valid = first > 0 and table.rows() - 1 >= self._final

    def grow(self, md: MarkdownIt, writer: MarkdownWriter, text: str, end: int) -> bool:
        """Draw the rows of text up to `end`. False when the new lines are not all rows (the
        caller then draws the table again from a full parse)."""
        new = text[self._row_at : end]
        rows = table_rows(md.parse(self._head + new))[1:]
        lines = new.split("\n")
        body = _rows_in(new)
        # Blank lines may only come last (one ends the table); every other line is a row.
        if len(rows) != body or not all(line.strip() for line in lines[:body]):
            return False
        self._redraw_from(self._final, rows, writer)
        done = new.rfind("\n") + 1
        self._final += _rows_in(new[:done])
        self._row_at += done
        return True

    def settle(self, writer: MarkdownWriter, block: Block) -> bool:
        """The table closed as `block`: bring the drawn rows in line with it. False when it is
        not this table (another header)."""
        rows = table_rows(block.tokens)
        if not rows or len(rows[0]) != self.table.columns() or block.start_line != self.block.start_line:
            return False
        self._redraw_from(self._final, rows[1:][self._final :], writer)
        return True

    def _redraw_from(self, final: int, rows: list[Row], writer: MarkdownWriter) -> None:
        """Replace the body rows from `final` on with `rows`."""
        table = self.table
        first = 1 + final  # the header is row 0
        if table.rows() > first:
            table.removeRows(first, table.rows() - first)
        if rows:
            table.appendRows(len(rows))
            for k, row in enumerate(rows):
                writer.fill_row(table, first + k, row)
