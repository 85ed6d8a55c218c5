"""Syntax colours for code blocks: Pygments tokens turned into QTextCharFormats.

Owns: choosing a lexer from a fence's language (never guessing from the text: guessing runs
every lexer's heuristics over untrusted input) and one cached format per token type and style.
Must not: touch a document; the caller inserts the (text, format) runs it returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.token import _TokenType
from pygments.util import ClassNotFound
from PySide6.QtGui import QColor, QFont, QTextCharFormat

__all__ = ["COMMON_LANGUAGES", "runs", "warm_up"]

# Loading a lexer takes 5-120 ms the first time: warm_up loads these off the UI thread.
COMMON_LANGUAGES = (
    "python",
    "javascript",
    "typescript",
    "bash",
    "json",
    "c",
    "cpp",
    "rust",
    "go",
    "java",
    "html",
    "css",
    "sql",
    "yaml",
    "toml",
    "diff",
    "markdown",
    "shell",
)


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer | None:
    name = language.strip().split()[0].lower() if language.strip() else ""
    if not name:
        return None
    try:
        return get_lexer_by_name(name, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return None


@lru_cache(maxsize=2048)
def _format(style_name: str, token: _TokenType) -> QTextCharFormat:
    styles = get_style_by_name(style_name)
    while not styles.styles_token(token) and token.parent is not None:
        token = token.parent  # a token type made after the style was (YAML's Scalar.Plain)
    style = styles.style_for_token(token)
    fmt = QTextCharFormat()
    if style["color"]:
        fmt.setForeground(QColor(f"#{style['color']}"))
    if style["bold"]:
        fmt.setFontWeight(QFont.Weight.Bold)
    if style["italic"]:
        fmt.setFontItalic(True)
    return fmt


def runs(code: str, language: str, style_name: str) -> Iterator[tuple[str, QTextCharFormat | None]]:
    """(text, colour format or None for plain) runs that together are exactly `code`."""
    lexer = _lexer(language)
    if lexer is None:
        yield code, None
        return
    for token, text in lexer.get_tokens(code):
        yield text, _format(style_name, token)


def warm_up(style_names: tuple[str, ...] = ("default", "monokai")) -> None:
    """Load the common lexers and styles (call it from a worker thread at start-up), so the
    first code block of each language does not stall a frame."""
    for language in COMMON_LANGUAGES:
        for style_name in style_names:
            for _ in runs("x = 1\n", language, style_name):
                pass
