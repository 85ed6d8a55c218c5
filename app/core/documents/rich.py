"""PDF, DOCX, HTML and gzip: parsed by their libraries, only ever inside the extraction child.

- PDF (pypdf): page by page, one section per page; an encrypted file is tried with the empty
  password (many "protected" PDFs only forbid printing) and skipped if that fails; a PDF with no
  text on any page is skipped as no_text (Hearth does no OCR). A long PDF stops at a soft deadline
  (80% of the time limit) with the pages read so far, said in a note, rather than losing them all.
- DOCX (python-docx): paragraphs, heading styles, tables in document order. Before python-docx reads
  a byte, the zip's directory is checked: a DOCX that would expand past `max_unpacked_bytes` (a zip
  bomb) is too_large at once. zipfile never inflates a member past its declared size, so a lying
  directory cannot get past the check (the member then fails its CRC: damaged).
- HTML (selectolax/lexbor): visible text only (no script, style, template, head), h1-h6 as headings,
  <pre> as code, tables as rows of cells joined by " | ".
- gzip: inflated through `gzip` with a cap (a bomb stops at `max_unpacked_bytes`: too_large), then
  read as the text kind its inner name says (notes.md.gz is Markdown).

Owns: those four parsers. Must not: run in the app's process (extract.py sends them to the child).
"""

from __future__ import annotations

import gzip
import time
import zipfile
import zlib
from pathlib import Path

from app.core.documents.extract import Extracted, Limits, Section, SectionKind, Skipped, cap_text
from app.core.documents.formats import Kind, inner_kind
from app.core.documents.plain import decode, text_document

__all__ = ["extract_rich"]

_SOFT_DEADLINE = 0.8  # of Limits.time_s: past it a PDF returns the pages it has
_MAX_ZIP_MEMBERS = 10_000


def extract_rich(path: Path, kind: Kind, limits: Limits, started: float) -> Extracted | Skipped:
    """The child's work for one file; exceptions are the caller's to turn into Skipped damaged."""
    if kind == "pdf":
        return _pdf(path, limits, started + _SOFT_DEADLINE * limits.time_s)
    if kind == "docx":
        return _docx(path, limits)
    if kind == "html":
        with open(path, "rb") as f:
            data = f.read(limits.max_text_chars * 4 + 4)
        return _html_bytes(data, path.name, limits)
    if kind == "gzip":
        return _gzip(path, limits)
    raise ValueError(f"not a kind for the child: {kind}")


class _Builder:
    """Text and sections built together; a part with the same kind, page and heading as the last
    one extends its section. Stops taking text past the cap (and remembers it did)."""

    def __init__(self, max_chars: int) -> None:
        self._parts: list[str] = []
        self._sections: list[Section] = []
        self._length = 0
        self._max = max_chars
        self.full = False

    def add(
        self, text: str, kind: SectionKind = "prose", *, page: int | None = None, heading: str | None = None
    ) -> None:
        text = text.strip("\n")
        if not text.strip() or self.full:
            return
        sep = "\n\n" if self._parts else ""
        start = self._length + len(sep)
        self._parts.append(sep + text)
        self._length = start + len(text)
        last = self._sections[-1] if self._sections else None
        if last is not None and (last.kind, last.page, last.heading) == (kind, page, heading):
            self._sections[-1] = Section(last.start, self._length, kind, page, heading)
        else:
            if last is not None:  # the separator belongs to the section before, so sections tile the text
                self._sections[-1] = Section(last.start, start, last.kind, last.page, last.heading)
            self._sections.append(Section(start, self._length, kind, page, heading))
        self.full = self._length >= self._max

    def build(self, limits: Limits, notes: tuple[str, ...] = ()) -> Extracted:
        extracted = Extracted("".join(self._parts), tuple(self._sections), notes)
        return cap_text(
            extracted,
            limits.max_text_chars,
            f"Only the first {limits.max_text_chars:,} characters were indexed; the rest was left out.",
        )


def _pdf(path: Path, limits: Limits, soft_deadline: float) -> Extracted | Skipped:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except (DependencyError, NotImplementedError, FileNotDecryptedError):
                opened = False
            if not opened:
                return Skipped(
                    "encrypted",
                    f"{path.name} is protected by a password; save a copy without one (File › Print › Save "
                    "as PDF) and add that.",
                )
        pages = reader.pages
        count = len(pages)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        return _damaged(path, "PDF", e)
    out = _Builder(limits.max_text_chars)
    notes: list[str] = []
    failed = 0
    for i in range(count):
        if time.monotonic() > soft_deadline:
            notes.append(f"Only pages 1–{i} of {count} were read: the rest took too long.")
            break
        try:
            text = pages[i].extract_text()
        except Exception:  # noqa: BLE001 - one bad page (any error pypdf raises) costs that page only
            failed += 1
            continue
        out.add(text, page=i + 1)
        if out.full:
            break
    if failed:
        notes.append(f"{failed} of {count} pages could not be read.")
    extracted = out.build(limits, tuple(notes))
    if not extracted.text.strip():
        if failed == count and count:
            return Skipped(
                "damaged",
                f"{path.name} could not be read: none of its {count} pages opened. It may be damaged; "
                "try saving it again.",
            )
        return Skipped(
            "no_text", f"{path.name} has no text layer (its pages are images); Hearth does not read text from images."
        )
    return extracted


def _docx(path: Path, limits: Limits) -> Extracted | Skipped:
    try:
        with zipfile.ZipFile(path) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        return _damaged(path, "Word document", e)
    unpacked = sum(m.file_size for m in members)
    if len(members) > _MAX_ZIP_MEMBERS or unpacked > limits.max_unpacked_bytes:
        return Skipped(
            "too_large",
            f"{path.name} would expand to {unpacked / (1 << 20):,.0f} MB in {len(members):,} parts, "
            f"over the {limits.max_unpacked_bytes >> 20} MB limit; it is not read (it may be a zip bomb).",
        )

    import docx
    from docx.table import Table

    try:
        document = docx.Document(str(path))
    except zlib.error as e:
        _raise_if_out_of_memory(e)
        return _damaged(path, "Word document", e)
    except Exception as e:  # noqa: BLE001 - lxml's and python-docx's errors for a broken part
        _raise_if_out_of_memory(e)
        return _damaged(path, "Word document", e)
    out = _Builder(limits.max_text_chars)
    heading: str | None = None
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            rows = (" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows)
            out.add("\n".join(rows), "table", heading=heading)
        else:
            style = (block.style.name or "") if block.style is not None else ""
            text = block.text
            if style.startswith("Heading") or style == "Title":
                heading = text.strip() or heading
                out.add(text, heading=heading)
            elif "Code" in style or "Preformatted" in style:
                out.add(text, "code", heading=heading)
            else:
                out.add(text, heading=heading)
        if out.full:
            break
    extracted = out.build(limits)
    if not extracted.text.strip():
        return Skipped(
            "no_text", f"{path.name} has no text (only images or empty pages); Hearth does not read text from images."
        )
    return extracted


_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = frozenset(
    {"p", "div", "section", "article", "main", "aside", "header", "footer", "nav", "li", "ul", "ol", "dl", "dt", "dd",
     "blockquote", "figure", "figcaption", "form", "fieldset", "address", "hr", "br", "tr", "body", "html"}
)  # fmt: skip


def _html_bytes(data: bytes, name: str, limits: Limits) -> Extracted | Skipped:
    decoded = decode(data, name)
    if isinstance(decoded, Skipped):
        return decoded
    return _html(decoded[0], name, limits, decoded[1])


def _html(html: str, name: str, limits: Limits, notes: tuple[str, ...] = ()) -> Extracted | Skipped:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    heading: str | None = title_node.text(strip=True) or None if title_node is not None else None
    root = tree.body or tree.root
    out = _Builder(limits.max_text_chars)
    if root is None:
        return Skipped("no_text", f"{name} has no visible text.")
    words: list[str] = []

    def flush() -> None:
        text = " ".join("".join(words).split())
        words.clear()
        out.add(text, heading=heading)

    stack: list[tuple[object, bool]] = [(root, False)]  # iterative: a page nested 100,000 deep is no stack overflow
    while stack and not out.full:
        node, leaving = stack.pop()
        tag = node.tag  # type: ignore[attr-defined]
        if leaving:
            if tag in _HEADINGS:
                heading = " ".join("".join(words).split()) or heading
                flush()
            elif tag in _BLOCKS:
                flush()
            continue
        if tag == "-text":
            words.append(node.text(deep=False))  # type: ignore[attr-defined]
            continue
        if tag in _SKIP_TAGS or tag == "-comment":
            continue
        if tag == "pre":
            flush()
            out.add(node.text(deep=True), "code", heading=heading)  # type: ignore[attr-defined]
            continue
        if tag == "table":
            flush()
            rows = []
            for tr in node.css("tr"):  # type: ignore[attr-defined]
                cells = [" ".join(c.text(deep=True).split()) for c in tr.css("td, th")]
                rows.append(" | ".join(cells))
            out.add("\n".join(rows), "table", heading=heading)
            continue
        if tag in _BLOCKS or tag in _HEADINGS:
            flush()
        stack.append((node, True))
        children = []
        child = node.child  # type: ignore[attr-defined]
        while child is not None:
            children.append(child)
            child = child.next
        stack.extend((c, False) for c in reversed(children))
    flush()
    extracted = out.build(limits, notes)
    if not extracted.text.strip():
        return Skipped("no_text", f"{name} has no visible text.")
    return extracted


def _gzip(path: Path, limits: Limits) -> Extracted | Skipped:
    try:
        with gzip.open(path, "rb") as f:
            # GzipFile.read(n) inflates at most n bytes: a bomb costs the cap, not its size.
            data = f.read(limits.max_unpacked_bytes + 1)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        _raise_if_out_of_memory(e)
        return _damaged(path, "gzip file", e)
    if len(data) > limits.max_unpacked_bytes:
        return Skipped(
            "too_large",
            f"{path.name} expands to more than {limits.max_unpacked_bytes >> 20} MB; it is not read "
            "(it may be a gzip bomb).",
        )
    inner = inner_kind(path)
    if inner == "html":
        return _html_bytes(data, path.name, limits)
    return text_document(data, inner, path.name, limits)


def _raise_if_out_of_memory(e: BaseException) -> None:
    # zlib reports a failed allocation as its own error, not MemoryError: under RLIMIT_AS that is
    # the memory limit at work (a bomb that got past the size check), not a damaged file.
    if "allocate" in str(e) or "Z_MEM_ERROR" in str(e) or "insufficient memory" in str(e):
        raise MemoryError(str(e)) from e


def _damaged(path: Path, what: str, e: BaseException) -> Skipped:
    detail = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
    return Skipped(
        "damaged",
        f"{path.name} could not be read as a {what} ({detail}); it may be damaged: try opening and saving it again.",
    )
