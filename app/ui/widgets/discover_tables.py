"""The Discover tab's two tables: the Hub's search results, and one repo's quantizations with
their memory fit.

Table models over the view-model's values (app.core.models.hub_client.HubRepo, hub_fit.QuantFit).
Everything in them came from the Hub (repo names, licences): item views draw DisplayRole as plain
text, and a tooltip holding any of it is escaped (Qt guesses rich text in tooltips). Views and
tests read the custom roles, not the columns.
Must not: fetch anything or decide what fits (app.core.models.hub_fit does).
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QWidget

from app.core.models.hub_client import HubRepo
from app.core.models.hub_fit import QuantFit
from app.ui.theme import colours
from engine.fit import Verdict

__all__ = [
    "QuantRoles",
    "QuantsModel",
    "ResultRoles",
    "ResultsModel",
    "compact",
    "day_of",
    "plain_tooltip",
    "size_text",
]

_Index = QModelIndex | QPersistentModelIndex
_VERDICT_WORDS = {Verdict.FITS: "Fits", Verdict.TIGHT: "Tight", Verdict.TOO_BIG: "Does not fit"}
_VERDICT_TONES = {Verdict.FITS: "success", Verdict.TIGHT: "warning", Verdict.TOO_BIG: "error"}


class ResultRoles:
    Repo = Qt.ItemDataRole.UserRole + 1  # "OWNER/REPO"


class QuantRoles:
    Quant = Qt.ItemDataRole.UserRole + 1  # "Q4_K_M"
    Verdict = Qt.ItemDataRole.UserRole + 2  # "fits" | "tight" | "too_big"
    Recommended = Qt.ItemDataRole.UserRole + 3  # bool


def plain_tooltip(text: str) -> str:
    """`text` as a tooltip that shows it as written (Qt would read a tag in it as rich text)."""
    return "<p style='white-space:pre-wrap'>" + html.escape(text) + "</p>"


def compact(n: int) -> str:
    """52,000 -> "52k"; 1,250,000 -> "1.2M" (a search list's counts, as the Hub shows them)."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 10_000:
        return f"{n // 1000}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return str(n)


def day_of(iso: str | None) -> str:
    """The date part of the Hub's ISO 8601 time ("2026-01-01"), or "—"."""
    if not iso or len(iso) < 10 or not iso[:4].isdigit():
        return "—"
    return iso[:10]


def size_text(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


class ResultsModel(QAbstractTableModel):
    """Search results: Repo, Author, Downloads, Likes, Licence, Updated."""

    HEADERS = ("Repo", "Author", "Downloads", "Likes", "Licence", "Updated")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[HubRepo] = []

    def set_rows(self, rows: list[HubRepo]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def repo_at(self, row: int) -> HubRepo | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, repo: str | None) -> int:
        return next((i for i, r in enumerate(self._rows) if r.repo == repo), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        r = self.repo_at(index.row()) if index.isValid() else None
        if r is None:
            return None
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            name = r.repo.partition("/")[2] or r.repo
            gated = " · gated" if r.gated else ""
            return (
                name + gated,
                r.author,
                compact(r.downloads),
                compact(r.likes),
                r.license or "—",
                day_of(r.last_modified),
            )[col]
        if role == ResultRoles.Repo:
            return r.repo
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (2, 3):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{r.repo}, {r.downloads:,} downloads, {r.likes:,} likes" + (", gated" if r.gated else "")
        return None


class QuantsModel(QAbstractTableModel):
    """One repo's quantizations: Quantization, Size, Fit, Memory (RAM, and VRAM with offload)."""

    HEADERS = ("Quantization", "Size", "Fit", "Memory")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[QuantFit] = []
        self._recommended: str | None = None
        self._widget = parent

    def set_rows(self, rows: list[QuantFit], recommended: str | None) -> None:
        same = [f.quant.quant for f in rows] == [f.quant.quant for f in self._rows]
        if same:  # a new fit for the same list (after a header read): keep the selection
            self._rows, self._recommended = list(rows), recommended
            if rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(self.HEADERS) - 1))
            return
        self.beginResetModel()
        self._rows, self._recommended = list(rows), recommended
        self.endResetModel()

    def quant_at(self, row: int) -> str | None:
        return self._rows[row].quant.quant if 0 <= row < len(self._rows) else None

    def row_of(self, quant: str | None) -> int:
        return next((i for i, f in enumerate(self._rows) if f.quant.quant == quant), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        f, col = self._rows[index.row()], index.column()
        recommended = f.quant.quant == self._recommended
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return f.quant.quant + ("  ★ recommended" if recommended else "")
            if col == 1:
                return size_text(f.quant.size) + (f" ({len(f.quant.files)} parts)" if f.quant.split else "")
            if col == 2:
                return _VERDICT_WORDS[f.verdict] + (" (rough)" if f.basis == "size" else "")
            return _memory_text(f)
        if role == QuantRoles.Quant:
            return f.quant.quant
        if role == QuantRoles.Verdict:
            return f.verdict.value
        if role == QuantRoles.Recommended:
            return recommended
        if role == Qt.ItemDataRole.ForegroundRole and col == 2 and self._widget is not None:
            return QColor(getattr(colours(self._widget.palette()), _VERDICT_TONES[f.verdict]))
        if role == Qt.ItemDataRole.FontRole and recommended and col == 0:
            font = QFont()
            font.setWeight(QFont.Weight.DemiBold)
            return font
        if role == Qt.ItemDataRole.ToolTipRole and col in (2, 3):
            return plain_tooltip(f.message)  # it may name a quantization by its file's name
        return None


def _memory_text(f: QuantFit) -> str:
    ram = f"RAM {f.needed_bytes / 1e9:.1f} GB"
    if f.gpu_layers > 0:
        return f"{ram} · GPU: {f.gpu_layers} layers"
    return ram
