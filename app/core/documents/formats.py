"""Which kind of document a file is: by its name's suffix, checked against its first bytes.

Owns the list of formats Hearth reads and the name of each kind. A suffix decides the kind; the
first bytes only overrule it where a name lies in a way that matters (a PDF or a ZIP-based DOCX
that is not one is damaged, not text; a `.gz` must start with gzip's magic). Whether a "text"
file is really text (NUL bytes, control characters) is the extractor's call, on the bytes it reads.

Must not: read more than the first bytes, or parse anything (extract.py and extract_worker.py do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "CHILD_KINDS",
    "TEXT_KINDS",
    "Kind",
    "Unsupported",
    "inner_kind",
    "kind_of",
    "kind_of_name",
    "kind_word",
    "sniff",
]

Kind = Literal["text", "markdown", "rst", "html", "pdf", "docx", "csv", "code", "gzip"]

# Kinds whose whole file is text, read in the caller's process with a size cap.
TEXT_KINDS: frozenset[Kind] = frozenset({"text", "markdown", "rst", "csv", "code"})
# Kinds parsed by a library (or decompressed): only ever in the extraction child process.
CHILD_KINDS: frozenset[Kind] = frozenset({"html", "pdf", "docx", "gzip"})

# Source code, shell and build files, and configuration or data written by hand.
_CODE_SUFFIXES = """
    .py .pyi .js .mjs .cjs .jsx .ts .tsx .c .h .cc .cpp .cxx .hpp .hh .hxx .rs .go .java .kt .kts .scala
    .rb .php .pl .pm .lua .r .jl .swift .m .mm .cs .fs .vb .dart .ex .exs .erl .hrl .hs .ml .mli .clj
    .cljs .el .lisp .scm .zig .nim .v .vhd .vhdl .asm .s .f90 .f .pas .groovy .gradle .sql .proto
    .graphql .vue .svelte .css .scss .sass .less
    .sh .bash .zsh .fish .ps1 .bat .cmd .mk .cmake
    .toml .yaml .yml .json .jsonl .ini .cfg .conf .properties .env .xml .tex .bib .diff .patch
""".split()  # noqa: SIM905 - ninety suffixes read better as lines of words than as a list literal
_BY_SUFFIX: dict[str, Kind] = {
    **dict.fromkeys((".txt", ".text", ".log"), "text"),
    **dict.fromkeys((".md", ".markdown", ".mdown", ".mkd"), "markdown"),
    ".rst": "rst",
    **dict.fromkeys((".html", ".htm", ".xhtml"), "html"),
    ".pdf": "pdf",
    ".docx": "docx",
    **dict.fromkeys((".csv", ".tsv"), "csv"),
    **dict.fromkeys(_CODE_SUFFIXES, "code"),
}
# Files known by their whole name rather than a suffix.
_BY_NAME: dict[str, Kind] = {
    **dict.fromkeys(("makefile", "dockerfile", "cmakelists.txt", "justfile", "rakefile", "gemfile"), "code"),
    **dict.fromkeys(("readme", "license", "licence", "copying", "authors", "changelog", "notice"), "text"),
}
# What a ".gz" may hold: text (HTML included); a gzipped PDF or DOCX is not something people keep.
_GZIP_INNER: frozenset[Kind] = TEXT_KINDS | {"html"}
_KIND_WORDS: dict[Kind, str] = {
    "text": "plain text",
    "markdown": "Markdown",
    "rst": "reStructuredText",
    "html": "HTML",
    "pdf": "PDF",
    "docx": "Word (DOCX)",
    "csv": "CSV",
    "code": "source code",
    "gzip": "gzip-compressed text",
}

# First bytes of formats people keep beside their documents, named so a skip can say what the file is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "a PDF"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x7fELF", "a program (ELF)"),
    (b"MZ", "a Windows program"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (DOC, XLS, PPT)"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"SQLite format 3", "an SQLite database"),
    (b"GGUF", "a GGUF model"),
    (b"ID3", "an MP3 file"),
)


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A file Hearth does not read, and the words for what it is (for the skip's message)."""

    what: str


def kind_word(kind: Kind) -> str:
    """The kind as a person says it ("Markdown", "Word (DOCX)")."""
    return _KIND_WORDS[kind]


def kind_of_name(path: Path) -> Kind | Unsupported:
    """The kind a file's name says it is; `.gz` is "gzip" only around a text kind (notes.md.gz)."""
    name = path.name.lower()
    if name in _BY_NAME:
        return _BY_NAME[name]
    suffixes = [s for s in Path(name).suffixes if s]
    if not suffixes:
        return Unsupported("a file with no extension")
    last = suffixes[-1]
    if last == ".gz":
        inner = _BY_SUFFIX.get(suffixes[-2]) if len(suffixes) >= 2 else None
        if inner in _GZIP_INNER:
            return "gzip"
        return Unsupported("a gzip archive of something other than text" if inner else "a gzip archive")
    kind = _BY_SUFFIX.get(last)
    if kind is None:
        return Unsupported(f"a {last} file")
    return kind


def sniff(head: bytes) -> str | None:
    """What the first bytes say a file is ("a PNG image"), or None for nothing known."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return what
    return None


def kind_of(path: Path, head: bytes) -> Kind | Unsupported:
    """The kind of a file from its name and first bytes (up to a few hundred are enough).

    A known binary format under a text name ("photo.txt" that is a PNG) is Unsupported, naming what
    it is; a PDF, DOCX or gzip whose bytes say otherwise keeps its kind (the parser calls it damaged,
    which is the truer message for a broken PDF than "unsupported").
    """
    kind = kind_of_name(path)
    if isinstance(kind, Unsupported):
        what = sniff(head)
        return Unsupported(what) if what else kind
    if kind in TEXT_KINDS or kind == "html":
        what = sniff(head)
        if what is not None:
            return Unsupported(f"{what} named as {kind_word(kind)}")
    return kind


def inner_kind(path: Path) -> Kind:
    """The text kind inside a ".gz" file (notes.md.gz → "markdown"); "text" when unknown."""
    suffixes = Path(path.name.lower()).suffixes
    inner = _BY_SUFFIX.get(suffixes[-2]) if len(suffixes) >= 2 else None
    return inner if inner in _GZIP_INNER else "text"
