"""Drawing one message into the transcript's document, at a cursor.

Owns: how a message looks. The person's message is a bubble (a frame) with their text as
typed. An answer is a role name, its reasoning section, its Markdown body (drawn at once, or
an AnswerBody that streams) and a footer with its metrics or what went wrong; it is laid out
in the document's root frame, because Qt lays out a frame as a whole on every change inside
it (a frame per answer made each streamed frame cost more the longer the answer was).
Also owns the code blocks' text, by the number in their Copy link. It draws into whichever
document the cursor is in: the transcript's, or a scratch document that older messages are
drawn into off screen (`into`).
Must not: scroll, or keep any message's state (the transcript does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtGui import (
    QFont,
    QPalette,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
    QTextFrameFormat,
    QTextLength,
)

from app.ui.theme import Colours
from app.ui.widgets.answer_body import AnswerBody, write_markdown
from app.ui.widgets.code_colouring import CodeColouring
from app.ui.widgets.markdown_writer import MarkdownWriter, body_block_format, collapsed_block
from app.ui.widgets.message_actions import insert_branch_nav
from app.ui.widgets.reasoning_sections import Reasoning, ReasoningSections

if TYPE_CHECKING:
    from app.core.message_view import MessageView

__all__ = ["OUT_OF_VIEW", "PADDING", "USER_INDENT", "Drawn", "MessageDrawing", "safe"]

USER_INDENT = 48  # the person's bubbles sit to the right
PADDING = 10  # inside a bubble

_ROLE_NAMES = {"user": "You", "assistant": "Assistant"}
OUT_OF_VIEW = "not in the model's view"
# Characters QTextDocument keeps for itself (frame starts and ends, inline objects, block
# breaks): in text from the model or the person they would forge document structure.
_QT_OWN = str.maketrans({"\ufdd0": "\ufffd", "\ufdd1": "\ufffd", "\ufffc": "\ufffd", "\u2029": "\n"})


def safe(text: str) -> str:
    """`text` with the characters Qt keeps for itself replaced (the same length but for none)."""
    return text.translate(_QT_OWN)


@dataclass
class Drawn:
    head: QTextCursor  # at the role name's start
    body: AnswerBody | None = None  # an answer still streaming
    reasoning: Reasoning | None = None  # and its reasoning section


class MessageDrawing:
    """`colours`: the transcript's colours at each call (a theme switch changes them)."""

    def __init__(self, reasoning: ReasoningSections, colouring: CodeColouring, colours: Callable[[], Colours]) -> None:
        self._reasoning = reasoning
        self._colouring = colouring
        self._colours = colours
        self.code: list[str] = []  # the code blocks shown, by the number in their Copy link

    def clear(self) -> None:
        self.code.clear()

    def into(self, colouring: CodeColouring) -> MessageDrawing:
        """A drawing for another document (a scratch one, off screen) whose code blocks `colouring`
        colours: it shares this one's code blocks and reasoning sections, so Copy numbers and
        reasoning headers are the transcript's wherever a message is drawn first."""
        other = MessageDrawing(self._reasoning, colouring, self._colours)
        other.code = self.code
        return other

    def draw(self, cursor: QTextCursor, m: MessageView, palette: QPalette, font: QFont) -> Drawn:
        """Draw `m` at `cursor`, which is left after it."""
        if m.role != "assistant":
            return Drawn(self._bubble(cursor, m, palette))
        header = QTextBlockFormat()
        header.setTopMargin(14)
        if cursor.block().length() == 1:  # an empty block (the first, or after a bubble): take it
            cursor.setBlockFormat(header)
        else:
            cursor.insertBlock(header)
        head = self._role(cursor, m, palette)
        cursor.insertBlock(body_block_format(4), self._text_format())
        writer = MarkdownWriter(palette, self._register_code, self._colouring.later)
        live = m.state is not None and not m.footer
        body: AnswerBody | None = None
        if live:  # queued/streaming: text will follow
            body = AnswerBody(cursor.document(), cursor, writer)
            body.feed(safe(m.text))
        else:  # drawn once
            write_markdown(cursor, safe(m.text), writer)
        reasoning = self._reasoning.add(head, safe(m.reasoning), expanded=live) if m.reasoning else None
        if body is None:
            self.footer(cursor, m, font)
        return Drawn(head, body, reasoning)

    def _bubble(self, cursor: QTextCursor, m: MessageView, palette: QPalette) -> QTextCursor:
        """What the person wrote, in a bubble, as typed."""
        if cursor.block().length() == 1:  # Qt keeps the empty block a frame is put in: make it short
            cursor.setBlockFormat(collapsed_block())
        bubble = QTextFrameFormat()
        bubble.setPadding(PADDING)
        bubble.setTopMargin(14)
        bubble.setBottomMargin(4)
        bubble.setLeftMargin(USER_INDENT)
        bubble.setBackground(self._colours().user_bubble)
        bubble.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
        frame = cursor.insertFrame(bubble)
        head = self._role(cursor, m, palette)
        cursor.insertBlock(body_block_format(4), self._text_format())
        cursor.insertText(safe(m.text), self._text_format())
        cursor.setPosition(frame.lastPosition() + 1)
        cursor.setBlockFormat(collapsed_block())  # until a message takes it
        return head

    def _role(self, cursor: QTextCursor, m: MessageView, palette: QPalette) -> QTextCursor:
        """The role name and branch arrows; returns a cursor at the role name's start, made after
        the insert so that it stays there (a cursor moves with text inserted at its position)."""
        start = cursor.position()
        fmt = QTextCharFormat()
        fmt.setFontWeight(QFont.Weight.DemiBold)
        fmt.setForeground(self._colours().heading)
        cursor.insertText(_ROLE_NAMES.get(m.role, m.role), fmt)
        insert_branch_nav(cursor, m, palette)
        if m.out_of_view:  # the conversation outgrew the context: the last prompt left this out
            note = QTextCharFormat()
            note.setForeground(self._colours().muted)
            note.setFontItalic(True)
            note.setProperty(QTextFormat.Property.FontSizeAdjustment, -1)
            cursor.insertText(f"   {OUT_OF_VIEW}", note)
        head = QTextCursor(cursor.document())
        head.setPosition(start)
        return head

    def footer(self, cursor: QTextCursor, m: MessageView, font: QFont) -> None:
        """The line under an answer: its metrics, or that it stopped or failed, in the state's colour."""
        if not m.footer:
            return
        c = self._colours()
        state_colours = {"failed": c.error, "cancelled": c.warning, "interrupted": c.warning}
        fmt = QTextCharFormat()
        fmt.setForeground(state_colours.get(str(m.state), c.muted))
        fmt.setFontPointSize(max(7.0, font.pointSizeF() - 1.5))
        block = QTextBlockFormat()
        block.setTopMargin(6)
        cursor.insertBlock(block, fmt)
        cursor.insertText(m.footer, fmt)

    def _text_format(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self._colours().text)
        return fmt

    def _register_code(self, code: str) -> int:
        self.code.append(code)
        return len(self.code) - 1
