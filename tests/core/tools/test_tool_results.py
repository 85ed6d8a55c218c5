"""A tool's answer as text: other parts described, bad Unicode replaced, long text cut with a note."""

from __future__ import annotations

import mcp_types

from app.core.tools.results import bounded_text, result_text


def test_text_parts_are_joined_and_others_described() -> None:
    content = [
        mcp_types.TextContent(type="text", text="caption"),
        mcp_types.ImageContent(type="image", data="A" * 16384, mime_type="image/png"),
        mcp_types.AudioContent(type="audio", data="A" * 400, mime_type="audio/wav"),
    ]
    assert result_text(content, None, 1000) == ("caption\n[image/png, 12 KB]\n[audio/wav, 300 bytes]", False)


def test_structured_content_alone_is_shown_as_json() -> None:
    assert result_text([], {"sum": 3}, 1000) == ('{"sum": 3}', False)


def test_lone_surrogates_become_replacement_characters() -> None:
    text, _ = bounded_text("a\udcffb", 100)
    assert text == "a\ufffdb" and text.encode("utf-8")


def test_long_text_is_cut_at_a_character_with_a_note() -> None:
    text, cut = bounded_text("é" * 100, 51)
    assert cut and text.startswith("é" * 25) and "é" * 26 not in text
    assert "returned 200 bytes of text; the first 51 are above" in text
