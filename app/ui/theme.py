"""Colours: the light and dark palettes, and the named colours widgets draw with.

Owns: the two palettes Hearth ships (light, dark), following the system's, and the
semantic colours (muted text, error, warning, bubbles, code) derived from whichever
palette a widget has. Widgets ask `colours(self.palette())` instead of writing hex codes,
so a theme switch (a palette change) is all it takes to recolour them.
Must not: create widgets or read settings files (the window passes the choice in).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette

__all__ = ["Colours", "Theme", "colours", "is_dark", "mix", "pygments_style"]


class Theme(enum.StrEnum):
    """What the person chose in Settings."""

    SYSTEM = "system"  # """follow the desktop's light or dark palette"""
    LIGHT = "light"
    DARK = "dark"


@dataclass(frozen=True)
class Colours:
    """The named colours of one palette."""

    text: QColor
    muted: QColor  # role names' metrics lines, hints, reasoning
    heading: QColor  # role names
    error: QColor
    warning: QColor
    success: QColor
    accent: QColor  # links, the busy dot
    user_bubble: QColor
    assistant_bubble: QColor
    code_background: QColor
    code_border: QColor
    quote_bar: QColor


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """`a` moved a fraction `t` of the way to `b`."""
    return QColor(round(a.red() + (b.red() - a.red()) * t), round(a.green() + (b.green() - a.green()) * t),
                  round(a.blue() + (b.blue() - a.blue()) * t))


def colours(palette: QPalette) -> Colours:
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    accent = palette.color(QPalette.ColorRole.Highlight)
    dark = is_dark(palette)
    return Colours(
        text=text,
        muted=mix(text, base, 0.45),
        heading=mix(text, base, 0.2),
        error=QColor("#f87171" if dark else "#c53030"),
        warning=QColor("#fbbf24" if dark else "#975a16"),
        success=QColor("#4ade80" if dark else "#2f855a"),
        accent=QColor("#60a5fa" if dark else "#1d4ed8"),
        user_bubble=mix(base, accent, 0.14 if dark else 0.08),
        assistant_bubble=mix(base, text, 0.06 if dark else 0.03),
        code_background=mix(base, text, 0.1 if dark else 0.045),
        code_border=mix(base, text, 0.2 if dark else 0.12),
        quote_bar=mix(base, text, 0.3),
    )


def pygments_style(palette: QPalette) -> str:
    """The Pygments style that code is highlighted with under this palette."""
    return "monokai" if is_dark(palette) else "default"
