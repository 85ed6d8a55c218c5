"""Search hits as a list: a model that holds them and a delegate that draws each one as the
conversation's title, where the match is (a message's role, "Tool: name" for a tool's result,
or the title itself) and the snippet with every match marked in the palette's highlight colour.

Text is laid out with QTextLayout and format ranges, never as HTML: a snippet is model or
person text, so markup in it is shown as typed. Highlights come from the store as
code-point offsets; Qt counts UTF-16 units, so they are converted (an emoji before a match
would otherwise shift the mark). Must not: search, or open anything (the panel does).
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPalette,
    QTextCharFormat,
    QTextLayout,
    QTextLine,
    QTextOption,
)
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from store.search import SearchHit

__all__ = ["HitRole", "SearchResultsDelegate", "SearchResultsModel", "display_text", "utf16_ranges", "where_label"]

HitRole = Qt.ItemDataRole.UserRole + 1

_WHERE = {"user": "You", "assistant": "Assistant", "system": "System"}
_PAD = 8
_SNIPPET_LINES = 2
_Index = QModelIndex | QPersistentModelIndex


def display_text(text: str) -> str:
    """One line, same length: line breaks and control characters become spaces, so the
    store's offsets still point at the matches."""
    return "".join(" " if ch.isspace() or ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 else ch for ch in text)


def where_label(hit: SearchHit) -> str:
    """Where the match is: "Title", "You", "Assistant"..., or "Tool: server/tool" for a tool's
    result (data from the tool, never to be read as the model's words)."""
    if hit.message_id is None:
        return "Title"
    if hit.role == "tool":
        return f"Tool: {display_text(hit.tool_name or 'unknown tool')}"
    return _WHERE.get(hit.role or "", hit.role or "")


def utf16_ranges(text: str, spans: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    """(start, length) in UTF-16 units for code-point spans of `text`; bad spans are dropped."""
    out = []
    for start, end in spans:
        if 0 <= start < end <= len(text):
            begin = len(text[:start].encode("utf-16-le")) // 2
            out.append((begin, len(text[start:end].encode("utf-16-le")) // 2))
    return out


class SearchResultsModel(QAbstractListModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hits: list[SearchHit] = []

    def set_hits(self, hits: list[SearchHit]) -> None:
        self.beginResetModel()
        self._hits = list(hits)
        self.endResetModel()

    def hit(self, row: int) -> SearchHit | None:
        return self._hits[row] if 0 <= row < len(self._hits) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._hits)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        hit = self.hit(index.row())
        if hit is None:
            return None
        if role == HitRole:
            return hit
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return f"{hit.title} ({where_label(hit)}): {display_text(hit.snippet)}"
        return None


class SearchResultsDelegate(QStyledItemDelegate):
    """Title and where on the first line, the snippet on up to two more, matches marked."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        hit = index.data(HitRole)
        line = QFontMetricsF(option.font).lineSpacing()
        lines = 1 if hit is None or hit.message_id is None else 1 + _SNIPPET_LINES
        return QSize(200, int(line * lines + 2 * _PAD + 2))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        hit = index.data(HitRole)
        if not isinstance(hit, SearchHit):
            return
        rect = QRectF(option.rect)
        palette: QPalette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        if selected:  # a tint, so the marked matches still stand out on the chosen row
            tint = QColor(palette.color(QPalette.ColorRole.Highlight))
            tint.setAlpha(60)
            painter.fillRect(rect, tint)
        painter.setPen(QColor(palette.color(QPalette.ColorRole.Mid)))
        painter.drawLine(rect.bottomLeft(), rect.bottomRight())
        font: QFont = option.font
        line = QFontMetricsF(font).lineSpacing()
        inner = rect.adjusted(_PAD, _PAD, -_PAD, -_PAD)
        bold = QFont(font)
        bold.setWeight(QFont.Weight.DemiBold)
        where = where_label(hit)
        # A tool's name comes from its server: at most half the row, so the title stays readable.
        where = QFontMetricsF(font).elidedText(where, Qt.TextElideMode.ElideMiddle, inner.width() / 2)
        where_width = QFontMetricsF(font).horizontalAdvance(where) + _PAD
        painter.setFont(font)
        painter.setPen(QColor(palette.color(QPalette.ColorRole.PlaceholderText)))
        painter.drawText(
            QRectF(inner.right() - where_width, inner.top(), where_width, line),
            int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
            where,
        )
        title_width = inner.width() - where_width - _PAD
        text = palette.color(QPalette.ColorRole.Text)
        if hit.message_id is None:  # the title is what matched: mark it there
            _draw_marked(
                painter, hit.snippet, hit.highlights, bold, QPointF(inner.topLeft()), title_width, 1, text, palette
            )
        else:
            _draw_marked(painter, hit.title, (), bold, QPointF(inner.topLeft()), title_width, 1, text, palette)
            _draw_marked(
                painter,
                hit.snippet,
                hit.highlights,
                font,
                QPointF(inner.left(), inner.top() + line),
                inner.width(),
                _SNIPPET_LINES,
                text,
                palette,
            )
        painter.restore()


def _draw_marked(
    painter: QPainter,
    raw: str,
    spans: tuple[tuple[int, int], ...],
    font: QFont,
    at: QPointF,
    width: float,
    max_lines: int,
    colour: QColor,
    palette: QPalette,
) -> None:
    """Lay `raw` out in at most `max_lines` lines of `width`, marking `spans`; an ellipsis
    ends text that does not fit."""
    text = display_text(raw)
    metrics = QFontMetricsF(font)
    layout = QTextLayout(text, font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    layout.setTextOption(option)
    ranges = []
    for start, length in utf16_ranges(text, spans):
        r = QTextLayout.FormatRange()
        r.start, r.length = start, length
        fmt = QTextCharFormat()
        fmt.setBackground(palette.color(QPalette.ColorRole.Highlight))
        fmt.setForeground(palette.color(QPalette.ColorRole.HighlightedText))
        r.format = fmt
        ranges.append(r)
    layout.setFormats(ranges)
    layout.beginLayout()
    y = 0.0
    lines: list[QTextLine] = []
    while len(lines) < max_lines:
        tl = layout.createLine()
        if not tl.isValid():
            break
        # The last line leaves room for "…", in case the text goes on after it.
        tl.setLineWidth(width if len(lines) < max_lines - 1 else max(0.0, width - metrics.horizontalAdvance("…")))
        tl.setPosition(QPointF(0, y))
        y += metrics.lineSpacing()
        lines.append(tl)
    layout.endLayout()
    if not lines:
        return
    last = lines[-1]
    cut = last.textStart() + last.textLength() < len(text.encode("utf-16-le")) // 2
    painter.setPen(colour)
    layout.draw(painter, at)
    if cut:
        end = at + QPointF(last.naturalTextWidth(), last.y())
        painter.setFont(font)
        painter.drawText(
            QRectF(end.x(), end.y(), metrics.horizontalAdvance("…") + 2, metrics.lineSpacing()),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
            "…",
        )
