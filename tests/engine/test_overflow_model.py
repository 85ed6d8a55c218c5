"""A conversation pushed past the real model's context keeps answering under its overflow
policy, the prompt sent is what the policy says, and "stop" says which setting would help."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.commands import ChatMessage, Generate, LoadModel, Measure, Sampling, Summary
from engine.context_fit import SUMMARY_HEADER
from engine.events import Failed, Final, Started
from engine.local import LocalModel

N_CTX = 512


@pytest.fixture(scope="module")
def model(model_path: Path) -> Iterator[LocalModel]:
    m = LocalModel(LoadModel(str(model_path), n_ctx=N_CTX, n_threads=1))
    yield m
    m.close()


def _long_chat() -> tuple[ChatMessage, ...]:
    messages = [ChatMessage("system", "You answer in one short sentence.")]
    for t in range(30):
        messages.append(ChatMessage("user", f"Question {t}: tell me one fact about the river number {t}."))
        messages.append(ChatMessage("assistant", f"River {t} flows to the sea past {t} towns and many fields."))
    messages.append(ChatMessage("user", "Which river did we talk about first?"))
    return tuple(messages)


def _generate(model: LocalModel, policy: str) -> list[object]:
    cmd = Generate(1, _long_chat(), dataclasses.replace(Sampling.greedy(8), overflow=policy))
    events: list[object] = []
    model.generate(cmd, threading.Event(), events.append, 0.0)
    return events


@pytest.mark.parametrize("policy", ["rolling", "middle"])
def test_a_chat_past_the_context_keeps_answering_and_sends_what_the_policy_keeps(
    model: LocalModel, policy: str
) -> None:
    messages = _long_chat()
    assert len(model.tokenize_prompt(Generate(1, messages))) > N_CTX  # it does not fit whole
    events = _generate(model, policy)
    started, final = next(e for e in events if isinstance(e, Started)), events[-1]  # after the Reading reports
    assert isinstance(started, Started) and isinstance(final, Final), events
    assert final.stats.completion_tokens > 0
    assert started.omitted and started.prompt_tokens <= N_CTX - 8  # room kept for the answer
    kept = tuple(m for i, m in enumerate(messages) if i not in started.omitted)
    assert started.prompt_tokens == len(model.tokenize_prompt(Generate(1, kept)))  # exactly that prompt
    assert kept[0].role == "system" and kept[-1] == messages[-1] and kept[1].role == "user"
    if policy == "middle":
        assert kept[1:3] == messages[1:3] and started.omitted[0] == 3  # the first exchange stays
    else:
        assert started.omitted == tuple(range(1, 1 + len(started.omitted)))  # the oldest turns


def test_summarize_sends_the_summary_in_place_of_what_it_covers_and_the_meter_counts_it(model: LocalModel) -> None:
    messages = _long_chat()
    summary = Summary("We talked about rivers 0 to 19: each flows to the sea past towns and fields.", 40)
    cmd = Generate(1, messages, dataclasses.replace(Sampling.greedy(8), overflow="summarize"), summary=summary)
    events: list[object] = []
    model.generate(cmd, threading.Event(), events.append, 0.0)
    started, final = next(e for e in events if isinstance(e, Started)), events[-1]
    assert isinstance(started, Started) and isinstance(final, Final), events
    assert set(range(1, 41)) <= set(started.omitted)  # the 40 covered messages are not sent
    kept = [m for i, m in enumerate(messages) if i not in started.omitted]
    sent = (ChatMessage("system", f"{messages[0].content}\n\n{SUMMARY_HEADER}\n{summary.text}"), *kept[1:])
    assert started.prompt_tokens == len(model.tokenize_prompt(Generate(1, sent)))  # exactly that prompt
    measured = model.measure(Measure(7, messages, cmd.sampling, summary))
    assert measured.left_out == started.omitted and measured.summary_tokens > 10


def test_stop_refuses_and_names_the_setting_that_helps(model: LocalModel) -> None:
    events = _generate(model, "stop")
    assert len(events) == 1 and isinstance(events[0], Failed) and events[0].code == "context_full"
    assert "When the chat outgrows the context" in events[0].message


def test_a_single_message_longer_than_the_context_says_so(model: LocalModel) -> None:
    cmd = Generate(1, (ChatMessage("user", "rivers and seas " * 400),), Sampling.greedy(8))
    events: list[object] = []
    model.generate(cmd, threading.Event(), events.append, 0.0)
    assert len(events) == 1 and isinstance(events[0], Failed) and events[0].code == "context_full"
    assert "Your message is too long for the model's context of 512 tokens" in events[0].message


def test_a_chat_past_its_context_limit_answers_and_names_what_the_model_did_not_see(
    model_path: Path, tmp_path: Path
) -> None:
    """Through the chat service and the engine process: three long turns in a 256-token chat.
    The third answers (rolling window, the default); the turn names the first exchange as left
    out; nothing saved is deleted."""
    import asyncio

    from app.core.chat_service import ChatService
    from app.core.chat_settings import ChatSettings
    from engine.client import AsyncEngine
    from engine.states import GenerationState
    from store import Store

    loop = asyncio.new_event_loop()
    store = Store.open(tmp_path / "hearth.db")
    engine = AsyncEngine()
    service = ChatService(store, engine)
    settings = ChatSettings(temperature=0.0, max_tokens=8, context_length=256)
    long = "Tell me about rivers. " + "The river runs to the sea past towns and fields. " * 8
    try:
        loop.run_until_complete(service.load(str(model_path), n_ctx=2048))

        async def ask(conversation_id: int | None) -> tuple[object, frozenset[int], int]:
            turn = await service.start_turn(conversation_id, long, settings=settings)
            out: frozenset[int] = frozenset()
            async for event in turn:
                if isinstance(event, Started):
                    out = turn.out_of_view(event)
            await turn.saved
            return turn.outcome, out, turn.ids.conversation_id

        _, seen, cid = loop.run_until_complete(ask(None))
        assert seen == frozenset()
        _, seen, _ = loop.run_until_complete(ask(cid))
        third, seen, _ = loop.run_until_complete(ask(cid))
        assert third.state is GenerationState.COMPLETED  # type: ignore[attr-defined]
        assert {0, 1} <= seen and 4 not in seen  # the oldest turns, never the new question
        assert len(store.reads.messages(cid)) == 6  # every message is still saved
        # The context meter asks the engine process: this chat's path and a draft, as the next turn.
        history = [ChatMessage(m.role, m.content) for m in store.reads.messages(cid)]
        use = loop.run_until_complete(service.measure(history, "And lakes?", settings))
        meter = use.measured
        assert not meter.error and meter.n_ctx == 256 and meter.prompt_tokens > 256
        assert meter.omitted >= 2 and {0, 1} <= use.out_of_view  # the oldest turns would be left out again
        fresh = loop.run_until_complete(service.measure([], "Hi", settings)).measured
        assert 0 < fresh.prompt_tokens < 64 and fresh.omitted == 0
    finally:
        engine.close()
        store.close()
        loop.close()


def _turn(model: LocalModel, key: int, messages: tuple[ChatMessage, ...]) -> Started:
    events: list[object] = []
    model.generate(Generate(key, messages, Sampling.greedy(6), cache_key=key), threading.Event(), events.append, 0.0)
    assert isinstance(events[0], Started) and isinstance(events[-1], Final), events
    return events[0]


def test_switching_to_another_chat_and_back_does_not_read_the_first_again(model: LocalModel) -> None:
    """Chat 1, then chat 2, then chat 1 again: its KV cache comes back, so only its new
    message is read (cached tokens ≈ the history); without the saved state it was all read."""
    first = (ChatMessage("user", "Tell me about rivers. " + "Rivers run to the sea past many towns. " * 6),)
    other = (ChatMessage("system", "You are a poet."), ChatMessage("user", "A haiku about snow, please."))
    one = _turn(model, 101, first)
    _turn(model, 202, other)
    again = _turn(model, 101, (*first, ChatMessage("assistant", "They do."), ChatMessage("user", "And lakes?")))
    assert again.cached_tokens >= one.prompt_tokens - 1  # the first chat's prompt was not read again
    assert len(model._conversations.saved) == 1  # chat 2's state waits for its next turn


def test_a_long_prompt_reports_its_reading_progress_chunk_by_chunk(model: LocalModel) -> None:
    from engine.events import Reading

    model._llm.reset()
    cmd = Generate(1, (ChatMessage("user", "Summarise: " + "rivers and lakes and seas " * 80),), Sampling.greedy(4))
    total = len(model.tokenize_prompt(cmd))
    assert total > 256
    events: list[object] = []
    model.generate(cmd, threading.Event(), events.append, 0.0)
    reads = [e for e in events if isinstance(e, Reading)]
    started = next(i for i, e in enumerate(events) if isinstance(e, Started))
    assert reads and all(events.index(r) < started for r in reads)  # all before the answer starts
    assert [r.done for r in reads] == sorted(r.done for r in reads) and reads[-1].done == total
    assert all(r.total == total for r in reads)


@pytest.mark.parametrize("policy", ["stop", "rolling"])
def test_the_meter_refuses_exactly_the_turns_the_engine_refuses(model: LocalModel, policy: str) -> None:
    """engine.context_fit.refused on a measurement (what the window's Send obeys) agrees with the
    generator, on prompts on both sides of the edge of the context, with and without earlier turns
    to leave out."""
    from engine.context_fit import refused

    limit = 128
    sampling = dataclasses.replace(Sampling.greedy(2), overflow=policy, context_limit=limit)
    earlier = (ChatMessage("user", "Name a river."), ChatMessage("assistant", "The Nile flows north to the sea."))
    outcomes: set[tuple[int, bool]] = set()
    for before in ((), earlier):
        for k in range(40, 140):
            messages = (*before, ChatMessage("user", "Count these: " + "word " * k))
            measured = model.measure(Measure(0, messages, sampling))
            if not limit - 4 <= measured.prompt_tokens <= limit + 2:
                continue
            events: list[object] = []
            model.generate(Generate(1, messages, sampling), threading.Event(), events.append, 0.0)
            engine_refused = isinstance(events[-1], Failed) and events[-1].code == "context_full"
            assert refused(measured.prompt_tokens, measured.n_ctx, policy, measured.omitted >= 0) == engine_refused, (
                before,
                measured,
                events[-1],
            )
            outcomes.add((len(before), engine_refused))
    assert (0, True) in outcomes and (0, False) in outcomes  # both sides of the edge were tried
    assert ((2, True) in outcomes) == (policy == "stop")  # "rolling" leaves the earlier turn out instead
