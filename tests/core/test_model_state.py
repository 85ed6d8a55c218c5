"""The model state the window shows is an enum whose transitions are checked in one place."""

from __future__ import annotations

import pytest

from app.core.model_state import ModelState, check_model_transition
from engine.states import IllegalTransition

S = ModelState


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.NONE, S.LOADING),
        (S.LOADING, S.READY),
        (S.READY, S.GENERATING),
        (S.GENERATING, S.READY),
        (S.LOADING, S.ERROR),
        (S.ERROR, S.LOADING),
        (S.READY, S.NONE),
        (S.NONE, S.GENERATING),
        (S.GENERATING, S.NONE),
        (S.LOADING, S.GENERATING),
        (S.READY, S.ERROR),
    ],
    ids=lambda s: s.value,
)
def test_what_happens_is_allowed(current: ModelState, new: ModelState) -> None:
    assert check_model_transition(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.ERROR, S.READY),
        (S.NONE, S.READY),
        (S.READY, S.READY),
        (S.LOADING, S.LOADING),
    ],
    ids=lambda s: s.value,
)
def test_the_impossible_is_refused(current: ModelState, new: ModelState) -> None:
    """A failed or absent model never turns ready without a load; a non-change is not a transition."""
    with pytest.raises(IllegalTransition, match=f"from {current.value} to {new.value}"):
        check_model_transition(current, new)


def test_states_compare_equal_to_their_stored_words() -> None:
    assert S.READY == "ready" and S("generating") is S.GENERATING
