"""Each chat's tool choice: off by default, kept in the conversation's settings, tolerant of damage."""

from __future__ import annotations

import pytest

from app.core.tools.choice import TOOLS_KEY, ChatTools

pytestmark = pytest.mark.fast


def test_a_chat_uses_no_tool_until_one_is_chosen() -> None:
    assert not ChatTools.from_settings({}).enabled
    assert not ChatTools.from_settings(None).offers("hearth/current_time")


def test_a_whole_server_offers_each_of_its_tools_and_no_other_servers() -> None:
    tools = ChatTools().with_chosen(["files/*", "hearth/current_time"])
    assert tools.offers("files/read") and tools.offers("files/write")
    assert tools.offers("hearth/current_time") and not tools.offers("hearth/read_file")
    assert not tools.offers("other/read")
    assert tools.servers() == {"files", "hearth"}


def test_the_choice_and_always_allowed_tools_survive_the_settings_round_trip() -> None:
    tools = ChatTools().with_chosen(["files/*"]).allowing("files/read")
    again = ChatTools.from_settings(tools.to_settings())
    assert again == tools and again.allowed_always("files/read") and not again.allowed_always("files/write")


def test_unchoosing_a_tool_forgets_that_it_was_always_allowed() -> None:
    tools = ChatTools().with_chosen(["files/*", "hearth/current_time"]).allowing("files/read")
    assert not tools.with_chosen(["hearth/current_time"]).allowed_always("files/read")


@pytest.mark.parametrize(
    "raw",
    [None, "files/*", ["files/*"], {"chosen": "files/*"}, {"chosen": [1, "nosep", "/x", "a/"]}],
    ids=["none", "a-string", "a-list", "chosen-not-a-list", "bad-entries"],
)
def test_a_damaged_value_reads_as_no_tools(raw: object) -> None:
    assert ChatTools.from_settings({TOOLS_KEY: raw}) == ChatTools()
