"""Colours: the light and dark palettes, and the named colours widgets draw with.

Owns: the two palettes Hearth ships (light, dark), following the system's, putting one of
them on the application (`apply_theme`, with the Fusion style, so a palette looks the same
on every OS), and the semantic colours (muted text, error, warning, bubbles, code) derived
from whichever palette a widget has. Widgets ask `colours(self.palette())` at paint time,
or give their style sheet to `set_style` with `$muted`-style names, instead of writing hex
codes, so a theme switch (a palette change) is all it takes to recolour them.
Must not: create widgets or read settings files (the window passes the choice in).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from string import Template

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QProxyStyle, QStyle, QStyleOption, QWidget

__all__ = [
    "SERIES_COLOURS",
    "Colours",
    "Theme",
    "apply_theme",
    "colours",
    "current_theme",
    "indicator_outline",
    "is_dark",
    "mix",
    "palette_for",
    "pygments_style",
    "refresh_styles",
    "set_style",
    "style_names",
    "tint",
]


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


# Lines of a plot, one per model (the Statistics view): distinct on the light and the dark palette
# alike, and readable with colour blindness (Okabe and Ito's palette).
SERIES_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """`a` moved a fraction `t` of the way to `b`."""
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


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


def tint(palette: QPalette, colour: QColor, amount: float = 0.14) -> QColor:
    """A background that carries `colour` faintly: the palette's base moved `amount` towards it
    (badges, message strips, the selected row)."""
    return mix(palette.color(QPalette.ColorRole.Base), colour, amount)


# -- the palettes ------------------------------------------------------------------------
_R = QPalette.ColorRole

# Every role a widget may ask for, in both groups that matter; Inactive is Active.
_LIGHT = {
    _R.Window: "#f4f5f7",
    _R.WindowText: "#1d2025",
    _R.Base: "#ffffff",
    _R.AlternateBase: "#f5f6f8",
    _R.Text: "#1d2025",
    _R.PlaceholderText: "#6b7280",
    _R.Button: "#f7f8fa",
    _R.ButtonText: "#1d2025",
    _R.BrightText: "#ffffff",
    _R.Light: "#ffffff",
    _R.Midlight: "#e6e8eb",
    _R.Mid: "#c2c6cc",
    _R.Dark: "#8f959d",
    _R.Shadow: "#5b6068",
    _R.Highlight: "#2f6fde",
    _R.HighlightedText: "#ffffff",
    _R.Accent: "#2f6fde",
    _R.Link: "#1d4ed8",
    _R.LinkVisited: "#6d28d9",
    _R.ToolTipBase: "#ffffff",
    _R.ToolTipText: "#1d2025",
}
_LIGHT_DISABLED = {
    _R.WindowText: "#9aa0a8",
    _R.Text: "#9aa0a8",
    _R.ButtonText: "#9aa0a8",
    _R.PlaceholderText: "#b4b9c0",
    _R.Base: "#f4f5f7",
    _R.Button: "#eef0f2",
    _R.Highlight: "#c9cdd3",
    _R.HighlightedText: "#ffffff",
    _R.Accent: "#c9cdd3",
    _R.Link: "#9aa0a8",
}
_DARK = {
    _R.Window: "#25262a",
    _R.WindowText: "#e3e4e8",
    _R.Base: "#1b1c1f",
    _R.AlternateBase: "#222327",
    _R.Text: "#e3e4e8",
    _R.PlaceholderText: "#8d9098",
    _R.Button: "#303136",
    _R.ButtonText: "#e3e4e8",
    _R.BrightText: "#ff7b72",
    _R.Light: "#45474d",
    _R.Midlight: "#3a3b40",
    _R.Mid: "#55575e",
    _R.Dark: "#151618",
    _R.Shadow: "#0b0b0d",
    _R.Highlight: "#3d6fd6",
    _R.HighlightedText: "#ffffff",
    _R.Accent: "#3d6fd6",
    _R.Link: "#7cacf8",
    _R.LinkVisited: "#c09cf7",
    _R.ToolTipBase: "#34353a",
    _R.ToolTipText: "#e3e4e8",
}
_DARK_DISABLED = {
    _R.WindowText: "#74767d",
    _R.Text: "#74767d",
    _R.ButtonText: "#74767d",
    _R.PlaceholderText: "#5d5f66",
    _R.Base: "#202124",
    _R.Button: "#2a2b2f",
    _R.Highlight: "#3e4046",
    _R.HighlightedText: "#a3a5ab",
    _R.Accent: "#3e4046",
    _R.Link: "#74767d",
}


def _palette(active: dict[QPalette.ColorRole, str], disabled: dict[QPalette.ColorRole, str]) -> QPalette:
    palette = QPalette()
    for role, value in active.items():
        palette.setColor(role, QColor(value))  # every group
    for role, value in disabled.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(value))
    return palette


def palette_for(theme: Theme, system: QPalette) -> QPalette:
    """The palette a theme shows: Hearth's light or dark one, or `system` (the platform's) as is."""
    if theme is Theme.DARK:
        return _palette(_DARK, _DARK_DISABLED)
    if theme is Theme.LIGHT:
        return _palette(_LIGHT, _LIGHT_DISABLED)
    return QPalette(system)


# Fusion draws a radio button's or a check box's outline 40% darker than the palette's Window
# colour: on a dark window that is near black on near black (1.2:1). In a dark palette they are
# drawn with an outline between the window's colour and the text's instead, which stands out
# (3:1 or more, what WCAG asks of a control's parts).
_INDICATORS = (QStyle.PrimitiveElement.PE_IndicatorRadioButton, QStyle.PrimitiveElement.PE_IndicatorCheckBox)
_FUSION_OUTLINE = 140  # Fusion's outline is the Window colour .darker(140)


def indicator_outline(palette: QPalette) -> QColor:
    """The outline radio buttons and check boxes get under a dark `palette`."""
    return mix(palette.color(QPalette.ColorRole.Window), palette.color(QPalette.ColorRole.WindowText), 0.55)


class _Style(QProxyStyle):
    """Fusion, with radio buttons and check boxes outlined so that they can be seen on a dark window."""

    def __init__(self) -> None:
        super().__init__("Fusion")
        self.setObjectName("hearthStyle")

    def drawPrimitive(
        self, element: QStyle.PrimitiveElement, option: QStyleOption, painter: QPainter, widget: QWidget | None = None
    ) -> None:
        if element in _INDICATORS and is_dark(option.palette):
            option = type(option)(option)  # the caller's is not ours to change
            palette = QPalette(option.palette)
            palette.setColor(QPalette.ColorRole.Window, indicator_outline(palette).lighter(_FUSION_OUTLINE))
            option.palette = palette
        super().drawPrimitive(element, option, painter, widget)


class _Keeper(QObject):
    """The application's theme: which one is chosen, the platform's own palette, and following
    the desktop's light/dark switch while SYSTEM is chosen. One per application, its child."""

    def __init__(self, app: QApplication) -> None:
        super().__init__(app)
        self.setObjectName("hearthTheme")
        self.app = app
        self.theme = Theme.SYSTEM
        self.system = QPalette(app.palette())  # before Hearth sets one: the platform's
        # Qt updates the palette it owns itself; wait for that before restyling.
        app.styleHints().colorSchemeChanged.connect(lambda _scheme: QTimer.singleShot(0, self.follow_desktop))

    def follow_desktop(self) -> None:
        if self.theme is not Theme.SYSTEM:
            return
        if self.app.palette().resolveMask() == 0:  # Qt's (the platform's) palette, as the desktop has it now
            self.system = QPalette(self.app.palette())
        self.apply(Theme.SYSTEM)

    def apply(self, theme: Theme) -> None:
        self.theme = theme
        if theme is Theme.SYSTEM and not self._platform_lacks_dark():
            # An empty palette gives the application back Qt's own, which follows the desktop live.
            self.app.setPalette(QPalette())
        else:
            self.app.setPalette(palette_for(Theme.DARK if theme is Theme.SYSTEM else theme, self.system))
        # Qt posts the change to the windows; deliver it now, so that every widget has its new
        # palette (and has had its PaletteChange) before style sheets are resolved against it.
        QApplication.sendPostedEvents(None, QEvent.Type.ApplicationPaletteChange.value)
        refresh_styles(self.app)

    def _desktop_is_dark(self) -> bool:
        return self.app.styleHints().colorScheme() == Qt.ColorScheme.Dark

    def _platform_lacks_dark(self) -> bool:
        """The desktop says dark but the platform's palette is light (no dark palette offered)."""
        return self._desktop_is_dark() and not is_dark(self.system)


def _keeper(app: QApplication) -> _Keeper:
    found = app.findChild(_Keeper, "hearthTheme")
    return found if isinstance(found, _Keeper) else _Keeper(app)


def apply_theme(app: QApplication, theme: Theme) -> None:
    """Put `theme` on the whole application: the Fusion style (in a dark palette, radio buttons
    and check boxes outlined as `indicator_outline` says) and the theme's palette.

    Before it returns, every widget whose palette changed has had its PaletteChange event
    (widgets that cache colours recompute them there), and style sheets made with `set_style`
    or naming `palette(...)` roles are resolved again. With SYSTEM, a later light/dark switch
    of the desktop is followed the same way."""
    if not isinstance(app.style(), _Style):  # a new style re-polishes every widget: only once
        app.setStyle(_Style())
    _keeper(app).apply(theme)


def current_theme(app: QApplication) -> Theme:
    """What `apply_theme` last put on `app` (SYSTEM before it was called)."""
    found = app.findChild(_Keeper, "hearthTheme")
    return found.theme if isinstance(found, _Keeper) else Theme.SYSTEM


# -- style sheets ------------------------------------------------------------------------
_STYLE_PROPERTY = "hearthStyle"  # the template set_style was given, kept on the widget
_TONES = ("error", "warning", "success", "accent", "muted")


def style_names(palette: QPalette) -> dict[str, str]:
    """The names a `set_style` template may use, as colour names (#rrggbb): every Colours field
    (`$text`, `$muted`, `$error`...), `$<tone>_tint` (a faint background of that tone) and
    `$<tone>_line` (a border) for error, warning, success, accent and muted, and `$base`,
    `$window`, `$hover` and `$selected` (a list row under the pointer, the chosen one)."""
    c = colours(palette)
    names = {f.name: getattr(c, f.name).name() for f in fields(c)}
    base = palette.color(QPalette.ColorRole.Base)
    for tone in _TONES:
        colour: QColor = getattr(c, tone)
        names[f"{tone}_tint"] = tint(palette, colour).name()
        names[f"{tone}_line"] = mix(base, colour, 0.45).name()
    names["base"] = base.name()
    names["window"] = palette.color(QPalette.ColorRole.Window).name()
    names["hover"] = mix(base, c.text, 0.12 if is_dark(palette) else 0.07).name()
    names["selected"] = tint(palette, c.accent, 0.3 if is_dark(palette) else 0.18).name()
    return names


def _theme_palette(widget: QWidget) -> QPalette:
    # The application's palette (what apply_theme set), not widget.palette(): a style sheet's
    # `color:` rewrites the widget's own text roles, and deriving from them would drift.
    return QApplication.palette(widget)


def set_style(widget: QWidget, template: str) -> None:
    """`widget.setStyleSheet(template)` with `$muted`, `$error_tint`... (see `style_names`) filled
    in from the theme's palette, and filled in again whenever `apply_theme` changes it."""
    widget.setProperty(_STYLE_PROPERTY, template)
    sheet = _render(widget, template)
    if widget.styleSheet() != sheet:  # restyling is not free
        widget.setStyleSheet(sheet)


def _render(widget: QWidget, template: str) -> str:
    return Template(template).substitute(style_names(_theme_palette(widget)))


def refresh_styles(app: QApplication) -> None:
    """Set every style sheet again after a palette change. Qt gives a widget with a style sheet
    (even one that names no colour: a padding, a bold label) the palette of the moment the
    sheet was set, and keeps it; it reads `palette(mid)` in a sheet then too; and a
    `set_style` template names colours of the old palette."""
    if app.styleSheet():
        app.setStyleSheet(app.styleSheet())
    for widget in app.allWidgets():
        template = widget.property(_STYLE_PROPERTY)
        if isinstance(template, str):
            widget.setStyleSheet(_render(widget, template))  # even when unchanged: see above
        elif widget.styleSheet():
            widget.setStyleSheet(widget.styleSheet())
