"""Deltas joined per frame (engine.coalesce): fewer events, the same text, tokens and order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.coalesce import DeltaCoalescer
from engine.events import Delta, Final, GenerationStats, Started, StreamEvent

_STATS = GenerationStats(1, 0, 3, 1.0, 1.0, 1.0, 1.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _joiner(interval: float = 0.016) -> tuple[DeltaCoalescer, list[StreamEvent], _Clock]:
    out: list[StreamEvent] = []
    clock = _Clock()
    return DeltaCoalescer(out.append, interval, clock), out, clock


def test_the_first_text_goes_at_once_then_text_within_a_frame_waits_for_the_next_token() -> None:
    j, out, clock = _joiner()
    j.emit(Delta(1, "Once", 1))
    assert out == [Delta(1, "Once", 1)]  # time to first token is not delayed
    clock.now += 0.005
    j.emit(Delta(1, " upon", 1))
    clock.now += 0.005
    j.emit(Delta(1, " a", 1))
    assert len(out) == 1  # two tokens within the frame: held
    clock.now += 0.010  # 20 ms after the last send
    j.emit(Delta(1, " time", 1))
    assert out[-1] == Delta(1, " upon a time", 3)


def test_an_empty_first_delta_does_not_hold_back_the_first_text() -> None:
    j, out, clock = _joiner()
    j.emit(Delta(1, "", 1))  # a token whose bytes are half a character
    clock.now += 0.001
    j.emit(Delta(1, "é", 1))
    assert [d.text for d in out if isinstance(d, Delta)] == ["", "é"]


def test_slow_tokens_go_one_by_one() -> None:
    j, out, clock = _joiner()
    for word in ("a", "b", "c"):
        j.emit(Delta(1, word, 1))
        clock.now += 0.050  # a big model: 20 tokens/s
    assert out == [Delta(1, "a", 1), Delta(1, "b", 1), Delta(1, "c", 1)]


def test_the_end_sends_what_was_held_first() -> None:
    j, out, clock = _joiner()
    j.emit(Delta(1, "Hi", 1))
    clock.now += 0.001
    j.emit(Delta(1, " there", 1))
    j.emit(Final(1, "eog", _STATS))
    assert out == [Delta(1, "Hi", 1), Delta(1, " there", 1), Final(1, "eog", _STATS)]


def test_a_change_of_channel_is_never_joined() -> None:
    j, out, clock = _joiner()
    j.emit(Delta(1, "think", 1, "reasoning"))
    clock.now += 0.001
    j.emit(Delta(1, " more", 1, "reasoning"))
    clock.now += 0.001
    j.emit(Delta(1, "Answer", 1, "answer"))
    j.flush()
    assert out == [
        Delta(1, "think", 1, "reasoning"),
        Delta(1, " more", 1, "reasoning"),
        Delta(1, "Answer", 1, "answer"),
    ]


def test_a_replacing_delta_passes_alone_after_the_held_text() -> None:
    j, out, clock = _joiner()
    j.emit(Delta(1, "bad", 1))
    clock.now += 0.001
    j.emit(Delta(1, " words", 1))
    j.emit(Delta(1, "clean", 0, replace=True))
    assert out == [Delta(1, "bad", 1), Delta(1, " words", 1), Delta(1, "clean", 0, replace=True)]


def test_other_events_pass_in_order() -> None:
    j, out, _clock = _joiner()
    j.emit(Started(1, 5, 0))
    j.emit(Delta(1, "x", 1))
    assert out == [Started(1, 5, 0), Delta(1, "x", 1)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=4), st.integers(0, 2), st.sampled_from(["answer", "reasoning"]), st.floats(0, 0.04)),
        max_size=40,
    )
)
def test_any_stream_keeps_its_text_tokens_and_channels(deltas: list[tuple[str, int, str, float]]) -> None:
    j, out, clock = _joiner()
    for text, tokens, channel, gap in deltas:
        clock.now += gap
        j.emit(Delta(1, text, tokens, channel))  # type: ignore[arg-type]
    j.emit(Final(1, "eog", _STATS))
    sent = [e for e in out if isinstance(e, Delta)]
    assert len(sent) <= len(deltas)
    assert isinstance(out[-1], Final)
    for channel in ("answer", "reasoning"):
        assert "".join(d.text for d in sent if d.channel == channel) == "".join(
            t for t, _n, c, _g in deltas if c == channel
        )
    assert sum(d.tokens for d in sent) == sum(n for _t, n, _c, _g in deltas)
    # channel runs stay in order: the sequence of channels, runs merged, is the same
    runs = [c for i, (_t, _n, c, _g) in enumerate(deltas) if i == 0 or deltas[i - 1][2] != c]
    sent_runs = [d.channel for i, d in enumerate(sent) if i == 0 or sent[i - 1].channel != d.channel]
    assert sent_runs == runs
