"""The docs hold together: the README stays short, and every link in the README, CONTRIBUTING.md
and docs/ (and every docs/ section a source file cites) leads to a file, and a heading, that exist.

Anchors follow GitHub's rule: the heading in lower case, punctuation dropped, spaces as hyphens,
a repeated heading numbered from -1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MOST_LINES = 220

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# A source file citing a section: "docs/architecture.md#the-three-flows".
_CITED = re.compile(r"(?<![\w/])(docs/[\w.-]+\.md|CONTRIBUTING\.md)(#[\w-]+)?")


def _prose(text: str) -> str:
    """The text without code blocks: a `# comment` in a shell block is not a heading."""
    return _FENCE.sub("", text)


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in _HEADING.findall(_prose(path.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def relative_links(path: Path) -> list[str]:
    text = _CODE_SPAN.sub("", _prose(path.read_text(encoding="utf-8")))
    return [t for t in _LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I)]


def broken(doc: Path, target: str) -> str | None:
    """Why `target`, a link in `doc` (or a path from the root when `doc` is ROOT), leads nowhere, or None."""
    file_part, _, anchor = target.partition("#")
    dest = (doc.parent if doc.is_file() else doc) / file_part if file_part else doc
    if not dest.exists():
        return f"{file_part} does not exist"
    if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
        return f"{dest.relative_to(ROOT)} has no heading #{anchor}"
    return None


def test_the_readme_stays_short() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MOST_LINES, (
        f"README.md has {lines} lines (at most {README_MOST_LINES}): move the detail into docs/ and link to it"
    )


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_relative_link_leads_somewhere(doc: Path) -> None:
    problems = [f"{target}: {why}" for target in relative_links(doc) if (why := broken(doc, target))]
    assert problems == [], f"{doc.relative_to(ROOT)}: " + "; ".join(problems)


def test_every_page_of_docs_is_linked_from_the_readme() -> None:
    """Every page of docs/ can be reached from the README."""
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in relative_links(ROOT / "README.md")}
    assert {d for d in DOCS if d.parent.name == "docs"} <= linked


def test_sections_cited_in_the_source_exist() -> None:
    problems = []
    sources = [p for top in ("app", "engine", "store", "tests", "packaging") for p in (ROOT / top).rglob("*.py")]
    for path in sources:
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8")
        assert "DESIGN.md" not in text, f"{path.relative_to(ROOT)} cites DESIGN.md: cite docs/architecture.md"
        for doc, anchor in _CITED.findall(text):
            why = broken(ROOT, doc + anchor)
            if why:
                problems.append(f"{path.relative_to(ROOT)}: {doc}{anchor}: {why}")
    assert problems == []
