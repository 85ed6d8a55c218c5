"""The context meter and the generator never disagree: for any chat (any roles, lengths and
text, messages longer than the context, system prompts, every overflow policy, context limit and
Max tokens), what `LocalModel.measure` reports is what `LocalModel.generate` then does: the same
prompt tokens, the same messages left out, the same refusal (engine.context_fit.refused, which
the window's Send obeys). Real model, its real tokenizer and chat template.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf_corpus import STRING, enc_kv, enc_str, layout_of, rebuild, write_model
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_tool_calls_local import QWEN25
from test_tool_grammar import TOOLS

from engine.commands import ChatMessage, Generate, LoadModel, Measure, Sampling, Summary, ToolSpec
from engine.context_fit import OVERFLOW_POLICIES, SUMMARY_HEADER, prompt_budget, refused
from engine.events import Failed, Measured, Started
from engine.local import LocalModel

N_CTX = 512
# Past any context here by their bytes alone: counted by the bound, never tokenized (engine.prompt_size).
HUGE = ("lorem ipsum dolor sit amet " * 2500, "日本語のテキスト" * 6000, "x" * 70_000)

_short = st.text(st.characters(codec="utf-8"), max_size=120)  # any text a person can type
_long = st.builds(
    lambda piece, n: piece * n, st.sampled_from(["word ", "é", "日本語 ", "🙂", "\n"]), st.integers(1, 400)
)  # around the edge of the context
_text = st.one_of(_short, _long, st.sampled_from(HUGE))
_message = st.builds(ChatMessage, st.sampled_from(["user", "assistant", "system"]), _text)
_chat = st.builds(
    lambda system, middle, last: (*system, *middle, last),
    st.lists(st.builds(ChatMessage, st.just("system"), st.one_of(_short, _short, _long)), max_size=1),
    st.lists(_message, max_size=14),
    # The new message (the draft the meter measures): mostly one that can fit after the others.
    st.builds(ChatMessage, st.just("user"), st.one_of(_short, _short, _short, _long, st.sampled_from(HUGE))),
)
_sampling = st.builds(
    lambda policy, limit, max_tokens: dataclasses.replace(
        Sampling.greedy(max_tokens), overflow=policy, context_limit=limit
    ),
    st.sampled_from(OVERFLOW_POLICIES),
    st.one_of(st.just(0), st.integers(32, N_CTX + 64)),  # 0 and past the model's: the model's context
    st.one_of(st.integers(1, 8), st.integers(1, 2 * N_CTX)),
)
_summary = st.one_of(st.none(), st.builds(Summary, st.text(min_size=1, max_size=200), st.integers(0, 12)))


@pytest.fixture(scope="module")
def model(model_path: Path) -> Iterator[LocalModel]:
    m = LocalModel(LoadModel(str(model_path), n_ctx=N_CTX, n_threads=1))
    yield m
    m.close()


def _generate(model: LocalModel, cmd: Generate) -> list[object]:
    """The generator's events up to its answer's first token (stopped there: only the prompt matters)."""
    cancel = threading.Event()
    events: list[object] = []

    def emit(event: object) -> None:
        events.append(event)
        if isinstance(event, Started):
            cancel.set()

    model.generate(cmd, cancel, emit, 0.0)
    return events


def _sent(
    messages: tuple[ChatMessage, ...], omitted: tuple[int, ...], summary: Summary | None, measured: Measured
) -> tuple[ChatMessage, ...]:
    """What the prompt held, read from the indices left out (and the summary sent for them)."""
    kept = tuple(m for i, m in enumerate(messages) if i not in omitted)
    if not measured.summary_tokens:
        return kept
    assert summary is not None
    note = f"{SUMMARY_HEADER}\n{summary.text.strip()}"
    if kept[0].role == "system":
        return (ChatMessage("system", f"{kept[0].content}\n\n{note}"), *kept[1:])
    return (ChatMessage("system", note), *kept)


# Hypothesis warns when it writes out a generated chat of over 30 kB (it does so to report it):
# long chats are what this test is about, and the warning is not a failure of the rule.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(messages=_chat, sampling=_sampling, summary=_summary)
# A prompt of 131 tokens in a context of 132 under "stop" with Max tokens 1: the generator once sent
# it (within its budget) while the meter refused it (no room for two tokens).
@example(
    messages=(ChatMessage("user", "word " * 100),),
    sampling=dataclasses.replace(Sampling.greedy(1), overflow="stop", context_limit=132),
    summary=None,
)
@example(
    messages=(
        ChatMessage("system", "Be brief."),
        ChatMessage("user", HUGE[0]),
        ChatMessage("assistant", "ok"),
        ChatMessage("user", "And now?"),
    ),
    sampling=Sampling.greedy(8),
    summary=None,
)
def test_what_the_meter_reports_is_what_the_generator_sends(
    model: LocalModel, messages: tuple[ChatMessage, ...], sampling: Sampling, summary: Summary | None
) -> None:
    _agree(model, messages, sampling, summary)


@pytest.fixture(scope="module")
def tool_model(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalModel]:
    """The bundled model with Qwen 2.5's template in its file: one that renders the tools offered."""
    lay = layout_of(model_path)
    source = enc_kv("tokenizer.chat_template", STRING, enc_str(QWEN25))
    path = write_model(
        tmp_path_factory.mktemp("meter") / "qwen-style.gguf",
        *rebuild(lay, replace={"tokenizer.chat_template": source}),
        source=lay,
    )
    m = LocalModel(LoadModel(str(path), n_ctx=N_CTX, n_threads=1))
    yield m
    m.close()


@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    messages=_chat,
    sampling=_sampling,
    tools=st.lists(st.sampled_from(TOOLS), min_size=1, max_size=3, unique=True).map(tuple),
    choice=st.sampled_from(["auto", "none", "required", "first"]),
)
# Tools that take more room than a short chat: without them counted, the meter said it fits.
@example(
    messages=(ChatMessage("user", "word " * 60),),
    sampling=dataclasses.replace(Sampling.greedy(8), overflow="stop", context_limit=300),
    tools=TOOLS,
    choice="required",
)
def test_the_meter_counts_the_tools_as_the_generator_sends_them(
    tool_model: LocalModel,
    messages: tuple[ChatMessage, ...],
    sampling: Sampling,
    tools: tuple[ToolSpec, ...],
    choice: str,
) -> None:
    tool_choice = tools[0].name if choice == "first" else choice
    _agree(tool_model, messages, sampling, None, tools, tool_choice)


def _agree(
    model: LocalModel,
    messages: tuple[ChatMessage, ...],
    sampling: Sampling,
    summary: Summary | None,
    tools: tuple[ToolSpec, ...] = (),
    tool_choice: str = "auto",
) -> None:
    measured = model.measure(Measure(0, messages, sampling, summary, tools, tool_choice))
    assert not measured.error
    events = _generate(model, Generate(1, messages, sampling, summary=summary, tools=tools, tool_choice=tool_choice))
    last = events[-1]
    meter_refuses = refused(measured.prompt_tokens, measured.n_ctx, sampling.overflow, measured.omitted >= 0)
    generator_refuses = isinstance(last, Failed) and last.code == "context_full"
    assert meter_refuses == generator_refuses, (measured, last)
    if generator_refuses:
        assert isinstance(last, Failed)
        if sampling.overflow == "stop":  # it names the count the meter showed
            assert f"{measured.prompt_tokens:,} tokens" in last.message, (measured, last)
        return
    started = next(e for e in events if isinstance(e, Started))
    assert started.omitted == measured.left_out, (measured, started)
    if measured.omitted <= 0:  # the whole chat is sent: exactly what the meter counted
        assert started.omitted == () and started.prompt_tokens == measured.prompt_tokens, (measured, started)
        return
    assert measured.omitted == len(started.omitted)
    budget = prompt_budget(measured.n_ctx, sampling.max_tokens)
    assert started.prompt_tokens <= budget < measured.prompt_tokens  # left out only to fit the budget
    sent = _sent(messages, started.omitted, summary, measured)
    again = model.measure(
        Measure(0, sent, sampling, tools=tools, tool_choice=tool_choice)
    )  # the kept prompt, counted by the meter
    assert again.omitted == 0 and again.prompt_tokens == started.prompt_tokens, (again, started)
