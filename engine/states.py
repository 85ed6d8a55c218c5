"""The generation state machine: explicit states, and the only transitions allowed between them.

    queued -> streaming -> completed (stop reason)
       |          |------> cancelled (user | timeout)
       |          '------> failed (code)
       '--> cancelled | failed          (stopped or broken before the first token)

    queued | streaming -> interrupted   (found unfinished at start-up after a crash)

The words in brackets are engine.codes' StopReason, CancelReason and FailureCode.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["TERMINAL_STATES", "GenerationState", "IllegalTransition", "check_transition"]


class GenerationState(StrEnum):
    QUEUED = "queued"
    """Rows are saved and the command is on its way to the engine; no token yet."""
    STREAMING = "streaming"
    """The engine is producing tokens; the partial text is checkpointed now and then."""
    COMPLETED = "completed"
    """Finished normally; the full text is saved."""
    CANCELLED = "cancelled"
    """Stopped on request (reason: user or timeout); the text up to the stop is kept."""
    FAILED = "failed"
    """Could not finish (error code and message saved); any partial text is kept."""
    INTERRUPTED = "interrupted"
    """The app died while this was queued or streaming; text up to the last checkpoint kept."""


TERMINAL_STATES = frozenset(
    {
        GenerationState.COMPLETED,
        GenerationState.CANCELLED,
        GenerationState.FAILED,
        GenerationState.INTERRUPTED,
    }
)

_ALLOWED: dict[GenerationState, frozenset[GenerationState]] = {
    GenerationState.QUEUED: frozenset(
        {
            GenerationState.STREAMING,
            GenerationState.CANCELLED,
            GenerationState.FAILED,
            GenerationState.INTERRUPTED,
        }
    ),
    GenerationState.STREAMING: frozenset(
        {
            GenerationState.COMPLETED,
            GenerationState.CANCELLED,
            GenerationState.FAILED,
            GenerationState.INTERRUPTED,
        }
    ),
}


class IllegalTransition(ValueError):
    """A programming error: something tried to move a generation along a forbidden edge."""


def check_transition(current: GenerationState, new: GenerationState) -> GenerationState:
    """Return `new` if `current -> new` is allowed, else raise IllegalTransition."""
    if new not in _ALLOWED.get(current, frozenset()):
        raise IllegalTransition(f"generation cannot go from {current.value} to {new.value}")
    return new
