"""The local model's state as the chat service shows it, and the only transitions allowed.

    none ──> loading ──> ready ──> generating ──> ready
      │         │          │  ^         │
      │         └─> error <┘  └─────────┘        error ──> loading (a new load, or the
      └───────────> generating (a remote turn)             reload after an engine crash)

A turn may start while a load is in progress (it queues behind it) and a remote turn needs
no local model, so generating is reachable from none, loading and error too. What is
refused is the impossible: error or none straight to ready without a load (attaching to another
Hearth process's engine, app.core.engine_share, is this process's load: loading, then ready). A refused
transition is a programming error (IllegalTransition), as for generations (engine/states.py).
"""

from __future__ import annotations

from enum import StrEnum

from engine.states import IllegalTransition

__all__ = ["ModelState", "check_model_transition"]


class ModelState(StrEnum):
    NONE = "none"
    """No local model: nothing loaded yet, or it was unloaded. Remote turns still work."""
    LOADING = "loading"
    """The engine is loading a model (or reloading it after a crash)."""
    READY = "ready"
    """A model is loaded and no answer is streaming."""
    GENERATING = "generating"
    """At least one answer (local or remote) is streaming."""
    ERROR = "error"
    """The last load failed or the engine died; `model_error` says why."""


_ALLOWED: dict[ModelState, frozenset[ModelState]] = {
    ModelState.NONE: frozenset({ModelState.LOADING, ModelState.GENERATING, ModelState.ERROR}),
    ModelState.LOADING: frozenset({ModelState.READY, ModelState.ERROR, ModelState.NONE, ModelState.GENERATING}),
    ModelState.READY: frozenset({ModelState.LOADING, ModelState.GENERATING, ModelState.NONE, ModelState.ERROR}),
    ModelState.GENERATING: frozenset({ModelState.READY, ModelState.LOADING, ModelState.NONE, ModelState.ERROR}),
    ModelState.ERROR: frozenset({ModelState.LOADING, ModelState.NONE, ModelState.GENERATING}),
}


def check_model_transition(current: ModelState, new: ModelState) -> ModelState:
    """Return `new` if `current -> new` is allowed, else raise IllegalTransition."""
    if new not in _ALLOWED[current]:
        raise IllegalTransition(f"the model cannot go from {current.value} to {new.value}")
    return new
