"""Passages: by structure first, overlapping within a section, always pointing into the text."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.documents.chunk import Chunk, chunk
from app.core.documents.extract import Extracted, Section
from app.core.documents.plain import structure


def _md(text: str) -> Extracted:
    return Extracted(text, structure(text, "markdown"))


def _holds(extracted: Extracted, chunks: list[Chunk], target: int) -> None:
    text = extracted.text
    covered = [False] * len(text)
    last_start = -1
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.start > last_start, "in order"
        assert 0 < len(c.text) <= target, "never over the target (the margin is zero)"
        assert not c.text[0].isspace() and not c.text[-1].isspace()
        last_start = c.start
        for i in range(c.start, c.end):
            covered[i] = True
    missed = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missed, f"characters in no passage: {[text[i] for i in missed[:10]]}"


_WORDS = st.text(alphabet=st.sampled_from("abc xyz.!?\n#`-é中"), max_size=3000)


@settings(max_examples=100, deadline=None)  # 6,000 examples passed once, by hand
@given(text=_WORDS, target=st.integers(20, 400), overlap_share=st.integers(0, 4))
def test_any_text_is_covered_in_order_within_the_limit(text: str, target: int, overlap_share: int) -> None:
    overlap = target * overlap_share // 16
    for kind in ("markdown", "code", "text", "csv", "rst"):
        extracted = Extracted(text, structure(text, kind))  # type: ignore[arg-type]
        _holds(extracted, chunk(extracted, target_chars=target, overlap_chars=overlap), target)


@settings(max_examples=50, deadline=None)
@given(pages=st.lists(st.text(alphabet="ab .\n", max_size=500), min_size=1, max_size=6))
def test_passages_never_cross_a_page(pages: list[str]) -> None:
    text, sections, at = "", [], 0
    for n, page in enumerate(pages, 1):
        sections.append(Section(at, at + len(page) + 2, page=n))
        text += page + "\n\n"
        at = len(text)
    extracted = Extracted(text, tuple(sections))
    chunks = chunk(extracted, target_chars=100, overlap_chars=20)
    _holds(extracted, chunks, 100)
    for c in chunks:
        assert c.page is not None
        page = sections[c.page - 1]
        assert page.start <= c.start and c.end <= page.end


def test_a_heading_with_short_paragraphs_and_code_is_one_passage() -> None:
    doc = _md("# Setup\n\nInstall it.\n\n```sh\npip install hearth\n```\n\n# Use\n\nAsk.\n")
    chunks = chunk(doc)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Setup", "# Setup\n\nInstall it.\n\n```sh\npip install hearth\n```"),
        ("Use", "# Use\n\nAsk."),
    ]


def test_a_code_block_is_kept_whole_when_it_fits_and_cut_on_lines_when_not() -> None:
    code = "".join(f"line_{i} = compute({i})\n" for i in range(30))  # ~700 characters
    prose = "Words here. " * 40
    doc = _md(f"# Code\n\n{prose}\n\n```py\n{code}```\n")
    chunks = chunk(doc, target_chars=800, overlap_chars=100)
    assert any(c.text == f"```py\n{code}```" for c in chunks), "the block whole, in a passage of its own"
    small = chunk(doc, target_chars=200, overlap_chars=0)
    code_chunks = [c for c in small if "compute" in c.text]
    assert len(code_chunks) > 1
    assert all(c.text.endswith(")") or c.text.endswith("```") for c in code_chunks), "cut at line ends"


def test_long_prose_is_cut_at_sentence_ends_with_overlap() -> None:
    sentences = [f"Sentence number {i} says something useful about gardens." for i in range(60)]
    doc = Extracted(" ".join(sentences), (Section(0, len(" ".join(sentences))),))
    chunks = chunk(doc, target_chars=300, overlap_chars=60)
    assert len(chunks) > 5
    for c in chunks[:-1]:
        assert c.text.endswith("gardens."), c.text[-30:]
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end, "consecutive passages of one section overlap"
        assert a.end - b.start <= 60


def test_paragraphs_are_preferred_over_sentences() -> None:
    para = "A short sentence. " * 8
    text = f"{para}\n\n{para}\n\n{para}"
    doc = Extracted(text, (Section(0, len(text)),))
    chunks = chunk(doc, target_chars=350, overlap_chars=0)
    assert [c.text for c in chunks] == [f"{para}\n\n{para.strip()}", para.strip()]


def test_a_csv_passage_carries_the_header() -> None:
    text = "name,phone\n" + "".join(f"person {i},555-{i:04d}\n" for i in range(200))
    doc = Extracted(text, structure(text, "csv"))
    chunks = chunk(doc, target_chars=300, overlap_chars=0)
    assert len(chunks) > 5 and all(c.heading == "name | phone" for c in chunks)
    assert all(c.text.endswith(tuple("0123456789")) for c in chunks), "rows are not cut"


def test_bad_settings_are_refused() -> None:
    doc = _md("text")
    with pytest.raises(ValueError, match="overlap"):
        chunk(doc, target_chars=100, overlap_chars=50)
    with pytest.raises(ValueError, match="target"):
        chunk(doc, target_chars=5)
