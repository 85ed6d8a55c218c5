"""The plain text a selection of the transcript copies: what it shows, line for line.

Qt writes a block separator for every block of the selection, the empty ones included. The
transcript keeps empty 1-pixel blocks where Qt needs a block around a frame (a question's bubble,
a table, each batch of older messages put above: markdown_writer.collapsed_block): they show as
nothing, so they copy as nothing. Soft line breaks become newlines, no-break spaces spaces, as in
Qt's own plain text. Must not: change the selection, or the rich text a paste into an editor
that takes HTML gets.
"""

from __future__ import annotations

from PySide6.QtGui import QTextBlock, QTextBlockFormat, QTextCursor

__all__ = ["copied_text"]

_FIXED = QTextBlockFormat.LineHeightTypes.FixedHeight.value


def _collapsed(block: QTextBlock) -> bool:
    f = block.blockFormat()
    return block.length() == 1 and f.lineHeightType() == _FIXED and f.lineHeight() <= 1


def copied_text(cursor: QTextCursor) -> str:
    """The selection of `cursor` as plain text, one line per block shown."""
    start, end = cursor.selectionStart(), cursor.selectionEnd()
    doc = cursor.document()
    block = doc.findBlock(start)
    lines: list[str] = []
    while block.isValid() and block.position() <= end:
        if block.isVisible() and not _collapsed(block):
            first = max(start, block.position()) - block.position()
            last = min(end, block.position() + block.length() - 1) - block.position()
            lines.append(block.text()[first:last])
        block = block.next()
    return "\n".join(lines).replace("\u2028", "\n").replace("\u00a0", " ")
