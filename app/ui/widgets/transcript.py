"""The transcript: the messages of one conversation, rendered into one QTextDocument.

Owns the document. Text goes in only through `QTextCursor.insertText`, so the model's
output is plain text: HTML in it is shown, never interpreted, and no resource is ever
loaded. While an answer streams, each frame's chunk is appended at a cursor kept at the
end of that answer, so an append costs the same for a 200 KB answer as for a short one.
The whole document is rebuilt only by `show_messages` (switching conversations).

A model's reasoning (its <think> part) is a section of its own between the role name and
the answer: a header the person clicks ("Thinking… ▾" while it streams, "Reasoning (N
words) ▸" once the answer starts, when it collapses unless the person opened it) and the
reasoning text, which streams in at its own cursor as the answer does. Collapsing hides
its blocks (QTextBlock visibility), so nothing is re-inserted. A provider that rewrites
its answer (`replace_text`) costs one rewrite of that answer, not of the document.
Must not: call setPlainText/setHtml/setMarkdown, or hold any state besides the document
and the cursors into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QFont,
    QGuiApplication,
    QMouseEvent,
    QPalette,
    QResizeEvent,
    QTextBlock,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
    QTextFrame,
    QTextFrameFormat,
    QTextLength,
)
from PySide6.QtWidgets import QFrame, QTextEdit, QWidget

from app.ui.theme import Colours, colours
from app.ui.widgets.answer_body import AnswerBody, write_markdown
from app.ui.widgets.link_guard import LinkGuard
from app.ui.widgets.markdown_writer import CODE_COPY, MODEL_LINK, MarkdownWriter, body_block_format
from app.ui.widgets.message_actions import LABELS, MessageToolbar, insert_branch_nav, menu_actions, parse_href

if TYPE_CHECKING:
    from app.ui.viewmodels.main import MessageView

__all__ = ["OLDER_BATCH", "TAIL", "TranscriptView"]

# Opening a conversation renders its last TAIL messages (more than a screen holds); scrolling
# near the top adds OLDER_BATCH more above. A 1,000-message chat opens as fast as a 60-message one.
TAIL = 60
OLDER_BATCH = 40
READING_CHARS = 80  # the widest a line of text gets, in average characters
_MARGIN = 16  # the least space on each side of the messages
_BUBBLE_EXTRA = 2 * 10 + 48  # a message's padding, and the indent of the person's messages

_ROLE_NAMES = {"user": "You", "assistant": "Assistant"}
_REASONING_HREF = "hearth-reasoning:"  # an internal anchor: model text never carries one


@dataclass
class _Reasoning:
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


class TranscriptView(QTextEdit):
    action_requested = Signal(str, int)  # (message_actions action, message id): a link or the menu
    notice = Signal(str)  # a line for the status bar ("Code copied")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setReadOnly(True)
        self.setAcceptRichText(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        doc = self.document()
        doc.setUndoRedoEnabled(False)  # an undo stack would keep every chunk twice
        doc.setDocumentMargin(16)
        self.setPlaceholderText("Ask anything. The model runs on this computer: nothing you type leaves it.")
        self._body: AnswerBody | None = None  # the streaming answer's Markdown body
        self._colours = colours(self.palette())
        self._code: list[str] = []  # the code blocks shown, by the number in their Copy link
        self._restyle_pending = False  # the palette changed while an answer streamed
        self._live_head: QTextCursor | None = None  # in the streaming message's role-name block
        self._live_reasoning: _Reasoning | None = None
        self._sections: list[_Reasoning] = []  # index = the number in the header's anchor
        self._frames: list[QTextFrame] = []  # one per message, in order
        self.links = LinkGuard(self)
        self.toolbar = MessageToolbar(self.viewport())
        self.toolbar.chosen.connect(self.action_requested)
        self.verticalScrollBar().valueChanged.connect(lambda _: self.toolbar.hide())
        self._views: list[MessageView] = []  # what each frame shows (a right-click asks)
        self._older: list[MessageView] = []  # above the first frame, not rendered yet
        self._loading_older = False
        self.verticalScrollBar().valueChanged.connect(self._near_top)

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        return None  # model output never makes the window fetch anything

    # -- the three operations ----------------------------------------------------------
    def show_messages(self, messages: list[MessageView], *, tail: int = TAIL) -> None:
        """Rebuild everything: only when another conversation is shown (or the theme changed).
        The last `tail` messages are drawn now, older ones as the person scrolls up."""
        self._body = self._live_head = self._live_reasoning = None
        self._code.clear()
        self._sections.clear()
        self.toolbar.hide()
        self._frames.clear()
        self._views.clear()
        self.document().clear()
        self._fit_width()
        # The newest messages first: they are what is on screen. Older ones are added above,
        # a batch at a time, as the person scrolls up (_render_older).
        tail = max(1, tail)
        self._older = list(messages[:-tail]) if len(messages) > tail else []
        batch = QTextCursor(self.document())
        batch.beginEditBlock()  # one layout pass at the end, not one per insert
        for m in messages[-tail:]:
            self._append(m)
        batch.endEditBlock()
        self._scroll_to_end()

    @property
    def unrendered(self) -> int:
        """How many older messages are not in the document yet (scrolling up adds them)."""
        return len(self._older)

    def _render_older(self, count: int = OLDER_BATCH) -> None:
        """Put the next `count` older messages above the first one shown, keeping the view still."""
        if not self._older:
            return
        batch, self._older = self._older[-count:], self._older[:-count]
        bar = self.verticalScrollBar()
        doc = self.document()
        layout = doc.documentLayout()
        anchor = self._frames[0] if self._frames else None  # the first message shown until now
        old_top = layout.frameBoundingRect(anchor).top() if anchor is not None else 0.0
        old_value = bar.value()
        edit = QTextCursor(doc)
        edit.beginEditBlock()
        frames: list[QTextFrame] = []
        position = 0
        for m in batch:
            cursor = QTextCursor(doc)
            cursor.setPosition(position)
            frames.append(self._render(cursor, m))
            position = frames[-1].lastPosition() + 1
        edit.endEditBlock()
        self._frames[0:0] = frames
        self._views[0:0] = batch
        if anchor is not None:  # it moved down by the height of what was added: follow it
            bar.setValue(old_value + round(layout.frameBoundingRect(anchor).top() - old_top))

    def _near_top(self, value: int) -> None:
        if self._older and value <= self.viewport().height() and not self._loading_older:
            self._loading_older = True  # once per batch: the scroll bar moves while it renders
            QTimer.singleShot(0, self, self._load_older_now)

    def _load_older_now(self) -> None:
        self._loading_older = False
        if self.verticalScrollBar().value() <= self.viewport().height():  # still there, once laid out
            self._render_older()

    def append_message(self, m: MessageView) -> None:
        """Add a message at the end. An answer still in progress keeps the live cursor."""
        at_end = self._at_end()
        self._append(m)
        if at_end:
            self._scroll_to_end()

    def _append(self, m: MessageView) -> None:
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        self._frames.append(self._render(cursor, m))
        self._views.append(m)

    def _render(self, cursor: QTextCursor, m: MessageView) -> QTextFrame:
        """Insert message `m` as a frame at `cursor`. No scroll bar reads in here: each one lays
        out the document again, which made showing a 1,000-message conversation quadratic."""
        frame_format = QTextFrameFormat()
        frame_format.setPadding(10)
        frame_format.setBottomMargin(10)
        frame_format.setBackground(self._colours.user_bubble if m.role == "user" else self._colours.assistant_bubble)
        if m.role == "user":
            frame_format.setLeftMargin(48)
        else:
            frame_format.setRightMargin(24)
        frame_format.setWidth(QTextLength(QTextLength.Type.PercentageLength, 100))
        frame = cursor.insertFrame(frame_format)
        start = cursor.position()
        cursor.insertText(_ROLE_NAMES.get(m.role, m.role), _header_format(self._colours))
        insert_branch_nav(cursor, m, self.palette())
        # At the start of the role name: nothing is inserted there, so it stays in that block.
        head = QTextCursor(self.document())
        head.setPosition(start)
        cursor.insertBlock(body_block_format(4), _body_format(self._colours))
        live = m.state is not None and not m.footer and m.role == "assistant"
        body: AnswerBody | None = None
        if live:  # queued/streaming: text will follow
            body = AnswerBody(self.document(), cursor, self._writer())
            body.feed(m.text)
        elif m.role == "assistant":  # the model's Markdown, drawn once
            write_markdown(cursor, m.text, self._writer())
        else:  # what the person typed, as typed: line breaks kept, nothing interpreted
            cursor.insertText(m.text, _body_format(self._colours))
        reasoning = self._add_reasoning(head, m.reasoning, expanded=live) if m.reasoning else None
        if body is not None:
            self._body, self._live_head, self._live_reasoning = body, head, reasoning
        else:
            self._insert_footer(cursor, m)
        return frame

    def _writer(self) -> MarkdownWriter:
        return MarkdownWriter(self.palette(), self._register_code)

    def _register_code(self, code: str) -> int:
        self._code.append(code)
        return len(self._code) - 1

    def append_text(self, chunk: str) -> None:
        """Append one frame's worth of text to the streaming answer."""
        if self._body is None:
            return
        at_end = self._at_end()
        self._answer_started()
        self._body.feed(chunk)
        if at_end:
            self._scroll_to_end()

    def append_reasoning(self, chunk: str) -> None:
        """Append one frame's worth of reasoning to the streaming message's reasoning section."""
        if self._body is None or self._live_head is None:
            return
        at_end = self._at_end()
        r = self._live_reasoning
        if r is None:
            r = self._live_reasoning = self._add_reasoning(self._live_head, "", expanded=True)
            r.thinking = True
            self._relabel(r)
        r.end.insertText(chunk, _reasoning_format(self._colours))
        r.count(chunk)
        if not r.expanded:  # hidden: the count in its header is what changes
            self._relabel(r)
            if "\n" in chunk:  # new blocks start visible
                self._show_blocks(r, False)
        if at_end:
            self._scroll_to_end()

    def replace_text(self, text: str) -> None:
        """The provider rewrote the streaming answer: replace the answer's text (rare)."""
        if self._body is None:
            return
        self._answer_started()
        self._body.replace(text)

    def replace_reasoning(self, text: str) -> None:
        """The streaming message's whole reasoning, rewritten."""
        if self._live_reasoning is None:
            self.append_reasoning(text)
            return
        r = self._live_reasoning
        c = QTextCursor(self.document())
        c.setPosition(r.header.block().next().position())
        c.setPosition(r.end.position(), QTextCursor.MoveMode.KeepAnchor)
        c.insertText(text, _reasoning_format(self._colours))
        r.words, r.in_word = 0, False
        r.count(text)
        self._relabel(r)
        self._show_blocks(r, r.expanded)

    def toggle_reasoning(self, index: int) -> None:
        """Open or close reasoning section `index` (the person clicked its header)."""
        r = self._sections[index]
        r.chosen = True
        self._set_expanded(r, not r.expanded)

    def reasoning_sections(self) -> list[tuple[str, str, bool]]:
        """(header, text, expanded) of each reasoning section, top to bottom."""
        out = []
        for r in sorted(self._sections, key=lambda r: r.header.position()):  # older ones are added above
            c = QTextCursor(self.document())
            c.setPosition(r.header.block().next().position())
            c.setPosition(r.end.position(), QTextCursor.MoveMode.KeepAnchor)
            out.append((r.header.block().text(), c.selectedText().replace("\u2029", "\n"), r.expanded))
        return out

    def finish_message(self, m: MessageView) -> None:
        """The streaming answer ended: add its footer (metrics, stopped, error)."""
        if self._body is None:
            return
        at_end = self._at_end()
        self._body.finish()
        if self._live_reasoning is not None and self._live_reasoning.thinking:
            self._live_reasoning.thinking = False  # it ended without an answer: keep it open
            self._relabel(self._live_reasoning)
        self._insert_footer(self._body.end, m)
        if self._views:
            self._views[-1] = m
        self._body = self._live_head = self._live_reasoning = None
        if self._restyle_pending:
            self._restyle()
        if at_end:
            self._scroll_to_end()

    # -- the mouse: clicking a reasoning header opens or closes it ----------------------
    def message_at(self, pos: QPoint) -> tuple[MessageView, bool] | None:
        """The message under viewport point `pos`, and whether it is the last one."""
        i = self._index_at(pos)
        return None if i is None else (self._views[i], i == len(self._views) - 1)

    def _index_at(self, pos: QPoint) -> int | None:
        frame = self.cursorForPosition(pos).currentFrame()
        while frame is not None and frame.parentFrame() is not None:
            first = frame.firstPosition()
            for i, f in enumerate(self._frames):
                if f.firstPosition() == first:
                    return i
            frame = frame.parentFrame()
        return None

    def _offer_actions(self, pos: QPoint) -> None:
        """Float the toolbar at the top right of the finished message under `pos`."""
        i = self._index_at(pos)
        m = self._views[i] if i is not None else None
        if i is None or m is None or m.message_id is None or (
                m.role == "assistant" and m.state is not None and not m.footer):
            self.toolbar.hide()
            return
        if self.toolbar.isVisible() and self.toolbar.message_id == m.message_id:
            return
        frame = self._frames[i]
        box = self.document().documentLayout().frameBoundingRect(frame)
        top_right = QPoint(int(box.right()) - self.horizontalScrollBar().value() - 4,
                           int(box.top()) - self.verticalScrollBar().value() + 4)
        self.toolbar.show_for(m, top_right)

    def leaveEvent(self, event: QEvent) -> None:
        if not self.toolbar.underMouse():
            self.toolbar.hide()
        super().leaveEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        menu = self.createStandardContextMenu(event.pos())
        found = self.message_at(event.pos())
        if found is not None and found[0].message_id is not None:
            m, last = found
            menu.addSeparator()
            for action in menu_actions(m, last=last):
                menu.addAction(LABELS[action]).triggered.connect(
                    lambda _=False, a=action, mid=m.message_id: self.action_requested.emit(a, mid))
        menu.exec(event.globalPos())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        href = self.anchorAt(event.position().toPoint())
        if href and event.button() == Qt.MouseButton.LeftButton and not self.textCursor().hasSelection() \
                and self.follow(href):
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def follow(self, href: str) -> bool:
        """The person clicked anchor `href`: True when it was one of Hearth's or a model's link."""
        index = href.rpartition(":")[2]
        if (link := parse_href(href)) is not None:
            self.action_requested.emit(*link)
        elif href.startswith(_REASONING_HREF) and index.isdigit():
            self.toggle_reasoning(int(index))
        elif href.startswith(CODE_COPY) and index.isdigit():
            self.copy_code(int(index))
        elif href.startswith(MODEL_LINK):  # never opened without asking, and only http(s)
            self.links.ask(href[len(MODEL_LINK):])
        else:
            return False
        return True

    def copy_code(self, index: int) -> None:
        """Code block `index` alone, as the model wrote it, to the clipboard."""
        QGuiApplication.clipboard().setText(self._code[index])
        self.notice.emit("Code copied")

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._offer_actions(event.position().toPoint())
        over = bool(self.anchorAt(event.position().toPoint()))
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor if over else Qt.CursorShape.IBeamCursor)
        super().mouseMoveEvent(event)

    # -- reasoning sections ------------------------------------------------------------
    def _add_reasoning(self, head: QTextCursor, text: str, *, expanded: bool) -> _Reasoning:
        """A reasoning section right under the role name of the message whose header is `head`."""
        index = len(self._sections)
        c = QTextCursor(head.block())
        c.movePosition(QTextCursor.MoveOperation.EndOfBlock)
        c.insertBlock(_reasoning_header_block(), _reasoning_header_format(index, self._colours))
        start = c.position()
        c.insertText("…", _reasoning_header_format(index, self._colours))  # relabelled below
        header = QTextCursor(self.document())  # at the label's start: later inserts come after it
        header.setPosition(start)
        c.insertBlock(_reasoning_block(), _reasoning_format(self._colours))
        c.insertText(text, _reasoning_format(self._colours))
        r = _Reasoning(index=index, header=header, end=c, expanded=expanded)
        r.count(text)
        self._sections.append(r)
        self._relabel(r)
        if not expanded:
            self._show_blocks(r, False)
        return r

    def _answer_started(self) -> None:
        r = self._live_reasoning
        if r is not None and r.thinking:
            r.thinking = False
            if r.chosen:
                self._relabel(r)
            else:  # the answer is what the person waits for: fold the reasoning away
                self._set_expanded(r, False)

    def _set_expanded(self, r: _Reasoning, expanded: bool) -> None:
        r.expanded = expanded
        self._relabel(r)
        self._show_blocks(r, expanded)

    def _relabel(self, r: _Reasoning) -> None:
        block = r.header.block()
        c = QTextCursor(block)
        c.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
        c.insertText(r.label(), _reasoning_header_format(r.index, self._colours))

    def _show_blocks(self, r: _Reasoning, visible: bool) -> None:
        first = r.header.block().next()
        last = r.end.block()
        block: QTextBlock = first
        while block.isValid():
            block.setVisible(visible)
            if block == last:
                break
            block = block.next()
        start = first.position()
        self.document().markContentsDirty(start, last.position() + last.length() - start)

    # -- reading comfort: a column of at most READING_CHARS characters, and the theme's colours
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_width()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_width()
        elif event.type() == QEvent.Type.PaletteChange and colours(self.palette()) != self._colours:
            self._colours = colours(self.palette())
            self._restyle()

    def _fit_width(self) -> None:
        """Centre a column about READING_CHARS characters wide once the window is wider: long
        lines are hard to read. The margins are the root frame's, so nothing is re-rendered."""
        column = self.fontMetrics().averageCharWidth() * READING_CHARS + _BUBBLE_EXTRA
        side = max(_MARGIN, (self.viewport().width() - column) // 2)
        root = self.document().rootFrame()
        fmt = root.frameFormat()
        if round(fmt.leftMargin()) != side:
            fmt.setLeftMargin(side)
            fmt.setRightMargin(side)
            root.setFrameFormat(fmt)

    def _restyle(self) -> None:
        """Draw everything again in the new palette's colours (a theme switch); an answer that is
        streaming is redrawn when it ends."""
        if self._body is not None:
            self._restyle_pending = True
            return
        self._restyle_pending = False
        bar = self.verticalScrollBar()
        at_end, value = self._at_end(), bar.value()
        self.show_messages(self._older + self._views, tail=len(self._views))
        if not at_end:
            bar.setValue(value)

    # -- helpers -----------------------------------------------------------------------
    def _insert_footer(self, cursor: QTextCursor, m: MessageView) -> None:
        if not m.footer:
            return
        fmt = QTextCharFormat()
        c = self._colours
        state_colours = {"failed": c.error, "cancelled": c.warning, "interrupted": c.warning}
        fmt.setForeground(state_colours.get(str(m.state), c.muted))
        fmt.setFontPointSize(max(7.0, self.font().pointSizeF() - 1.5))
        block = QTextBlockFormat()
        block.setTopMargin(6)
        cursor.insertBlock(block, fmt)
        cursor.insertText(m.footer, fmt)

    def _at_end(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 8

    def _scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    # -- search: bring one message into view ---------------------------------------------
    def scroll_to_message(self, message_id: int) -> bool:
        """Scroll message `message_id` to the top and mark it for a moment (a search result
        was opened). False when it is not shown."""
        if any(m.message_id == message_id for m in self._older):
            while all(m.message_id != message_id for m in self._views):
                self._render_older()  # the result is further up than what was rendered so far
        index = next((i for i, m in enumerate(self._views) if m.message_id == message_id), None)
        if index is None:
            return False
        frame = self._frames[index]
        start = QTextCursor(self.document())
        start.setPosition(frame.firstPosition())
        bar = self.verticalScrollBar()
        bar.setValue(bar.value() + self.cursorRect(start).top() - 24)
        mark = QTextEdit.ExtraSelection()
        mark.cursor = QTextCursor(self.document())
        mark.cursor.setPosition(frame.firstPosition())
        mark.cursor.setPosition(frame.lastPosition(), QTextCursor.MoveMode.KeepAnchor)
        colour = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        colour.setAlpha(70)
        mark.format = QTextCharFormat()
        mark.format.setBackground(colour)
        mark.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        self.setExtraSelections([mark])
        QTimer.singleShot(1600, self, lambda: self.setExtraSelections([]))
        return True


def _header_format(c: Colours) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setFontWeight(QFont.Weight.DemiBold)
    fmt.setForeground(c.heading)
    return fmt


def _body_format(c: Colours) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(c.text)
    return fmt


def _reasoning_header_block() -> QTextBlockFormat:
    block = QTextBlockFormat()
    block.setTopMargin(4)
    return block


def _reasoning_header_format(index: int, c: Colours) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(c.muted)
    fmt.setFontWeight(QFont.Weight.Medium)
    fmt.setAnchor(True)
    fmt.setAnchorHref(f"{_REASONING_HREF}{index}")
    return fmt


def _reasoning_block() -> QTextBlockFormat:
    block = QTextBlockFormat()
    block.setTopMargin(2)
    block.setLeftMargin(12)
    block.setLineHeight(120, QTextBlockFormat.LineHeightTypes.ProportionalHeight.value)
    return block


def _reasoning_format(c: Colours) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(c.muted)
    fmt.setFontItalic(True)
    return fmt
