"""The transcript: the messages of one conversation, drawn into one QTextDocument.

Owns the document and what is live in it: which messages are drawn (the newest first, older
ones as the person scrolls up), the streaming answer (an AnswerBody that redraws only its
pending block each frame) and its reasoning, the mouse (links, Copy, an answer's sources, which
open in a SourcePreview, the message toolbar), and the reading column (at most READING_CHARS
characters wide, centred in a wider window).
The view follows new text while it is at the bottom; scrolled up, it stays put and the "↓ New
text" button (JumpToLatest) offers the way down; a message the person sends is always shown.
MessageDrawing draws each message; the model's Markdown goes in as formats only, so raw HTML
stays text and no resource is ever loaded, and links open only after a confirmation. The
whole document is rebuilt only by `show_messages` (switching conversations, or a theme change).
Older messages are drawn off screen a batch at a time (OlderBatch), then put above in one insert.
Must not: call setPlainText/setHtml/setMarkdown, or hold any state besides the document,
the cursors into it and what each message shows.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QMimeData, QPoint, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QGuiApplication,
    QMouseEvent,
    QPalette,
    QResizeEvent,
    QTextBlock,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
    QTextFrameFormat,
)
from PySide6.QtWidgets import QFrame, QTextEdit, QWidget

from app.ui.theme import colours
from app.ui.widgets.answer_body import AnswerBody
from app.ui.widgets.code_colouring import CodeColouring
from app.ui.widgets.copied_text import copied_text, is_collapsed
from app.ui.widgets.jump_to_latest import JumpToLatest
from app.ui.widgets.link_guard import LinkGuard
from app.ui.widgets.markdown_writer import CODE_COPY, MODEL_LINK, collapsed_block
from app.ui.widgets.message_actions import LABELS, MessageToolbar, menu_actions, parse_href
from app.ui.widgets.message_drawing import PADDING, SOURCE_HREF, USER_INDENT, MessageDrawing, safe
from app.ui.widgets.older_batch import OlderBatch
from app.ui.widgets.reasoning_sections import REASONING_HREF, Reasoning, ReasoningSections
from app.ui.widgets.tool_sections import TOOL_HREF, ToolSections
from app.ui.windows.source_preview import SourcePreview

if TYPE_CHECKING:
    from app.core.message_view import MessageView

__all__ = [
    "AHEAD_SCREENS",
    "BATCH_CHARS",
    "OLDER_BATCH",
    "OLDER_SLICE_S",
    "READING_CHARS",
    "TAIL",
    "TAIL_CHARS",
    "TranscriptView",
    "newest",
]

# Opening a conversation renders its last TAIL messages, or fewer when they hold more than
# TAIL_CHARS characters (a few screens). A 1,000-message chat opens as fast as a short one.
# While the view is within AHEAD_SCREENS screens of the top, older messages are added above in
# batches of OLDER_BATCH at most and about BATCH_CHARS characters, so reading back seldom waits
# at the top. A batch is drawn off screen, about OLDER_SLICE_S per turn of the event loop, then
# put above in one insert, in a frame of its own (OlderBatch.put_above): that insert costs 5-16 ms
# with 1,000 messages drawn, most of it laying out the batch itself, so batches are kept small
# (2,500 characters gave event-loop gaps of 30-37 ms while paging up, 1,500 gave 25-31).
TAIL = 60
TAIL_CHARS = 24_000
OLDER_BATCH = 40
BATCH_CHARS = 1_500
OLDER_SLICE_S = 0.006
AHEAD_SCREENS = 2
READING_CHARS = 80  # the widest a line of text gets, in average characters
_MARGIN = 16  # the least space on each side of the messages


class TranscriptView(QTextEdit):
    action_requested = Signal(str, int)  # (message_actions action, message id): a link or the menu
    notice = Signal(str)  # a line for the status bar ("Code copied")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setReadOnly(True)
        self.setAcceptRichText(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        doc = self.document()
        doc.setUndoRedoEnabled(False)  # an undo stack would keep every chunk twice
        doc.setDocumentMargin(_MARGIN)
        self.setPlaceholderText("Ask anything. The model runs on this computer: nothing you type leaves it.")
        self._colours = colours(self.palette())
        self.reasoning = ReasoningSections(doc, lambda: self._colours)
        self.colouring = CodeColouring(doc, self)  # code blocks are coloured in idle time
        self.tools = ToolSections(doc, lambda: self._colours)  # the calls answers asked for, folded
        self.drawing = MessageDrawing(self.reasoning, self.colouring, lambda: self._colours, self.tools)
        self._body: AnswerBody | None = None  # the streaming answer's Markdown body
        self._live_head: QTextCursor | None = None  # in the streaming message's role-name block
        self._live_reasoning: Reasoning | None = None
        self._note_len = 0  # characters of the live note at the end of the streaming answer's role line
        self._restyle_pending = False  # the palette changed while an answer streamed
        # The block where each message's role name starts, in order. Blocks, not cursors: Qt moves
        # every cursor of a document on each edit, and a cursor per message made putting a batch
        # above cost more the more messages were drawn (a block keeps its place for free).
        self._heads: list[QTextBlock] = []
        self._views: list[MessageView] = []  # what each message shows (a right-click asks)
        self._older: list[MessageView] = []  # above the first message, not rendered yet
        self._batch: OlderBatch | None = None  # the newest of them, being drawn off screen
        self._shift_rest = 0.0  # of the scrolling that follows them, less than a pixel
        self._loading_older = False
        self.links = LinkGuard(self)
        self.preview: SourcePreview | None = None  # an answer's source, opened from the line under it
        self.toolbar = MessageToolbar(self.viewport())
        self.toolbar.chosen.connect(self.action_requested)
        self.verticalScrollBar().valueChanged.connect(lambda _: self.toolbar.hide())
        self.verticalScrollBar().valueChanged.connect(self._near_top)
        self.latest = JumpToLatest(self)  # "↓ New text" while text arrives below what the person reads

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        return None  # model output never makes the window fetch anything

    # -- the three operations ----------------------------------------------------------
    def show_messages(self, messages: list[MessageView], *, tail: int | None = None) -> None:
        """Rebuild everything: only when another conversation is shown (or the theme changed).
        The last `tail` messages are drawn now (default: `newest(messages, TAIL, TAIL_CHARS)`),
        older ones as the person scrolls up."""
        self._body = self._live_head = self._live_reasoning = None
        if self._batch is not None:
            self._batch.discard()
            self._batch = None
        self._shift_rest = 0.0
        self.drawing.clear()
        self.colouring.clear()
        self.reasoning.clear()
        self.tools.clear()
        self.toolbar.hide()
        self._heads.clear()
        self._views.clear()
        self.document().clear()
        self._fit_width()
        tail = max(1, newest(messages, TAIL, TAIL_CHARS) if tail is None else tail)
        self._older = list(messages[:-tail]) if len(messages) > tail else []
        cursor = QTextCursor(self.document())
        cursor.beginEditBlock()  # one layout pass at the end, not one per insert
        frame = None
        if self._older:  # in a frame like each batch put above it later: one spacing at every seam
            cursor.setBlockFormat(collapsed_block())
            frame = cursor.insertFrame(QTextFrameFormat())
        for m in messages[-tail:]:
            self._heads.append(self._render(cursor, m).block())
            self._views.append(m)
        if frame is not None:  # the block Qt keeps after it: empty until a new message takes it
            cursor.setPosition(frame.lastPosition() + 1)
            cursor.setBlockFormat(collapsed_block())
        cursor.endEditBlock()
        self._scroll_to_end()
        self.latest.hide()

    @property
    def unrendered(self) -> int:
        """How many older messages are not in the document yet (scrolling up adds them)."""
        return len(self._older)

    def _render_older(self) -> None:
        """Put the next batch of older messages above the first one shown, now (a search result
        further up), keeping the view still. Its code is coloured later."""
        batch = self._next_batch()
        if batch is not None:
            batch.draw_all(self.palette(), self.font())
            self._put_above(batch)

    def _next_batch(self) -> OlderBatch | None:
        """The batch being drawn, or a new one of the newest older messages (they stay in
        `_older` until they are in the document)."""
        if self._batch is None and self._older:
            self._batch = OlderBatch(self._older[-newest(self._older, OLDER_BATCH, BATCH_CHARS) :], self.drawing, self)
        return self._batch

    def _put_above(self, batch: OlderBatch) -> None:
        bar = self.verticalScrollBar()
        layout = self.document().documentLayout()
        # Qt lays a long document out lazily, on a timer. When the newest messages were not in a
        # frame, a frame put above left the blocks it had not reached never laid out (empty space
        # where text should be): finish first. Nothing is left to do on later batches.
        layout.blockBoundingRect(self.document().lastBlock())
        anchor = self._heads[0] if self._heads else None  # the first message shown until now
        old_top = layout.blockBoundingRect(anchor).top() if anchor is not None else 0.0
        old_value = bar.value()
        old_end = self.document().characterCount() - (anchor.position() if anchor is not None else 0)
        heads = batch.put_above(self.document(), self.colouring, self.reasoning, self.tools)
        if anchor is not None:  # the insert splits the block it lands in: find the anchor again
            anchor = self._heads[0] = self.document().findBlock(self.document().characterCount() - old_end)
        batch.discard()
        self._batch = None
        self._older = self._older[: -len(batch.messages)]
        self._heads[0:0] = heads
        self._views[0:0] = batch.messages
        if anchor is not None:  # it moved down by the height of what was added: follow it
            # That height is seldom whole pixels: what scrolling cannot take is carried to the
            # next batch, so the view never creeps a pixel per batch.
            shift = layout.blockBoundingRect(anchor).top() - old_top + self._shift_rest
            bar.setValue(old_value + round(shift))
            self._shift_rest = shift - round(shift)

    def _near_top(self, value: int) -> None:
        if self._older and value <= AHEAD_SCREENS * self.viewport().height() and not self._loading_older:
            self._loading_older = True  # once per turn: the scroll bar moves while it renders
            # A timer, not a posted call: Qt runs two posted calls in a row before a timer or
            # input gets its turn, so each step would wait for the one before it.
            QTimer.singleShot(1, self, self._load_older_now)

    def _load_older_now(self) -> None:
        self._loading_older = False
        bar = self.verticalScrollBar()
        if bar.value() <= AHEAD_SCREENS * self.viewport().height() and (batch := self._next_batch()) is not None:
            if batch.ready:  # a turn of its own: the insert is the costliest step
                self._put_above(batch)
            else:
                batch.draw_some(OLDER_SLICE_S, self.palette(), self.font())
            self._near_top(bar.value())  # the next step in the next turn, until enough is above

    def append_message(self, m: MessageView) -> None:
        """Add a message at the end. An answer still in progress keeps the live cursors. The
        person's own message was just sent: it is brought into view wherever they were reading,
        and the answer under it is followed from there."""
        at_end = self._at_end()
        self._append(m)
        if at_end or m.role == "user":
            self._scroll_to_end()
        else:
            self.latest.offer()

    def _append(self, m: MessageView) -> None:
        self.tools.forget_live()
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        self._heads.append(self._render(cursor, m).block())
        self._views.append(m)

    def _render(self, cursor: QTextCursor, m: MessageView) -> QTextCursor:
        """Draw message `m` at `cursor`, which is left after it; returns a cursor at its role name.
        No scroll bar reads in here: each one lays out the document again, which made showing
        a 1,000-message conversation quadratic."""
        drawn = self.drawing.draw(cursor, m, self.palette(), self.font())
        if drawn.body is not None:
            self._body, self._live_head, self._live_reasoning = drawn.body, drawn.head, drawn.reasoning
            self._note_len = 0
        return drawn.head

    def set_live_note(self, text: str) -> None:
        """A note beside the streaming answer's role name ("reading your message… 45%"); ""
        removes it. Only the role line changes."""
        if self._live_head is None:
            return
        block = self._live_head.block()
        end = block.position() + block.length() - 1
        c = QTextCursor(self.document())
        c.setPosition(end - self._note_len)
        c.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setForeground(self._colours.muted)
        fmt.setFontItalic(True)
        note = f"   {text}" if text else ""
        c.insertText(note, fmt)
        self._note_len = len(note)

    def append_text(self, chunk: str) -> None:
        """Append one frame's worth of text to the streaming answer."""
        if self._body is None:
            return
        at_end = self._at_end()
        self.reasoning.answer_started(self._live_reasoning)
        self._body.feed(safe(chunk))
        self._follow(at_end)

    def append_reasoning(self, chunk: str) -> None:
        """Append one frame's worth of reasoning to the streaming message's reasoning section."""
        if self._body is None or self._live_head is None:
            return
        at_end = self._at_end()
        r = self._live_reasoning
        if r is None:
            r = self._live_reasoning = self.reasoning.add(self._live_head, "", expanded=True)
            self.reasoning.start_thinking(r)
        self.reasoning.append(r, safe(chunk))
        self._follow(at_end)

    def replace_text(self, text: str) -> None:
        """The provider rewrote the streaming answer: draw the answer again (rare)."""
        if self._body is None:
            return
        at_end = self._at_end()
        self.reasoning.answer_started(self._live_reasoning)
        self._body.replace(safe(text))
        self._follow(at_end)

    def replace_reasoning(self, text: str) -> None:
        """The streaming message's whole reasoning, rewritten."""
        if self._live_reasoning is None:
            self.append_reasoning(text)
        else:
            self.reasoning.replace(self._live_reasoning, safe(text))

    def show_tool_steps(self, m: MessageView) -> None:
        """The last answer's tool calls changed (asked, running, ended): drawn folded under it."""
        if self._body is not None or not self._views:  # never under a streaming answer
            return
        at_end = self._at_end()
        self._views[-1] = m
        self.tools.show_live(m.tool_steps, self._heads[-1].position() if self._heads else 0)
        self._follow(at_end)

    def tool_sections(self) -> list[tuple[str, str, bool]]:
        """(folded line, the text under it, expanded) of each tool call shown, top to bottom."""
        return self.tools.shown()

    def toggle_reasoning(self, index: int) -> None:
        """Open or close reasoning section `index` (the person clicked its header)."""
        self.reasoning.toggle(index)

    def reasoning_sections(self) -> list[tuple[str, str, bool]]:
        """(header, text, expanded) of each reasoning section, top to bottom."""
        return self.reasoning.shown()

    def finish_message(self, m: MessageView) -> None:
        """The streaming answer ended: its last blocks, and its footer (metrics, stopped, error)."""
        if self._body is None:
            return
        at_end = self._at_end()
        if self._note_len:  # stopped while the prompt was read
            self.set_live_note("")
        self._body.finish()
        self._body.fold_if_empty()  # as MessageDrawing draws an empty answer
        self.reasoning.ended(self._live_reasoning)
        self.drawing.footer(self._body.end, m, self.font())
        if self._views:
            self._views[-1] = m
        self._body = self._live_head = self._live_reasoning = None
        if self._restyle_pending:
            self._restyle()
        self._follow(at_end)

    # -- the mouse: links, the message under the pointer, its actions --------------------
    def message_at(self, pos: QPoint) -> tuple[MessageView, bool] | None:
        """The message under viewport point `pos`, and whether it is the last one."""
        i = self._index_at(pos)
        return None if i is None else (self._views[i], i == len(self._views) - 1)

    def _index_at(self, pos: QPoint) -> int | None:
        position = self.cursor_at(pos).position()
        i = bisect_right([h.position() for h in self._heads], position) - 1
        return i if i >= 0 else None

    def cursor_at(self, pos: QPoint) -> QTextCursor:
        """The text position nearest viewport point `pos`, taken level with it in the column of
        text. Why: older messages sit in frames (see OlderBatch.put_above), and Qt answers a point
        left of a frame with the position before the whole frame, not the line beside it."""
        doc = self.document()
        fmt = doc.rootFrame().frameFormat()
        left = round(fmt.leftMargin()) - self.horizontalScrollBar().value()
        right = round(doc.size().width() - fmt.rightMargin()) - self.horizontalScrollBar().value()
        return self.cursorForPosition(QPoint(min(max(pos.x(), left + 1), max(left + 1, right - 1)), pos.y()))

    def _offer_actions(self, pos: QPoint) -> None:
        """Float the toolbar at the top right of the finished message under `pos`."""
        i = self._index_at(pos)
        m = self._views[i] if i is not None else None
        if (
            i is None
            or m is None
            or m.message_id is None
            or (m.role == "assistant" and m.state is not None and not m.footer)
        ):
            self.toolbar.hide()
            return
        if self.toolbar.isVisible() and self.toolbar.message_id == m.message_id:
            return
        right = self.document().size().width() - self.document().rootFrame().frameFormat().rightMargin()
        top = self.cursorRect(QTextCursor(self._heads[i])).top() - (PADDING if m.role != "assistant" else 4)
        self.toolbar.show_for(m, QPoint(int(right) - self.horizontalScrollBar().value() - 4, top + 4))

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
                    lambda _=False, a=action, mid=m.message_id: self.action_requested.emit(a, mid)
                )
        menu.exec(event.globalPos())

    def createMimeDataFromSelection(self) -> QMimeData:
        """Copy: Qt's rich text, and the plain text without the empty blocks Qt keeps around frames
        (a selection across a batch of older messages put above gained blank lines)."""
        rich = super().createMimeDataFromSelection()  # Qt's own: its text() is made from the selection
        data = QMimeData()
        data.setHtml(rich.html())
        data.setText(copied_text(self.textCursor()))
        return data

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        href = self.anchorAt(event.position().toPoint())
        if (
            href
            and event.button() == Qt.MouseButton.LeftButton
            and not self.textCursor().hasSelection()
            and self.follow(href)
        ):
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def follow(self, href: str) -> bool:
        """The person clicked anchor `href`: True when it was one of Hearth's or a model's link."""
        index = href.rpartition(":")[2]
        if (link := parse_href(href)) is not None:
            self.action_requested.emit(*link)
        elif href.startswith(REASONING_HREF) and index.isdigit():
            self.toggle_reasoning(int(index))
        elif href.startswith(TOOL_HREF) and index.isdigit():
            self.tools.toggle(int(index))
        elif href.startswith(CODE_COPY) and index.isdigit():
            self.copy_code(int(index))
        elif href.startswith(SOURCE_HREF) and index.isdigit() and int(index) < len(self.drawing.sources):
            self.show_source(int(index))
        elif href.startswith(MODEL_LINK):  # never opened without asking, and only http(s)
            self.links.ask(href[len(MODEL_LINK) :])
        else:
            return False
        return True

    def copy_code(self, index: int) -> None:
        """Code block `index` alone, as the model wrote it, to the clipboard."""
        QGuiApplication.clipboard().setText(self.drawing.code[index])
        self.notice.emit("Code copied")

    def show_source(self, index: int) -> SourcePreview:
        """Source `index` (as drawn under its answer) in the preview: its passage, and its file."""
        if self.preview is None:
            self.preview = SourcePreview(self.window())
        self.preview.show_source(self.drawing.sources[index])
        return self.preview

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        self._offer_actions(event.position().toPoint())
        over = bool(self.anchorAt(event.position().toPoint()))
        self.viewport().setCursor(Qt.CursorShape.PointingHandCursor if over else Qt.CursorShape.IBeamCursor)
        super().mouseMoveEvent(event)

    # -- reading comfort: a column of at most READING_CHARS characters, and the theme's colours
    def resizeEvent(self, event: QResizeEvent) -> None:
        # A new width wraps every line again and moves the text under the view (the chat settings
        # panel opening or closing, the window resized): the line at the top of the view stays
        # there, and a person at the newest message stays at it.
        at_end = self._at_end()
        top = self.cursor_at(QPoint(0, 0))
        was = self.cursorRect(top).top()
        super().resizeEvent(event)
        self._fit_width()
        bar = self.verticalScrollBar()
        if at_end:
            self._scroll_to_end()
        else:
            bar.setValue(bar.value() + self.cursorRect(top).top() - was)

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
        column = self.fontMetrics().averageCharWidth() * READING_CHARS + 2 * PADDING + USER_INDENT
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
    def _at_end(self) -> bool:
        return self.latest.at_bottom()

    def _scroll_to_end(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _follow(self, was_at_end: bool) -> None:
        """After text arrived: keep following the answer from the bottom, or, for a person who
        scrolled up to read, leave the view where it is and offer the way down."""
        if was_at_end:
            self._scroll_to_end()
        else:
            self.latest.offer()

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
        head = self._heads[index]
        bar = self.verticalScrollBar()
        bar.setValue(bar.value() + self.cursorRect(QTextCursor(head)).top() - 24)
        # To the end of its last block that shows: not over the empty blocks Qt keeps around frames
        # (a bubble, a seam between batches), which a full-width mark would paint as a band.
        last = self._heads[index + 1].previous() if index + 1 < len(self._heads) else self.document().lastBlock()
        while last.isValid() and last.position() > head.position() and is_collapsed(last):
            last = last.previous()
        end = last.position() + last.length() - 1
        mark = QTextEdit.ExtraSelection()
        mark.cursor = QTextCursor(self.document())
        mark.cursor.setPosition(head.position())
        mark.cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        colour = QColor(self.palette().color(QPalette.ColorRole.Highlight))
        colour.setAlpha(70)
        mark.format = QTextCharFormat()
        mark.format.setBackground(colour)
        mark.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        self.setExtraSelections([mark])
        QTimer.singleShot(1600, self, lambda: self.setExtraSelections([]))
        return True


def newest(messages: list[MessageView], most: int, chars: int) -> int:
    """How many of the newest messages to draw: `most`, or fewer once they hold `chars`
    characters (at least one)."""
    total = 0
    for n, m in enumerate(reversed(messages[-most:]), start=1):
        total += len(m.text) + len(m.reasoning)
        if total >= chars:
            return n
    return min(most, len(messages))
