"""Passages of a document for search: `chunk(extracted, target_chars=1000, overlap_chars=150)`.

By structure first: a passage never crosses a section (a PDF page, a heading, a code block's
edge), so each knows its page or heading. Neighbouring sections under the same page and heading
are packed together while they fit (a heading with its short paragraph and code block is one
passage, and the code block stays whole). A section too long for one passage is cut, preferring,
within the second half of the window: a blank line (a paragraph's end), then a sentence's end,
then a line break, then a space; code and tables are cut on line breaks first. Passages cut from
one section overlap by up to `overlap_chars`, starting on a word.

The contract (pinned by a property test): every non-blank character of the text is in a passage;
passages are in order; `text[start:end] == passage.text`; no passage is longer than
`target_chars` (the margin is zero: a cut is always found inside the window, by force if the text
has no space at all). Passages do not start or end with white space.

Owns: cutting text into passages. Must not: change the text (offsets must point into it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.documents.extract import Extracted, Section

__all__ = ["Chunk", "chunk"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage: `text == Extracted.text[start:end]`, with its page (1-based) or heading."""

    text: str
    start: int
    end: int
    page: int | None = None
    heading: str | None = None


_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*(?=\s)")
_SPACE = re.compile(r"\s")


def chunk(extracted: Extracted, *, target_chars: int = 1000, overlap_chars: int = 150) -> list[Chunk]:
    """The passages of `extracted`, in order."""
    if target_chars < 20:
        raise ValueError("target_chars must be at least 20")
    if not 0 <= overlap_chars <= target_chars // 4:
        raise ValueError("overlap_chars must be between 0 and a quarter of target_chars")
    text = extracted.text
    out: list[Chunk] = []
    pack: list[Section] = []

    def flush() -> None:
        if pack:
            start, end = _trim(text, pack[0].start, pack[-1].end)
            if start < end:
                out.append(Chunk(text[start:end], start, end, pack[0].page, pack[0].heading))
            pack.clear()

    for section in extracted.sections:
        start, end = _trim(text, section.start, section.end)
        if start >= end:
            continue
        same_place = pack and (pack[-1].page, pack[-1].heading) == (section.page, section.heading)
        if same_place and end - _trim(text, pack[0].start, pack[0].end)[0] <= target_chars:
            pack.append(section)
            continue
        flush()
        if end - start <= target_chars:
            pack.append(section)
            continue
        for a, b in _split(text, start, end, section.kind != "prose", target_chars, overlap_chars):
            out.append(Chunk(text[a:b], a, b, section.page, section.heading))
    flush()
    return out


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _split(text: str, start: int, end: int, by_lines: bool, target: int, overlap: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        if end - pos <= target:
            spans.append((pos, end))
            break
        cut = _cut(text, pos, pos + target, by_lines)
        a, b = _trim(text, pos, cut)
        spans.append((a, b))
        nxt = cut
        if overlap:
            space = _SPACE.search(text, max(pos + 1, cut - overlap), cut)
            if space is not None:
                nxt = space.end()
        pos = _trim(text, nxt, end)[0]
    return spans


def _cut(text: str, lo: int, hi: int, by_lines: bool) -> int:
    """Where to end a passage that starts at `lo` and may run to `hi`: the best boundary in the
    second half of the window; the text before it is never blank (lo is not white space)."""
    half = lo + (hi - lo) // 2
    if by_lines:
        line = text.rfind("\n", half, hi)
        if line > lo:
            return line + 1
    paragraph = text.rfind("\n\n", half, hi)
    if paragraph > lo:
        return paragraph
    last_sentence = None
    for m in _SENTENCE_END.finditer(text, half, hi):
        last_sentence = m
    if last_sentence is not None:
        return last_sentence.end()
    line = text.rfind("\n", half, hi)
    if line > lo:
        return line + 1
    for i in range(hi - 1, half - 1, -1):
        if text[i].isspace():
            return i + 1 if i > lo else hi
    return hi  # no space in half a passage (a long URL, a table with no breaks): cut by force
