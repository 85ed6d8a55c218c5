"""The tool calls an answer asked for, folded under it in the transcript (issue 27).

Owns: each call's folded line (a link the person clicks: "🔧 test/echo · 120 ms · ok ▸") and what
unfolds under it: the arguments, pretty-printed, and the tool's output under a heading that says it
comes from the tool, not the model. Everything in a section is plain text (a tool's output is
untrusted data: never Markdown, never HTML), drawn with Qt's own characters and control characters
replaced (`printable`), and bounded on screen (app.core.tool_steps.shown: a cut says so). Folding
hides the section's blocks, as reasoning sections do (app.ui.widgets.reasoning_sections); a live
call (waiting for the person, running) is redrawn in place when it changes.
Must not: touch the answer's text, or anything outside its own blocks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import (
    QFont,
    QFontDatabase,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)

from app.core.tool_steps import ToolStepView, shown
from app.ui.theme import Colours
from app.ui.widgets.message_drawing import printable
from app.ui.widgets.reasoning_sections import show_blocks

__all__ = ["TOOL_HREF", "ToolSection", "ToolSections"]

TOOL_HREF = "hearth-tool:"  # + the section's number: model and tool text never carry one


@dataclass
class ToolSection:
    index: int  # the number in the header's anchor
    header: QTextCursor  # in the header block; only its block is used
    end: QTextCursor  # the end of the section's last block (kept in place by inserts there)
    step: ToolStepView
    expanded: bool = False


class ToolSections:
    """The sections of the document shown; `colours` gives the theme's colours at each call."""

    def __init__(self, document: QTextDocument, colours: Callable[[], Colours]) -> None:
        self._doc = document
        self._colours = colours
        self._sections: list[ToolSection] = []
        self._live: dict[str, ToolSection] = {}  # the last answer's, by call id: they change as they run

    def clear(self) -> None:
        self._sections.clear()
        self._live.clear()

    def forget_live(self) -> None:
        """A new message follows: the last answer's calls no longer change."""
        self._live.clear()

    def add(self, cursor: QTextCursor, step: ToolStepView) -> ToolSection:
        """A folded section at `cursor` (the end of its answer), which is left after it."""
        index = len(self._sections)
        cursor.insertBlock(_header_block(), self._header_format(index, step))
        header = QTextCursor(cursor.document())  # at its block's start, where nothing is inserted after
        header.setPosition(cursor.block().position())
        header.setKeepPositionOnInsert(True)  # (the label is, when it is relabelled)
        cursor.insertText(_label(step, False), self._header_format(index, step))
        self._body(cursor, step)
        end = QTextCursor(cursor.document())
        end.setPosition(cursor.position())
        end.setKeepPositionOnInsert(True)
        section = ToolSection(index, header, end, step)
        self._sections.append(section)
        self._show_blocks(section, False, dirty=False)
        return section

    def show_live(self, steps: tuple[ToolStepView, ...], after: int) -> None:
        """The last answer's calls (its role name at `after`) as they are now: new ones added at the
        end of the document, changed ones redrawn in place (also ones drawn by a redraw of the
        whole transcript meanwhile, e.g. a theme switch)."""
        for step in steps:
            section = self._live.get(step.call_id) or self._drawn_after(step.call_id, after)
            if section is not None:
                self._live[step.call_id] = section
            if section is None:
                c = QTextCursor(self._doc)
                c.movePosition(QTextCursor.MoveOperation.End)
                self._live[step.call_id] = self.add(c, step)
            elif section.step != step:
                self._redraw(section, step)

    def _drawn_after(self, call_id: str, after: int) -> ToolSection | None:
        for s in reversed(self._sections):
            if s.step.call_id == call_id and s.header.document() is self._doc and s.header.position() > after:
                return s
        return None

    def _redraw(self, section: ToolSection, step: ToolStepView) -> None:
        section.step = step
        c = QTextCursor(self._doc)
        start = section.header.block().position()
        c.beginEditBlock()
        try:
            c.setPosition(start)
            c.setPosition(section.end.position(), QTextCursor.MoveMode.KeepAnchor)
            c.removeSelectedText()  # the block left may be a folded one's (hidden): shown again
            c.block().setVisible(True)
            c.setBlockFormat(_header_block())
            c.insertText(_label(step, section.expanded), self._header_format(section.index, step))
            self._body(c, step)
            section.end.setPosition(c.position())
        finally:
            c.endEditBlock()
        self._show_blocks(section, section.expanded)

    def adopt(self, sections: list[ToolSection]) -> None:
        """As ReasoningSections.adopt: drawn in a scratch document, now at the same positions here."""
        for s in sections:
            s.header = self._at(s.header.position())
            s.end = self._at(s.end.position())
            self._show_blocks(s, s.expanded, dirty=False)

    def _at(self, position: int) -> QTextCursor:
        c = QTextCursor(self._doc)
        c.setPosition(position)
        c.setKeepPositionOnInsert(True)
        return c

    def toggle(self, index: int) -> None:
        s = self._sections[index]
        s.expanded = not s.expanded
        c = QTextCursor(s.header.block())
        c.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        c.insertText(_label(s.step, s.expanded), self._header_format(s.index, s.step))
        self._show_blocks(s, s.expanded)

    def shown(self) -> list[tuple[str, str, bool]]:
        """(folded line, the text under it, expanded) of each section, top to bottom."""
        out = []
        on_screen = (s for s in self._sections if s.header.document() is self._doc)
        for s in sorted(on_screen, key=lambda s: s.header.position()):
            c = QTextCursor(self._doc)
            c.setPosition(s.header.block().next().position())
            c.setPosition(s.end.position(), QTextCursor.MoveMode.KeepAnchor)
            out.append((s.header.block().text(), c.selectedText().replace("\u2029", "\n"), s.expanded))
        return out

    # -- drawing -------------------------------------------------------------------------
    def _body(self, cursor: QTextCursor, step: ToolStepView) -> None:
        """The arguments and the output, each under its heading, as plain text."""
        self._part(cursor, "Arguments", step.pretty_arguments())
        heading = step.output_heading()
        if heading:
            text = step.result if step.result else "(no text)"
            note = " Hearth cut it at its size limit before the model read it." if step.truncated else ""
            self._part(cursor, heading, text, note)
        elif step.status == "asking":
            self._note(cursor, "Hearth is asking you whether to run it.")

    def _part(self, cursor: QTextCursor, heading: str, text: str, note: str = "") -> None:
        cursor.insertBlock(_text_block(4), self._heading_format())
        cursor.insertText(heading, self._heading_format())
        cut, left = shown(text)
        cursor.insertBlock(_text_block(2, indent=True), self._mono_format())
        cursor.insertText(printable(cut, keep_lines=True), self._mono_format())
        if left or note:
            more = f"… {left:,} more characters not shown here." if left else ""
            self._note(cursor, (more + note).strip())

    def _note(self, cursor: QTextCursor, text: str) -> None:
        fmt = self._heading_format()
        fmt.setFontItalic(True)
        fmt.setFontWeight(QFont.Weight.Normal)
        cursor.insertBlock(_text_block(2, indent=True), fmt)
        cursor.insertText(text, fmt)

    def _show_blocks(self, s: ToolSection, visible: bool, *, dirty: bool = True) -> None:
        show_blocks(s.header, s.end, visible, dirty=dirty)  # folded as reasoning is

    def _header_format(self, index: int, step: ToolStepView) -> QTextCharFormat:
        c = self._colours()
        colour = {"error": c.error, "timeout": c.error, "denied": c.warning, "cancelled": c.warning}
        fmt = QTextCharFormat()
        fmt.setForeground(colour.get(step.status, c.muted))
        fmt.setFontWeight(QFont.Weight.Medium)
        fmt.setAnchor(True)
        fmt.setAnchorHref(f"{TOOL_HREF}{index}")
        fmt.setToolTip("Click to show or hide the call's arguments and the tool's output")
        return fmt

    def _heading_format(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self._colours().muted)
        fmt.setFontWeight(QFont.Weight.DemiBold)
        fmt.setProperty(QTextFormat.Property.FontSizeAdjustment, -1)
        return fmt

    def _mono_format(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self._colours().text)
        fmt.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        return fmt


def _label(step: ToolStepView, expanded: bool) -> str:
    return f"{printable(step.line(_icon()))} {'▾' if expanded else '▸'}"


@functools.cache
def _icon() -> str:
    """🔧 where a colour emoji font is installed, else ⚙ (in DejaVu Sans, which Qt falls back to):
    without one, 🔧 is drawn as an empty box."""
    return "🔧" if any("emoji" in f.lower() for f in QFontDatabase.families()) else "⚙"


def _header_block() -> QTextBlockFormat:
    block = QTextBlockFormat()
    block.setTopMargin(4)
    return block


def _text_block(top: float, *, indent: bool = False) -> QTextBlockFormat:
    block = QTextBlockFormat()
    block.setTopMargin(top)
    block.setLeftMargin(24 if indent else 16)
    return block
