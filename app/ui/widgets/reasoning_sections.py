"""A model's reasoning (its <think> part) in the transcript: a section under the role name.

Owns: each section's header (a link the person clicks: "Thinking… ▾" while it streams,
"Reasoning (N words) ▸" once the answer starts, when it folds away unless the person opened
it) and its text, which streams in at its own cursor as the answer does. Folding hides the
section's blocks (QTextBlock visibility), so nothing is re-inserted.
Must not: touch the answer below it or anything outside its own blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QFont, QTextBlock, QTextBlockFormat, QTextCharFormat, QTextCursor, QTextDocument

from app.ui.theme import Colours

__all__ = ["REASONING_HREF", "Reasoning", "ReasoningSections", "show_blocks"]

REASONING_HREF = "hearth-reasoning:"  # + the section's number: model text never carries one


@dataclass
class Reasoning:
    """One reasoning section: where its header is, where its text ends, how it is shown."""

    index: int  # the number in the header's anchor
    header: QTextCursor  # in the header block; only its block is used
    end: QTextCursor  # the end of the reasoning text: streaming appends here
    words: int = 0
    in_word: bool = False  # the text so far ends inside a word (a chunk may split one)
    expanded: bool = True
    thinking: bool = False  # streaming, and the answer has not started
    chosen: bool = False  # the person toggled it: streaming no longer collapses it

    def label(self) -> str:
        if self.thinking and self.expanded:
            return "Thinking… ▾"
        words = f"{self.words} word" if self.words == 1 else f"{self.words} words"
        return f"Reasoning ({words}) {'▾' if self.expanded else '▸'}"

    def count(self, chunk: str) -> None:
        for ch in chunk:
            space = ch.isspace()
            if not space and not self.in_word:
                self.words += 1
            self.in_word = not space


class ReasoningSections:
    """The sections of the document shown; `colours` gives the theme's colours at each call."""

    def __init__(self, document: QTextDocument, colours: Callable[[], Colours]) -> None:
        self._doc = document
        self._colours = colours
        self._sections: list[Reasoning] = []  # index = the number in the header's anchor

    def clear(self) -> None:
        self._sections.clear()

    def add(self, head: QTextCursor, text: str, *, expanded: bool) -> Reasoning:
        """A section right under the role name of the message whose header is `head` (in the
        transcript's document, or in a scratch one: then `adopt` it once its text is copied over)."""
        index = len(self._sections)
        c = QTextCursor(head.block())
        c.movePosition(QTextCursor.MoveOperation.EndOfBlock)
        c.insertBlock(_header_block(), self._header_format(index))
        start = c.position()
        c.insertText("…", self._header_format(index))  # relabelled below
        header = QTextCursor(c.document())  # at the label's start: later inserts come after it
        header.setPosition(start)
        c.insertBlock(_text_block(), self._text_format())
        c.insertText(text, self._text_format())
        r = Reasoning(index=index, header=header, end=c, expanded=expanded)
        r.count(text)
        self._sections.append(r)
        self._relabel(r)
        if not expanded:
            self._show_blocks(r, False)
        return r

    def append(self, r: Reasoning, chunk: str) -> None:
        r.end.insertText(chunk, self._text_format())
        r.count(chunk)
        if not r.expanded:  # hidden: the count in its header is what changes
            self._relabel(r)
            if "\n" in chunk:  # new blocks start visible
                self._show_blocks(r, False)

    def start_thinking(self, r: Reasoning) -> None:
        r.thinking = True
        self._relabel(r)

    def replace(self, r: Reasoning, text: str) -> None:
        c = QTextCursor(self._doc)
        c.setPosition(r.header.block().next().position())
        c.setPosition(r.end.position(), QTextCursor.MoveMode.KeepAnchor)
        c.insertText(text, self._text_format())
        r.words, r.in_word = 0, False
        r.count(text)
        self._relabel(r)
        self._show_blocks(r, r.expanded)

    def answer_started(self, r: Reasoning | None) -> None:
        if r is not None and r.thinking:
            r.thinking = False
            if r.chosen:
                self._relabel(r)
            else:  # the answer is what the person waits for: fold the reasoning away
                self.set_expanded(r, False)

    def ended(self, r: Reasoning | None) -> None:
        """The message ended without an answer after its reasoning: keep the section open."""
        if r is not None and r.thinking:
            r.thinking = False
            self._relabel(r)

    def adopt(self, sections: list[Reasoning]) -> None:
        """`sections` were drawn into a scratch document whose text now sits at the same
        positions in this one: their cursors move here, and folded ones are folded again (a
        copied block is visible). Called inside the edit that copied them, so their blocks are
        laid out once, folded."""
        for r in sections:
            r.header = self._at(r.header.position())
            r.end = self._at(r.end.position())
            if not r.expanded:  # not marked dirty: that would lay out a document half copied
                self._show_blocks(r, False, dirty=False)

    def _at(self, position: int) -> QTextCursor:
        c = QTextCursor(self._doc)
        c.setPosition(position)
        return c

    def toggle(self, index: int) -> None:
        r = self._sections[index]
        r.chosen = True
        self.set_expanded(r, not r.expanded)

    def set_expanded(self, r: Reasoning, expanded: bool) -> None:
        r.expanded = expanded
        self._relabel(r)
        self._show_blocks(r, expanded)

    def shown(self) -> list[tuple[str, str, bool]]:
        """(header, text, expanded) of each section, top to bottom."""
        out = []
        shown = (r for r in self._sections if r.header.document() is self._doc)  # not ones still off screen
        for r in sorted(shown, key=lambda r: r.header.position()):  # older ones are added above
            c = QTextCursor(self._doc)
            c.setPosition(r.header.block().next().position())
            c.setPosition(r.end.position(), QTextCursor.MoveMode.KeepAnchor)
            out.append((r.header.block().text(), c.selectedText().replace("\u2029", "\n"), r.expanded))
        return out

    def _relabel(self, r: Reasoning) -> None:
        c = QTextCursor(r.header.block())
        c.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        c.insertText(r.label(), self._header_format(r.index))

    def _show_blocks(self, r: Reasoning, visible: bool, *, dirty: bool = True) -> None:
        show_blocks(r.header, r.end, visible, dirty=dirty)

    def _header_format(self, index: int) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self._colours().muted)
        fmt.setFontWeight(QFont.Weight.Medium)
        fmt.setAnchor(True)
        fmt.setAnchorHref(f"{REASONING_HREF}{index}")
        return fmt

    def _text_format(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self._colours().muted)
        fmt.setFontItalic(True)
        return fmt


def _header_block() -> QTextBlockFormat:
    block = QTextBlockFormat()
    block.setTopMargin(4)
    return block


def _text_block() -> QTextBlockFormat:
    block = QTextBlockFormat()
    block.setTopMargin(2)
    block.setLeftMargin(12)
    block.setLineHeight(120, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
    return block


def show_blocks(header: QTextCursor, end: QTextCursor, visible: bool, *, dirty: bool = True) -> None:
    """Fold or unfold a section: the blocks after `header`'s, through `end`'s, hidden or shown (the
    header stays). `dirty`: lay them out again now (not while a whole transcript is being drawn)."""
    first = header.block().next()
    last = end.block()
    block: QTextBlock = first
    while block.isValid():
        block.setVisible(visible)
        if block == last:
            break
        block = block.next()
    if dirty:
        start = first.position()
        first.document().markContentsDirty(start, last.position() + last.length() - start)
