"""The streaming Markdown split: any chunking of any text gives the blocks of a full parse,
and a committed block is never taken back."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.core.markdown_stream import LIVE_LIMIT, Block, MarkdownStream, blocks_of, parser

_MD = parser()

# Pieces that open, close and continue every kind of block, in any order.
_PIECES = [
    "- ",
    "* ",
    "+ ",
    "1. ",
    "2) ",
    "10. ",
    "# ",
    "## ",
    "```",
    "```py",
    "~~~",
    "\n",
    "\n\n",
    "> ",
    "| ",
    " |",
    "|---|---|",
    "---",
    "***",
    "===",
    "a",
    "b c",
    "word ",
    "**",
    "_",
    "`",
    "~~",
    "  ",
    "    ",
    "\t",
    "[x](http://a.example)",
    "![i](http://b.example/i.png)",
    "<b>",
    "</b>",
    "\\",
    ":--",
    "\r\n",
    "\r",
    "<http://c.example>",
    "[ref]: http://d.example",
    "[ref]",
    "1.",
    "-",
    "#",
    "--",
    "  - ",
    "   ",
    "2. ",
    ">",
    "=",
    "|",
]


def _full(text: str) -> list[Block]:
    return blocks_of(_MD.parse(text.replace("\r\n", "\n").replace("\r", "\n")))


def _chunked(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


@pytest.mark.slow
@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=40), st.lists(st.integers(0, 10_000), max_size=30))
# Found by this test in a full run: "```1" looked like a fence's opening line and the paragraph
# above was committed, but the backtick that came next made the line text in that paragraph.
@example(["| ", "\n", "```", "1. ", "```"], [7])
def test_any_chunking_gives_the_full_parse_and_never_takes_a_block_back(pieces: list[str], cuts: list[int]) -> None:
    text = "".join(pieces)
    stream = MarkdownStream(_MD)
    committed: list[Block] = []
    for chunk in _chunked(text, cuts):
        update = stream.feed(chunk)
        committed += update.committed
        shown = committed + update.pending
        # What is shown is a full parse of the text so far, short of a held-back opener.
        assert shown == _full(stream.shown_text())
    committed += stream.finish().committed
    assert committed == _full(text)


def test_a_list_streamed_item_by_item_keeps_its_numbers() -> None:
    stream = MarkdownStream()
    blocks: list[Block] = []
    for chunk in ["3. one\n", "4. two\n", "9. three\n", "\nafter"]:
        blocks += stream.feed(chunk).committed
    blocks += stream.finish().committed
    items = [b.list for b in blocks if b.list is not None]
    assert [i.number for i in items] == [3, 4, 5]
    assert len({i.list_id for i in items}) == 1
    assert blocks[-1].kind == "paragraph"


def test_a_bare_opener_is_held_back_until_its_next_character() -> None:
    stream = MarkdownStream()
    update = stream.feed("Some text\n\n-")
    assert [b.kind for b in update.pending] == ["paragraph"]
    update = stream.feed(" item\n")
    assert [b.kind for b in update.pending] == ["list_item"]
    assert [b.kind for b in update.committed] == ["paragraph"]


def test_an_update_parses_the_pending_block_only() -> None:
    """The cost of a frame is the pending block: after 500 paragraphs, the parser sees one."""
    seen: list[int] = []
    md = parser()
    real_parse = md.parse

    def parse(src: str, env: object = None) -> list:  # type: ignore[type-arg]
        seen.append(len(src))
        return real_parse(src, env)

    md.parse = parse  # type: ignore[method-assign]
    stream = MarkdownStream(md)
    for i in range(500):
        stream.feed(f"Paragraph number {i} with a few words.\n\n")
    assert max(seen[-100:]) < 200


@pytest.mark.slow
def test_a_huge_paragraph_is_parsed_a_few_times_not_once_per_chunk() -> None:
    """200 KB in one paragraph, 17 characters at a time: a parse per chunk would be quadratic."""
    line = "All work and no play makes a **long** answer. " * 2 + "\n"
    text = line * 2400 + "\nThe end."
    seen: list[int] = []
    md = parser()
    real_parse = md.parse

    def parse(src: str, env: object = None) -> list:  # type: ignore[type-arg]
        seen.append(len(src))
        return real_parse(src, env)

    md.parse = parse  # type: ignore[method-assign]
    stream = MarkdownStream(md)
    committed: list[Block] = []
    raw = 0
    for i in range(0, len(text), 17):
        update = stream.feed(text[i : i + 17])
        committed += update.committed
        raw += update.raw
        if update.pending:
            assert update.end == len(stream.shown_text())
    committed += stream.finish().committed
    assert committed == _full(text)
    assert sum(seen) < 3 * len(text) + LIVE_LIMIT * 400
    assert raw > len(text) // 17 * 0.9
