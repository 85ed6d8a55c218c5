"""The model manager's list: a list model over `ModelRow`s and the delegate that draws them.

Each row is two lines: the name, a "● loaded" mark and the memory-fit badge; then size ·
parameters · quantisation · licence and the state ("downloading 40%", "paused at 12% —
Download resumes"), with a thin progress bar under a running download.
Colours come from the view's palette at paint time (app.ui.theme), so a theme switch needs
nothing more than a repaint.
Must not: know where rows come from (they are handed in) or start anything.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from app.core.models.rows import ModelRow
from app.ui.theme import colours, mix, tint

__all__ = ["VERDICT_TONES", "ModelListDelegate", "ModelListModel", "Roles", "badge_colours"]

_Index = QModelIndex | QPersistentModelIndex


class Roles:
    """Custom roles; the view and tests branch on these, never on columns."""

    Id = Qt.ItemDataRole.UserRole + 1
    Facts = Qt.ItemDataRole.UserRole + 2
    State = Qt.ItemDataRole.UserRole + 3
    StateKind = Qt.ItemDataRole.UserRole + 4
    Loaded = Qt.ItemDataRole.UserRole + 5
    Verdict = Qt.ItemDataRole.UserRole + 6
    Badge = Qt.ItemDataRole.UserRole + 7
    Progress = Qt.ItemDataRole.UserRole + 8


# The theme's colour (app.ui.theme.style_names) per verdict: (background tint, text).
# Green, amber, red; red on grey for a file that cannot be read.
VERDICT_TONES = {
    "fits": ("success", "success"),
    "tight": ("warning", "warning"),
    "too_big": ("error", "error"),
    "damaged": ("muted", "error"),
}
_STATE_TONES = {"downloading": "accent", "verifying": "accent", "paused": "warning", "missing": "error"}
_PAD = 8


def badge_colours(palette: QPalette, verdict: str | None) -> tuple[QColor, QColor]:
    """(background, text) of the memory-fit badge under this palette."""
    c = colours(palette)
    background, text = VERDICT_TONES.get(verdict or "", ("muted", "text"))
    return tint(palette, getattr(c, background)), getattr(c, text)


class ModelListModel(QAbstractListModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ModelRow] = []

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return r.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return "\n".join(
                t for t in (r.name, r.facts, r.state + (" · loaded" if r.loaded else ""), r.badge_tip) if t
            )
        return {
            Roles.Id: r.id,
            Roles.Facts: r.facts,
            Roles.State: r.state,
            Roles.StateKind: r.state_kind,
            Roles.Loaded: r.loaded,
            Roles.Verdict: r.verdict,
            Roles.Badge: r.badge,
            Roles.Progress: r.progress,
        }.get(role)

    def set_rows(self, rows: list[ModelRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def update_row(self, row: ModelRow) -> None:
        """One model changed (progress, state, fit): repaint only its line."""
        i = self.row_of(row.id)
        if i >= 0 and self._rows[i] != row:
            self._rows[i] = row
            index = self.index(i)
            self.dataChanged.emit(index, index)

    def row_of(self, model_id: str | None) -> int:
        return next((i for i, r in enumerate(self._rows) if r.id == model_id), -1)


class ModelListDelegate(QStyledItemDelegate):
    """Draws a row from its roles; the style draws the selection and hover background."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        line = QFontMetrics(option.font).height()
        return QSize(320, 2 * line + 3 * _PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        painter.save()
        base = QStyleOptionViewItem(option)
        self.initStyleOption(base, index)
        base.text = ""
        style = option.widget.style() if option.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, base, painter, option.widget)
        rect = option.rect.adjusted(_PAD + 2, _PAD, -_PAD - 2, -_PAD)
        fm = QFontMetrics(option.font)
        line = fm.height()
        top = QRect(rect.left(), rect.top(), rect.width(), line)
        bottom = QRect(rect.left(), rect.top() + line + _PAD // 2, rect.width(), line)

        # Line 1: name on the left; badge, then the loaded mark, on the right.
        right = top.right()
        badge = str(index.data(Roles.Badge) or "")
        c = colours(option.palette)
        if badge:
            bg, fg = badge_colours(option.palette, str(index.data(Roles.Verdict)))
            small = QFont(option.font)
            small.setPointSizeF(max(7.0, option.font.pointSizeF() - 1))
            small.setWeight(QFont.Weight.DemiBold)
            sfm = QFontMetrics(small)
            w = sfm.horizontalAdvance(badge) + 14
            box = QRect(right - w, top.top(), w, line)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(bg)
            painter.drawRoundedRect(box, line / 2, line / 2)
            painter.setFont(small)
            painter.setPen(fg)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, badge)
            right = box.left() - 8
        painter.setFont(option.font)
        if index.data(Roles.Loaded):
            mark = "● loaded"
            w = fm.horizontalAdvance(mark)
            painter.setPen(c.success)
            painter.drawText(QRect(right - w, top.top(), w, line), Qt.AlignmentFlag.AlignVCenter, mark)
            right -= w + 8
        bold = QFont(option.font)
        bold.setWeight(QFont.Weight.DemiBold)
        painter.setFont(bold)
        painter.setPen(c.text)
        name = QFontMetrics(bold).elidedText(
            str(index.data() or ""), Qt.TextElideMode.ElideRight, max(0, right - top.left())
        )
        painter.drawText(QRect(top.left(), top.top(), right - top.left(), line), Qt.AlignmentFlag.AlignVCenter, name)

        # Line 2: facts on the left (elided first), the state on the right. Metrics come from
        # the painter: its device's resolution may differ from the widget's default.
        painter.setFont(option.font)
        fm = painter.fontMetrics()
        state = str(index.data(Roles.State) or "")
        kind = str(index.data(Roles.StateKind) or "")
        state_w = min(fm.horizontalAdvance(state) + 2, bottom.width() * 3 // 5)
        state = fm.elidedText(state, Qt.TextElideMode.ElideRight, state_w)
        painter.setPen(getattr(c, _STATE_TONES.get(kind, "muted")))
        painter.drawText(
            QRect(bottom.right() - state_w, bottom.top(), state_w, line),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            state,
        )
        facts_w = max(0, bottom.width() - state_w - 12)
        painter.setPen(c.muted)
        painter.drawText(
            QRect(bottom.left(), bottom.top(), facts_w, line),
            Qt.AlignmentFlag.AlignVCenter,
            fm.elidedText(str(index.data(Roles.Facts) or ""), Qt.TextElideMode.ElideRight, facts_w),
        )

        progress = index.data(Roles.Progress)
        if isinstance(progress, int) and progress >= 0:
            y = option.rect.bottom() - 3
            track = QRect(rect.left(), y, rect.width(), 3)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(tint(option.palette, c.accent, 0.25))
            painter.drawRect(track)
            painter.setBrush(c.accent)
            painter.drawRect(QRect(track.left(), y, track.width() * progress // 100, 3))
        painter.setPen(QPen(mix(option.palette.color(QPalette.ColorRole.Base), c.text, 0.08)))
        painter.drawLine(option.rect.bottomLeft(), option.rect.bottomRight())
        painter.restore()
