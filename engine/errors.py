"""Errors a person can act on.

    HearthEngineError
     ├── ModelLoadError      the model file is missing, unreadable, not GGUF, or llama.cpp refused it
     ├── EngineUnavailable   the engine process is gone or no model is loaded
     └── WireFormatError     a declared wire format (engine/wire_formats.toml or a custom file) is malformed
                             (defined in engine.wire, beside the formats it checks)

Each carries a stable `code` (stored and tested) and a `message` written for a person.
Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

__all__ = ["EngineUnavailable", "HearthEngineError", "ModelLoadError"]


class HearthEngineError(Exception):
    """Base of the errors the engine reports to people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ModelLoadError(HearthEngineError):
    """A model could not be loaded; the message names the file and the problem."""


class EngineUnavailable(HearthEngineError):
    """The engine cannot take work: it died, or has no model loaded."""
