"""The overflow policies, on messages and a counter (a word per token): what is left out, and
that the kept turns still read as a conversation."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.commands import ChatMessage, Summary
from engine.context_fit import SUMMARY_HEADER, fit_messages


def _count(messages: tuple[ChatMessage, ...]) -> int:
    return sum(len(m.content.split()) + 2 for m in messages)  # +2: the template's turn markers


def _chat(turns: int, words: int = 10, system: bool = True) -> list[ChatMessage]:
    out = [ChatMessage("system", "be brief")] if system else []
    for t in range(turns):
        out.append(ChatMessage("user", f"q{t} " + "word " * words))
        out.append(ChatMessage("assistant", f"a{t} " + "word " * words))
    out.append(ChatMessage("user", "the new question"))
    return out


def test_a_chat_that_fits_is_sent_whole() -> None:
    messages = _chat(3)
    fit = fit_messages(messages, _count, 10_000, "rolling")
    assert fit is not None and fit.omitted == () and list(fit.messages) == messages


def test_rolling_leaves_out_the_oldest_turns_and_keeps_the_system_prompt() -> None:
    messages = _chat(20)
    fit = fit_messages(messages, _count, 100, "rolling")
    assert fit is not None and fit.tokens <= 100
    assert fit.messages[0].content == "be brief" and fit.messages[-1].content == "the new question"
    assert fit.messages[1].role == "user"
    assert fit.omitted == tuple(range(1, 1 + len(fit.omitted)))  # the oldest, in one run
    # The fewest left out: one more turn back would not fit.
    assert _count((messages[0], *messages[fit.omitted[-1] - 1 :])) > 100


def test_middle_keeps_the_first_exchange_and_the_latest_turns() -> None:
    messages = _chat(20)
    fit = fit_messages(messages, _count, 100, "middle")
    assert fit is not None and fit.tokens <= 100
    assert [m.content.split()[0] for m in fit.messages[:3]] == ["be", "q0", "a0"]
    assert fit.messages[3].role == "user" and fit.messages[-1].content == "the new question"
    assert fit.omitted[0] == 3


def test_stop_leaves_nothing_out_and_says_it_does_not_fit() -> None:
    assert fit_messages(_chat(20), _count, 100, "stop") is None


def test_a_last_message_longer_than_the_context_cannot_fit() -> None:
    messages = [ChatMessage("user", "word " * 500)]
    assert fit_messages(messages, _count, 100, "rolling") is None


@settings(max_examples=200, deadline=None)
@given(
    turns=st.integers(0, 30),
    words=st.integers(0, 40),
    budget=st.integers(5, 400),
    policy=st.sampled_from(["rolling", "middle", "summarize"]),
    system=st.booleans(),
    covers=st.integers(0, 70),
)
def test_what_is_kept_fits_reads_as_a_conversation_and_keeps_the_last_message(
    turns: int, words: int, budget: int, policy: str, system: bool, covers: int
) -> None:
    messages = _chat(turns, words, system)
    summary = Summary("they talked about rivers", covers) if policy == "summarize" else None
    fit = fit_messages(messages, _count, budget, policy, summary)
    if fit is None:
        least = [messages[0], messages[-1]] if system else [messages[-1]]
        assert _count(tuple(least)) > budget or policy == "summarize"  # not even the least any policy keeps
        return
    assert fit.tokens == _count(fit.messages) <= budget
    assert fit.messages[-1] is messages[-1]
    kept = [m for i, m in enumerate(messages) if i not in fit.omitted]
    if fit.messages and SUMMARY_HEADER in fit.messages[0].content:  # the summary joined the system prompt
        assert policy == "summarize" and fit.messages[0].role == "system"
        kept = [m for m in kept if m.role != "system"]
        assert list(fit.messages[1:]) == kept
    else:
        assert kept == list(fit.messages)
    after_system = [m for m in fit.messages if m.role != "system"]
    assert after_system[0].role == "user"
    roles = [m.role for m in after_system]
    assert all(a != b for a, b in itertools.pairwise(roles))  # user, assistant, user, ...


@pytest.mark.parametrize("policy", ["rolling", "middle"])
def test_it_counts_a_handful_of_times_not_once_per_message(policy: str) -> None:
    calls = []

    def counting(messages: tuple[ChatMessage, ...]) -> int:
        calls.append(1)
        return _count(messages)

    assert fit_messages(_chat(500), counting, 300, policy) is not None
    assert len(calls) < 25


def test_summarize_sends_the_summary_in_place_of_the_turns_it_covers() -> None:
    messages = _chat(20)  # 41 messages after the system prompt: 20 exchanges and the new question
    fit = fit_messages(messages, _count, 200, "summarize", Summary("They compared twelve rivers.", 30))
    assert fit is not None and fit.tokens <= 200
    system = fit.messages[0]
    assert system.role == "system" and system.content == f"be brief\n\n{SUMMARY_HEADER}\nThey compared twelve rivers."
    assert set(range(1, 31)) <= set(fit.omitted)  # the 30 covered messages, never sent
    assert fit.messages[1].role == "user" and fit.messages[-1].content == "the new question"
    # Without a system prompt the summary becomes one.
    fit = fit_messages(_chat(20, system=False), _count, 200, "summarize", Summary("Rivers.", 30))
    assert fit is not None and fit.messages[0] == ChatMessage("system", f"{SUMMARY_HEADER}\nRivers.")


def test_summarize_keeps_the_recent_turns_the_summary_does_not_cover() -> None:
    messages = _chat(20)
    fit = fit_messages(messages, _count, 460, "summarize", Summary("Rivers.", 10))
    assert fit is not None and set(fit.omitted) == set(range(1, 11))  # room for everything after it
    fit = fit_messages(messages, _count, 150, "summarize", Summary("Rivers.", 10))
    assert fit is not None and set(range(1, 11)) < set(fit.omitted)  # still too long: the oldest rest roll out


def test_summarize_without_a_summary_yet_rolls_and_a_chat_that_fits_ignores_it() -> None:
    messages = _chat(20)
    assert fit_messages(messages, _count, 200, "summarize") == fit_messages(messages, _count, 200, "rolling")
    assert fit_messages(messages, _count, 10_000, "summarize", Summary("Rivers.", 30)).omitted == ()
