"""Drawing one message into the transcript's document, at a cursor.

Owns: how a message looks. The person's message is a bubble (a frame) with their text as
typed. An answer is a role name, its reasoning section, its Markdown body (drawn at once, or
an AnswerBody that streams) and a footer with its metrics or what went wrong; it is laid out
in the document's root frame, because Qt lays out a frame as a whole on every change inside
it (a frame per answer made each streamed frame cost more the longer the answer was).
Under an answer that read a person's documents: its sources, each a link to its preview (the
Source, by the number in its link), and what retrieval said of itself, in the muted colour.
Also owns the code blocks' text, by the number in their Copy link. It draws into whichever
document the cursor is in: the transcript's, or a scratch document that older messages are
drawn into off screen (`into`).
Must not: scroll, or keep any message's state (the transcript does).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
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

from app.core.message_view import source_label
from app.ui.theme import Colours
from app.ui.widgets.answer_body import AnswerBody, write_markdown
from app.ui.widgets.code_colouring import CodeColouring
from app.ui.widgets.markdown_writer import MarkdownWriter, body_block_format, collapsed_block
from app.ui.widgets.message_actions import insert_branch_nav
from app.ui.widgets.reasoning_sections import Reasoning, ReasoningSections

if TYPE_CHECKING:
    from app.core.message_view import MessageView
    from app.ui.widgets.tool_sections import ToolSection, ToolSections
    from store.sources import Source

__all__ = [
    "OUT_OF_VIEW",
    "PADDING",
    "SOURCE_HREF",
    "USER_INDENT",
    "Drawn",
    "MessageDrawing",
    "one_line",
    "printable",
    "safe",
]

USER_INDENT = 48  # the person's bubbles sit to the right
PADDING = 10  # inside a bubble

_ROLE_NAMES = {"user": "You", "assistant": "Assistant"}
OUT_OF_VIEW = "not in the model's view"
# Characters QTextDocument keeps for itself (frame starts and ends, inline objects, block
# breaks): in text from the model or the person they would forge document structure.
_QT_OWN = str.maketrans({"\ufdd0": "\ufffd", "\ufdd1": "\ufffd", "\ufffc": "\ufffd", "\u2029": "\n"})
SOURCE_HREF = "hearth-source:"  # + the source's number in `MessageDrawing.sources`: model text never carries one
# Control characters in a document's text (escapes, NUL, DEL) as the symbols that name them (␛, ␀, ␡).
_CONTROLS = {c: 0x2400 + c for c in range(0x20)} | {0x7F: 0x2421}
_CONTROLS_BUT_LINES = {c: p for c, p in _CONTROLS.items() if c not in (0x09, 0x0A)}


def safe(text: str) -> str:
    """`text` with the characters Qt keeps for itself replaced (the same length but for none)."""
    return text.translate(_QT_OWN)


def printable(text: str, *, keep_lines: bool = False) -> str:
    """`text` from a person's document, shown as text: Qt's own characters replaced (`safe`) and
    control characters as their symbols; `keep_lines` leaves line breaks and tabs alone."""
    return safe(text.replace("\r\n", "\n") if keep_lines else text).translate(
        _CONTROLS_BUT_LINES if keep_lines else _CONTROLS
    )


def one_line(text: str) -> str:
    """A path or heading with a line break in it must not pass for the next line."""
    return " ".join(text.splitlines())


@dataclass
class Drawn:
    head: QTextCursor  # at the role name's start
    body: AnswerBody | None = None  # an answer still streaming
    reasoning: Reasoning | None = None  # and its reasoning section
    tools: list[ToolSection] = field(default_factory=list)  # the calls it asked for, folded under it


class MessageDrawing:
    """`colours`: the transcript's colours at each call (a theme switch changes them)."""

    def __init__(
        self,
        reasoning: ReasoningSections,
        colouring: CodeColouring,
        colours: Callable[[], Colours],
        tools: ToolSections | None = None,
    ) -> None:
        self._reasoning = reasoning
        self._tools = tools  # None: tool calls are not drawn (a drawing without a transcript)
        self._colouring = colouring
        self._colours = colours
        self.code: list[str] = []  # the code blocks shown, by the number in their Copy link
        self.sources: list[Source] = []  # the answers' sources shown, by the number in their link

    def clear(self) -> None:
        self.code.clear()
        self.sources.clear()

    def into(self, colouring: CodeColouring) -> MessageDrawing:
        """A drawing for another document (a scratch one, off screen) whose code blocks `colouring`
        colours: it shares this one's code blocks and reasoning sections, so Copy numbers and
        reasoning headers are the transcript's wherever a message is drawn first."""
        other = MessageDrawing(self._reasoning, colouring, self._colours, self._tools)
        other.code = self.code
        other.sources = self.sources
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
        live = m.state is not None and not m.footer
        empty = not live and not m.text.strip()  # e.g. an answer that only asked for tool calls: no blank line
        cursor.insertBlock(collapsed_block() if empty else body_block_format(4), self._text_format())
        writer = MarkdownWriter(palette, self._register_code, self._colouring.later)
        body: AnswerBody | None = None
        if live:  # queued/streaming: text will follow
            body = AnswerBody(cursor.document(), cursor, writer)
            body.feed(safe(m.text))
        else:  # drawn once
            write_markdown(cursor, safe(m.text), writer)
        reasoning = self._reasoning.add(head, safe(m.reasoning), expanded=live) if m.reasoning else None
        tools: list[ToolSection] = []
        if body is None:
            self.footer(cursor, m, font)
            if self._tools is not None:  # under the footer: the calls came after the answer's text
                tools = [self._tools.add(cursor, step) for step in m.tool_steps]
        return Drawn(head, body, reasoning, tools)

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
        if m.sources or m.retrieval_note:
            self._sources(cursor, m, font)

    def _sources(self, cursor: QTextCursor, m: MessageView, font: QFont) -> None:
        """`Sources: [1] report.pdf, page 4 · [2] notes.md, § Tides`, each a link the transcript
        opens in a preview (never as a URL), then retrieval's note."""
        c = self._colours()
        plain = QTextCharFormat()
        plain.setForeground(c.muted)
        plain.setFontPointSize(max(7.0, font.pointSizeF() - 1.5))
        block = QTextBlockFormat()
        block.setTopMargin(2)
        if m.sources:
            cursor.insertBlock(block, plain)
            cursor.insertText("Sources: ", plain)
            for i, source in enumerate(m.sources):
                if i:
                    cursor.insertText(" · ", plain)
                self.sources.append(source)
                link = QTextCharFormat(plain)
                link.setForeground(c.accent)
                link.setAnchor(True)
                link.setAnchorHref(f"{SOURCE_HREF}{len(self.sources) - 1}")
                # A tooltip that looks like HTML is read as HTML: the path goes in escaped.
                link.setToolTip(f"<p>{html.escape(printable(source.path))}</p>")
                cursor.insertText(printable(one_line(f"[{source.ordinal}] {source_label(source)}")), link)
        if m.retrieval_note:
            note = QTextCharFormat(plain)
            note.setFontItalic(True)
            cursor.insertBlock(block, note)
            cursor.insertText(printable(one_line(m.retrieval_note)), note)

    def _text_format(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self._colours().text)
        return fmt

    def _register_code(self, code: str) -> int:
        self.code.append(code)
        return len(self.code) - 1
