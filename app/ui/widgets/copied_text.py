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

__all__ = ["copied_text", "is_collapsed"]

_FIXED = QTextBlockFormat.LineHeightTypes.FixedHeight.value


def is_collapsed(block: QTextBlock) -> bool:
    """An empty 1-pixel block Qt keeps around a frame (markdown_writer.collapsed_block)."""
    f = block.blockFormat()
    return block.length() == 1 and f.lineHeightType() == _FIXED and f.lineHeight() <= 1


def copied_text(cursor: QTextCursor) -> str:
    """The selection of `cursor` as plain text, one line per block shown."""
    start, end = cursor.selectionStart(), cursor.selectionEnd()
    doc = cursor.document()
    block = doc.findBlock(start)
    lines: list[str] = []
    while block.isValid() and block.position() <= end:
        if block.isVisible() and not is_collapsed(block):
            first = max(start, block.position()) - block.position()
            last = min(end, block.position() + block.length() - 1) - block.position()
            lines.append(block.text()[first:last])
        block = block.next()
    return "\n".join(lines).replace("\u2028", "\n").replace("\u00a0", " ")
