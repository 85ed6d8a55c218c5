"""Untrusted text on its way to a terminal: titles, messages, a model's answer, a model file's metadata.

A terminal obeys the control characters in what it prints: `\\x1b]0;...\\x07` sets its title,
`\\x1b[2J` clears it, OSC 52 writes the clipboard, and a bidi override (U+202E) makes text read
backwards. So on a terminal those characters are shown escaped (`\\x1b`, `\\u202e`); a file, a
pipe and JSON get the exact text. Newline and tab are kept: they are how text is laid out.

Owns: `for_terminal` (the escaping), `for_stream` (escape only where the stream is a terminal),
`json_for_terminal` (the same for a JSON line, which stays valid JSON).
Must not: change text bound for a file or a pipe, or add styling of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TextIO

__all__ = ["for_stream", "for_terminal", "is_terminal", "json_for_terminal"]

# C0 but for tab and newline, DEL, C1 (U+0080-U+009F: 8-bit CSI, OSC and friends), and the bidi
# embeddings, overrides and isolates, which reorder what a person reads.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _json_escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def for_terminal(text: str) -> str:
    """`text` with each control character shown as its escape (`\\x1b`, `\\u202e`); \\n and \\t kept."""
    return _CONTROL.sub(_escaped, text)


def json_for_terminal(line: str) -> str:
    """A JSON text with the control characters that JSON leaves raw (DEL, C1, bidi) written as
    \\uXXXX: the same JSON to a parser, harmless to a terminal. (JSON already escapes C0.)"""
    return _CONTROL.sub(_json_escaped, line)


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):  # replaced by something without a descriptor, or closed
        return False


def _same(text: str) -> str:
    return text


def for_stream(stream: TextIO, *, json: bool = False) -> Callable[[str], str]:
    """What to pass text through before writing it to `stream`: escaping on a terminal, nothing elsewhere."""
    if not is_terminal(stream):
        return _same
    return json_for_terminal if json else for_terminal
