"""The stream filter: stop strings, reasoning split and redaction, whatever the chunking."""

from __future__ import annotations

import itertools
import random
import re
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine.filters import ANSWER, REASONING, REDACTED, FilterConfig, Piece, StreamFilter

pytestmark = pytest.mark.filterwarnings("error")

SK = "sk-" + "Ab3dEf6hIj9kLm2nOp5qRs8t"  # 27 chars, matches sk-[A-Za-z0-9]{20,}
AKIA = "AKIA" + "Z7Q2M4X9C1V8B3N6"  # matches AKIA[0-9A-Z]{16}
SECRETS = (r"sk-[A-Za-z0-9]{20,}", r"AKIA[0-9A-Z]{16}")


def run(config: FilterConfig, chunks: list[str]) -> tuple[str, str, bool, list[list[Piece]]]:
    """Feed `chunks`, then finish: (answer, reasoning, stopped, pieces of each call)."""
    f = StreamFilter(config)
    calls = [f.feed(c) for c in chunks] + [f.finish()]
    pieces = [p for call in calls for p in call]
    answer = "".join(p.text for p in pieces if p.channel == ANSWER)
    reasoning = "".join(p.text for p in pieces if p.channel == REASONING)
    return answer, reasoning, f.stopped, calls


def splits(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *sorted(set(cuts)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def every_split(text: str) -> list[list[str]]:
    """Whole, one char at a time, and cut in two (then three) at every position."""
    n = len(text)
    out = [[text], list(text)]
    out += [splits(text, [i]) for i in range(1, n)]
    out += [splits(text, [i, j]) for i in range(1, n) for j in range(i + 1, n) if (i + j) % 3 == 0]
    return out


# --- stop strings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stops", "chunks", "answer"),
    [
        (("###",), ["Hello ", "#", "#", "#", " and more"], "Hello "),
        (("###",), ["###", "never shown"], ""),
        (("###",), ["Hello ##", "# tail"], "Hello "),
        (("END", "###"), ["a###b", "END"], "a"),
        (("###", "END"), ["aEN", "D###"], "a"),
        (("\nUser:",), ["Sure.\n", "User", ": next turn"], "Sure."),
        (("ab", "abc"), ["xab", "c"], "x"),
    ],
    ids=[
        "split-char-by-char",
        "at-start",
        "across-two-chunks",
        "first-in-text-wins",
        "first-wins-order-independent",
        "multi-char-with-newline",
        "prefix-of-another",
    ],
)
def test_stop_string_ends_the_answer(stops: tuple[str, ...], chunks: list[str], answer: str) -> None:
    got, reasoning, stopped, _ = run(FilterConfig(stop=stops), chunks)
    assert (got, reasoning, stopped) == (answer, "", True)


def test_after_a_stop_nothing_more_comes_out() -> None:
    f = StreamFilter(FilterConfig(stop=("###",)))
    assert f.feed("ok ###") == [Piece(ANSWER, "ok ")]
    assert f.stopped and f.held == 0
    assert f.feed("more text") == [] and f.finish() == []


def test_a_partial_stop_string_is_held_then_released_at_finish() -> None:
    f = StreamFilter(FilterConfig(stop=("###",)))
    assert f.feed("Hello ##") == [Piece(ANSWER, "Hello ")]
    assert f.held == 2
    assert f.finish() == [Piece(ANSWER, "##")]
    assert not f.stopped


def test_a_false_start_of_a_stop_string_is_released_as_soon_as_it_cannot_match() -> None:
    f = StreamFilter(FilterConfig(stop=("###",)))
    assert f.feed("a #") == [Piece(ANSWER, "a ")]
    assert f.feed("#b") == [Piece(ANSWER, "##b")]
    assert f.held == 0


def test_stop_strings_do_not_act_inside_reasoning() -> None:
    text = "<think>they said end with ### so</think>Answer.###ignored"
    assert run(FilterConfig(stop=("###",)), [text])[:3] == ("Answer.", "they said end with ### so", True)


# --- reasoning split ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer", "reasoning"),
    [
        ("<think>Let me see.</think>\n\nIt is 4.", "It is 4.", "Let me see."),
        ("\n  <think>\nplan</think>done", "done", "plan"),
        ("<think>\n\n</think>\n\nHi", "Hi", ""),
        ("Hello <think>hmm</think> world", "Hello world", "hmm"),
        ("<think>still thinking", "", "still thinking"),
        ("\n</think>\n\nAnswer", "Answer", ""),
        ("shown already</think>\nrest", "shown already\nrest", ""),
        ("<think>a<think>b</think>c</think>d", "cd", "ab"),
        ("<think>a</think>x<think>b</think>y", "xy", "ab"),
        ("a <thin b </thi c <", "a <thin b </thi c <", ""),
    ],
    ids=[
        "at-start",
        "after-whitespace",
        "empty-block-qwen3",
        "mid-answer",
        "unterminated",
        "lone-close-after-whitespace",
        "lone-close-after-answer",
        "nested-looking",
        "two-blocks",
        "partial-tags-are-text",
    ],
)
def test_reasoning_is_split_from_the_answer(text: str, answer: str, reasoning: str) -> None:
    for chunks in every_split(text):
        assert run(FilterConfig(), chunks)[:2] == (answer, reasoning), chunks


def test_a_prompt_that_opened_reasoning_makes_the_stream_start_inside_it() -> None:
    config = FilterConfig(starts_in_reasoning=True)
    for chunks in every_split("First, 2+2.\n</think>\n\n4"):
        assert run(config, chunks)[:2] == ("4", "First, 2+2.\n"), chunks


def test_without_think_tags_the_tags_are_plain_text() -> None:
    assert run(FilterConfig(think=None), ["<think>x</think> y"])[:2] == ("<think>x</think> y", "")


def test_custom_tags() -> None:
    config = FilterConfig(think=("[[r]]", "[[/r]]"))
    assert run(config, list("[[r]]why[[/r]] because"))[:2] == ("because", "why")


def test_pieces_come_in_order_and_merge_per_channel() -> None:
    f = StreamFilter(FilterConfig())
    assert f.feed("<think>a</think>b<think>c") == [Piece(REASONING, "a"), Piece(ANSWER, "b"), Piece(REASONING, "c")]
    assert f.feed("d</th") == [Piece(REASONING, "d")]
    assert f.held == len("</th")
    assert f.feed("ink> e") == [Piece(ANSWER, "e")]


# --- redaction ----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [SK, AKIA], ids=["openai-key", "aws-key"])
@pytest.mark.parametrize("window", [len(SK), 64, 256], ids=["window-fits", "window-64", "window-256"])
def test_a_split_secret_never_leaks_a_character(secret: str, window: int) -> None:
    text = f"use {secret} now"
    expected = f"use {REDACTED} now"
    config = FilterConfig(redact=SECRETS, redact_window=window)
    for chunks in every_split(text):
        answer, _, _, calls = run(config, chunks)
        assert answer == expected, chunks
        shown = ""
        for call in calls:  # at every moment, what was shown is the start of the redacted text
            shown += "".join(p.text for p in call)
            assert expected.startswith(shown), chunks
            assert not any(secret[i : i + 3] in p.text for p in call for i in range(len(secret) - 2))


def test_secrets_are_redacted_inside_reasoning_too() -> None:
    text = f"<think>the key is {SK}</think>I will not repeat {AKIA}."
    for chunks in every_split(text)[:80]:
        assert run(FilterConfig(redact=SECRETS), chunks)[:2] == (
            f"I will not repeat {REDACTED}.",
            f"the key is {REDACTED}",
        ), chunks


def test_a_stop_string_inside_a_secret_is_redacted_with_it_and_does_not_stop() -> None:
    config = FilterConfig(stop=("###",), redact=(r"tok-\S{20,}",))
    text = "key tok-abcdefghij###klmnopqrstuvwx then###after"
    assert run(config, list(text))[:3] == (f"key {REDACTED} then", "", True)


def test_without_patterns_nothing_plain_is_held() -> None:
    f = StreamFilter(FilterConfig(stop=("###",)))
    assert f.feed("Hello") == [Piece(ANSWER, "Hello")] and f.held == 0


def test_with_patterns_the_window_is_held_and_released_at_finish() -> None:
    f = StreamFilter(FilterConfig(redact=SECRETS, redact_window=64))
    assert f.feed("x" * 60) == []
    assert f.held == 60
    assert f.finish() == [Piece(ANSWER, "x" * 60)]


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (FilterConfig(redact=("sk-[",)), "not a valid regular expression"),
        (FilterConfig(redact=("a*",)), "matches empty text"),
        (FilterConfig(redact=("[a-z]{4,}",)), "part of a reasoning tag"),
        (FilterConfig(stop=("",)), "Stop string 1 is empty"),
        (FilterConfig(stop=("</think>",)), "contains a reasoning tag"),
        (FilterConfig(stop=("]",), redact=SECRETS), "redaction marker"),
        (FilterConfig(think=("<t>", "")), "two non-empty strings"),
        (FilterConfig(think=None, starts_in_reasoning=True), "needs reasoning tags"),
        (FilterConfig(redact=SECRETS, redact_window=0), "at least 1 character"),
    ],
    ids=[
        "bad-regex",
        "empty-match",
        "eats-tag",
        "empty-stop",
        "stop-is-tag",
        "stop-in-marker",
        "empty-tag",
        "reasoning-start-without-tags",
        "zero-window",
    ],
)
def test_problems_are_reported_and_refused(config: FilterConfig, needle: str) -> None:
    problems = config.problems()
    assert len(problems) == 1 and needle in problems[0]
    with pytest.raises(ValueError, match=re.escape(needle)):
        StreamFilter(config)


def test_a_good_config_has_no_problems() -> None:
    assert FilterConfig(stop=("###", "\nUser:"), redact=SECRETS).problems() == []


def test_feed_after_finish_is_a_programming_error() -> None:
    f = StreamFilter(FilterConfig())
    f.finish()
    with pytest.raises(RuntimeError):
        f.feed("x")


# --- chunking invariance and the hold bound ----------------------------------------------

FRAGMENTS = [
    "<think>",
    "</think>",
    "<th",
    "ink>",
    "</",
    "<",
    ">",
    "###",
    "#",
    "##",
    "END",
    "EN",
    "sk-",
    "AKIA",
    "Z7Q2M4X9",
    "C1V8B3N6",
    "Ab3dEf6hIj9k",
    "Lm2nOp5qRs8t",
    SK,
    AKIA,
    " ",
    "\n",
    "a",
    "word",
    "é",
    "e\u0301",
    "😀",
    "[",
    "]",
    "pw=",
    "hunter2",
]
CONFIGS = {
    "tags": FilterConfig(),
    "tags-stops": FilterConfig(stop=("###", "END")),
    "no-tags-stops": FilterConfig(think=None, stop=("###", "END", "<")),
    "reasoning-first": FilterConfig(stop=("###",), starts_in_reasoning=True),
    "redact-small-window": FilterConfig(stop=("###",), redact=SECRETS, redact_window=30),
    "redact-default": FilterConfig(stop=("END",), redact=SECRETS),
    "redact-lookbehind": FilterConfig(redact=(r"(?<=pw=)\w{4,}", r"\bAKIA[0-9A-Z]{16}"), redact_window=24),
}


def hold_bound(config: FilterConfig) -> int:
    tags = max(map(len, config.think)) - 1 if config.think else 0
    stops = max(map(len, config.stop), default=1) - 1
    redact = config.redact_window + max(1, config.redact_window // 8) - 1 if config.redact else 0
    return tags + stops + redact


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CONFIGS), ids=list(CONFIGS))
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.sampled_from(FRAGMENTS), max_size=60),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=25),
)
# Found by a full run: "##", a reasoning block, "#" showed "###" although "###" is a stop string.
@example(parts=["</think>", "##", "<think>", "</think>", "#"], cuts=[])
def test_output_does_not_depend_on_chunking(name: str, parts: list[str], cuts: list[int]) -> None:
    config = CONFIGS[name]
    text = "".join(parts)
    whole = run(config, [text])[:3]
    f = StreamFilter(config)
    answer = reasoning = ""
    for chunk in splits(text, [c for c in cuts if c < len(text)]):
        pieces = f.feed(chunk)
        assert all(p.text for p in pieces) and all(a.channel != b.channel for a, b in itertools.pairwise(pieces))
        assert f.held <= hold_bound(config)
        answer += "".join(p.text for p in pieces if p.channel == ANSWER)
        reasoning += "".join(p.text for p in pieces if p.channel == REASONING)
    for p in f.finish():
        answer, reasoning = (answer + p.text, reasoning) if p.channel == ANSWER else (answer, reasoning + p.text)
    assert (answer, reasoning, f.stopped) == whole
    if config.redact == SECRETS:
        assert SK not in answer + reasoning and AKIA not in answer + reasoning
    if config.stop:
        assert not any(s in answer for s in config.stop)


@pytest.mark.slow
def test_random_token_streams_match_the_whole_text() -> None:
    """Seeded, long streams: many small cuts, as a real model produces."""
    rng = random.Random(5)
    for name, config in CONFIGS.items():
        for _ in range(40):
            text = "".join(rng.choice(FRAGMENTS) for _ in range(300))
            cuts = sorted(rng.sample(range(1, len(text)), k=len(text) // 4))
            assert run(config, splits(text, cuts))[:3] == run(config, [text])[:3], name


# --- cost ---------------------------------------------------------------------------------


def per_feed_us(config: FilterConfig, tokens: list[str]) -> float:
    best = float("inf")
    for _ in range(5):
        f = StreamFilter(config)
        t0 = time.perf_counter()
        for tok in tokens:
            f.feed(tok)
        best = min(best, (time.perf_counter() - t0) / len(tokens) * 1e6)
    return best


@pytest.mark.parametrize("name", ["tags", "tags-stops", "redact-default"], ids=["tags", "tags-stops", "redact"])
def test_a_token_costs_microseconds_and_does_not_grow_with_the_reply(name: str) -> None:
    tokens = [" the", " quick", " brown", " fox", ",", " and", "\n", " it", "'s", " #", "1"] * 400
    early = per_feed_us(CONFIGS[name], tokens[:1000])
    whole = per_feed_us(CONFIGS[name], tokens)
    # Loose bounds for a busy CI box; the measured figures are in engine/filters.py's docstring.
    assert early < 100 and whole < 3 * early + 5


def test_a_continued_answer_keeps_the_whitespace_that_joins_it() -> None:
    continued = StreamFilter(FilterConfig(answer_started=True))
    fresh = StreamFilter(FilterConfig())
    assert "".join(p.text for p in continued.feed(" for their") + continued.finish()) == " for their"
    assert "".join(p.text for p in fresh.feed("\n\n Hello") + fresh.finish()) == "Hello"
