"""Text files: their bytes decoded, and their structure (headings, code blocks, a CSV's header).

Decoding: UTF-8 (a BOM is dropped), UTF-16 or UTF-32 when a BOM says so; otherwise mostly-UTF-8
text with a few bad bytes keeps UTF-8 with those bytes replaced (U+FFFD), and anything else is
read as Windows-1252 (what most non-UTF-8 Western text is; every byte maps, so it never fails).
Either fallback is said in a note. Binary under a text name (a NUL byte, or more than 10% control
characters in the first 8 KB) is Skipped as binary.

The text is kept as written: offsets into it are offsets into what the person wrote (a Markdown
heading keeps its `#`s). Text that looks like a chat template's control tokens is data like any
other: escaping it for the model is the prompt builder's job.

Owns: decoding and the structure of text, Markdown, reStructuredText, CSV and code. Must not:
read more than the cap (a file is read in the caller's process), or parse rich formats.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

from app.core.documents.extract import Extracted, Limits, Section, SectionKind, Skipped, skip_for_os_error
from app.core.documents.formats import Kind

__all__ = ["decode", "read_text_file", "structure"]

_SNIFF_BYTES = 8192
_CONTROL = frozenset(range(32)) - {9, 10, 12, 13, 27} | {127}  # tab, newlines, form feed, ESC are text
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16: it starts with UTF-16's LE BOM
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def read_text_file(path: Path, kind: Kind, limits: Limits) -> Extracted | Skipped:
    """Read, decode and structure one text file; at most 4 bytes per kept character are read."""
    cap_bytes = limits.max_text_chars * 4 + 4
    try:
        with open(path, "rb") as f:
            data = f.read(cap_bytes + 1)
    except OSError as e:
        return skip_for_os_error(path, e)
    cut = len(data) > cap_bytes
    return text_document(data[:cap_bytes], kind, path.name, limits, cut=cut)


def text_document(data: bytes, kind: Kind, name: str, limits: Limits, *, cut: bool = False) -> Extracted | Skipped:
    """The Extracted for the bytes of a text file (also what a gzip holds, in the child)."""
    decoded = decode(data, name)
    if isinstance(decoded, Skipped):
        return decoded
    text, notes = decoded
    if cut or len(text) > limits.max_text_chars:  # cut before the structure is read: it costs per character
        text, notes = text[: limits.max_text_chars], (*notes, _cut_note(limits))
    if not text.strip():
        return Skipped("empty", f"{name} holds only white space; there is nothing to index.")
    return Extracted(text, structure(text, kind), notes, truncated=len(notes) > len(decoded[1]))


def _cut_note(limits: Limits) -> str:
    return f"Only the first {limits.max_text_chars:,} characters were indexed; the rest of the file was left out."


def decode(data: bytes, name: str) -> tuple[str, tuple[str, ...]] | Skipped:
    """The text of `data` and notes on how it was decoded, or Skipped binary."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data[len(bom) :].decode(encoding, errors="replace")
            return _normalise(text), (
                () if encoding == "utf-8" else (f"Read as {encoding.upper()} (by its byte order mark).",)
            )
    head = data[:_SNIFF_BYTES]
    if b"\x00" in head or sum(b in _CONTROL for b in head) > len(head) // 10:
        return Skipped(
            "binary", f"{name} is not text (it holds binary data) although its name says it is; it is not read."
        )
    try:
        return _normalise(data.decode("utf-8")), ()
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good_multibyte = sum(1 for ch in text if ord(ch) > 127 and ch != "\ufffd")
    if good_multibyte > 4 * bad:  # UTF-8 with a few broken bytes: keep what is right
        return _normalise(text), (f"{bad:,} bytes that are not valid UTF-8 were replaced with �.",)
    return _normalise(data.decode("cp1252", errors="replace")), ("Read as Windows-1252: the file is not UTF-8.",)


def _normalise(text: str) -> str:
    # One newline convention, so offsets and paragraph breaks mean the same in every file.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def structure(text: str, kind: Kind) -> tuple[Section, ...]:
    """Sections covering `text` end to end, by kind."""
    if kind == "markdown":
        return _markdown(text)
    if kind == "rst":
        return _rst(text)
    if kind == "csv":
        return (Section(0, len(text), "table", heading=_csv_header(text)),)
    if kind == "code":
        return (Section(0, len(text), "code"),)
    return (Section(0, len(text), "prose"),)


class _Sections:
    """Builds sections over a text already written, from boundaries met in order."""

    def __init__(self, length: int) -> None:
        self._length = length
        self._out: list[Section] = []
        self._start = 0
        self._kind: SectionKind = "prose"
        self._heading: str | None = None

    def boundary(self, at: int, kind: SectionKind, heading: str | None) -> None:
        if at > self._start:
            self._out.append(Section(self._start, at, self._kind, heading=self._heading))
        self._start, self._kind, self._heading = at, kind, heading

    def heading(self, at: int, heading: str) -> None:
        self.boundary(at, "prose", heading)

    def code(self, start: int, end: int) -> None:
        heading = self._heading
        self.boundary(start, "code", heading)
        self.boundary(end, "prose", heading)

    def done(self) -> tuple[Section, ...]:
        self.boundary(self._length, "prose", None)
        return tuple(self._out)


_LINE = re.compile(r".*(?:\n|$)")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*\n?$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*\n?$")


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line with its newline) for each line; no empty last line."""
    return [(m.start(), m.group()) for m in _LINE.finditer(text) if m.group()]


def _markdown(text: str) -> tuple[Section, ...]:
    out = _Sections(len(text))
    lines = _lines(text)
    i = 0
    prev_blank = True
    while i < len(lines):
        at, line = lines[i]
        fence = _FENCE.match(line)
        if fence:  # a fenced block runs to its closing fence (or the end)
            marker = fence.group(1)
            j = i + 1
            while j < len(lines) and not lines[j][1].lstrip().startswith(marker):
                j += 1
            end = lines[j][0] + len(lines[j][1]) if j < len(lines) else len(text)
            out.code(at, end)
            i, prev_blank = j + 1, False
            continue
        if prev_blank and line.startswith(("    ", "\t")) and line.strip():  # an indented code block
            j = i
            while j < len(lines) and (lines[j][1].startswith(("    ", "\t")) or not lines[j][1].strip()):
                j += 1
            while j > i and not lines[j - 1][1].strip():
                j -= 1
            out.code(at, lines[j - 1][0] + len(lines[j - 1][1]))
            i, prev_blank = j, False
            continue
        atx = _ATX.match(line)
        if atx:
            out.heading(at, (atx.group(2) or "").strip())
        elif (  # a paragraph line underlined with === or ---
            line.strip()
            and not line.lstrip().startswith(("-", "*", "+", ">", "|"))
            and i + 1 < len(lines)
            and _SETEXT.match(lines[i + 1][1])
        ):
            out.heading(at, line.strip())
            i += 1
        prev_blank = not line.strip()
        i += 1
    return out.done()


_RST_ADORN = re.compile(r"([=\-~^\"'`#*+:._])\1{2,}[ \t]*\n?$")
_RST_CODE_DIRECTIVE = re.compile(r"\s*\.\. (?:code-block|code|sourcecode)::")


def _rst(text: str) -> tuple[Section, ...]:
    out = _Sections(len(text))
    lines = _lines(text)
    i = 0
    while i < len(lines):
        at, line = lines[i]
        nxt = lines[i + 1][1] if i + 1 < len(lines) else ""
        title = line.strip()
        if title and not _RST_ADORN.match(line) and _RST_ADORN.match(nxt) and len(nxt.strip()) >= len(title):
            start = lines[i - 1][0] if i > 0 and _RST_ADORN.match(lines[i - 1][1]) else at  # an overline too
            out.heading(start, title)
            i += 2
            continue
        if _RST_CODE_DIRECTIVE.match(line) or (line.rstrip().endswith("::") and not line.lstrip().startswith("..")):
            j = i + 1
            while j < len(lines) and not lines[j][1].strip():
                j += 1
            k = j
            while k < len(lines) and (lines[k][1].startswith((" ", "\t")) or not lines[k][1].strip()):
                k += 1
            while k > j and not lines[k - 1][1].strip():
                k -= 1
            if k > j:
                out.code(lines[j][0], lines[k - 1][0] + len(lines[k - 1][1]))
                i = k
                continue
        i += 1
    return out.done()


def _csv_header(text: str) -> str | None:
    """The header row, as "a | b | c", remembered as the heading of every passage of the table."""
    first = text.split("\n", 1)[0]
    if not first.strip():
        return None
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        row = next(csv.reader(io.StringIO(first), dialect))
    except (csv.Error, StopIteration):
        return first.strip()[:200]
    return " | ".join(cell.strip() for cell in row)[:200] or None
