"""The root of every error Hearth shows a person, and the engine's own.

`HearthError` lives here, in the lowest layer, so that the store and the app can subclass
it; the whole tree is drawn in app/core/errors.py. The engine's part:

    HearthError                 code (stable, stored and tested) + message (for a person)
     └── EngineError
          ├── ModelLoadError      the model file is missing, unreadable, not GGUF, or llama.cpp refused it
          ├── EngineUnavailable   the engine process is gone or no model is loaded
          ├── TemplateTooCostly   a chat template went past a limit on time, size or memory
                                  (defined in engine.template_limits, beside the limits)
          └── WireFormatError     a declared wire format (engine/wire_formats.toml or a custom file) is
                                  malformed (defined in engine.wire, beside the formats it checks)

Every class in the tree is built the same way: `SomeError(code, message, *, context)`: the
stable code first, then the sentence for a person, and anything more (a provider and field, a
format name, an HTTP status) keyword-only. A class with a single code still takes it, so that a
code found in a log or a test leads to the line that raised it.

Programming errors stay ordinary exceptions: nothing catches them to relabel or retry them.
"""

from __future__ import annotations

__all__ = ["EngineError", "EngineUnavailable", "HearthError", "ModelLoadError"]


class HearthError(Exception):
    """A problem a person can act on: `code` is stable (safe to branch on and to store),
    `message` is written for a person and is also what `str()` gives."""

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class EngineError(HearthError):
    """Base of the errors the engine reports to people."""


class ModelLoadError(EngineError):
    """A model could not be loaded; the message names the file and the problem."""


class EngineUnavailable(EngineError):
    """The engine cannot take work: it died, or has no model loaded."""
