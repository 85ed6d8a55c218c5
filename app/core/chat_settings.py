"""One conversation's settings: the system prompt and how its answers are sampled.

`ChatSettings` is a frozen value with its ranges, checked in one place (`problems`), turned
into the engine's `Sampling` (`to_sampling`) and kept in the conversation's settings under
one key, "chat" (`to_settings` / `from_settings`), beside the route's keys, which it never
touches. Reading is tolerant: a damaged or hand-edited value falls back field by field to
the defaults and says which, so an old database never stops a chat from opening.

No Qt, no store, no files (app.core.presets keeps named presets on disk).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from app.core.errors import InputError
from engine.commands import Sampling

__all__ = [
    "CHAT_KEY",
    "FIELD_LABELS",
    "LIMITS",
    "MAX_SYSTEM_PROMPT",
    "OVERFLOW_CHOICES",
    "ChatSettings",
    "context_note",
]

CHAT_KEY = "chat"  # the conversation settings' key that holds these
MAX_SYSTEM_PROMPT = 32_000  # characters: far above any real instruction, far below a pasted book
MAX_TOKENS = 1 << 20  # the largest context llama.cpp is asked for (app.core.settings.MAX_CONTEXT)
MIN_CONTEXT = 256

# (lowest, highest) for the numeric fields; the window's spin boxes take their ranges from here.
LIMITS: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 5.0),
    "top_p": (0.0, 1.0),  # above 0: 0 would keep no token at all
    "max_tokens": (1, MAX_TOKENS),
    "repeat_penalty": (1.0, 2.0),
    "context_length": (0, MAX_TOKENS),  # 0: all of the model's context; else at least MIN_CONTEXT
}

FIELD_LABELS = {
    "system_prompt": "System prompt",
    "temperature": "Temperature",
    "top_p": "Top-p",
    "max_tokens": "Max tokens",
    "repeat_penalty": "Repeat penalty",
    "context_length": "Context length",
    "overflow": "When the chat outgrows the context",
}

# What a chat does when its conversation no longer fits the context (engine.context_fit).
OVERFLOW_CHOICES = {
    "rolling": "Leave out the oldest turns",
    "middle": "Keep the first exchange and the latest turns",
    "summarize": "Summarize the oldest turns (in the background)",
    "stop": "Stop and say so",
}


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What one chat sends with every turn (also edits, regenerations and Continue).

    The defaults suit small local models: a mild repeat penalty (1.1, over llama.cpp's last
    64 tokens) stops the bundled SmolLM2-135M from looping on one line, which it does at 1.0.
    """

    system_prompt: str = ""  # "" : the model's own default, if its template has one
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 512
    repeat_penalty: float = 1.1
    # A cap on how much of the loaded model's context this chat's prompt and answer may use;
    # 0: all of it. It never exceeds the model's context: the model is not reloaded for it.
    context_length: int = 0
    # "rolling" (the default: a chat never dies of its length), "middle" or "stop".
    overflow: str = "rolling"

    # -- checks ------------------------------------------------------------------------
    def problems(self, *, model_context: int | None = None) -> dict[str, str]:
        """Field name -> what is wrong with it, in words for a person ({} when all is well).
        `model_context`: the loaded model's context, which `context_length` may not exceed."""
        out: dict[str, str] = {}
        prompt = self.system_prompt
        if not isinstance(prompt, str):
            out["system_prompt"] = "The system prompt must be text."
        elif len(prompt) > MAX_SYSTEM_PROMPT:
            out["system_prompt"] = (
                f"The system prompt is {len(prompt):,} characters; the most is {MAX_SYSTEM_PROMPT:,}. Shorten it."
            )
        elif not _utf8(prompt):
            out["system_prompt"] = "The system prompt holds characters that are not valid text (broken UTF-8)."
        if self.overflow not in OVERFLOW_CHOICES:
            out["overflow"] = (
                f"{FIELD_LABELS['overflow']} must be one of {', '.join(OVERFLOW_CHOICES)} (got {self.overflow!r})."
            )
        for name, problem in ((n, _range_problem(n, getattr(self, n))) for n in LIMITS):
            if problem:
                out[name] = problem
        if "context_length" not in out and model_context and self.context_length > model_context:
            out["context_length"] = (
                f"Context length {self.context_length:,} is more than the model's context "
                f"({model_context:,} tokens): a chat can use at most what the model was "
                "loaded with. Lower it, or load the model with a longer context."
            )
        return out

    def checked(self, *, model_context: int | None = None) -> ChatSettings:
        """These settings, or InputError saying everything that is wrong with them."""
        problems = self.problems(model_context=model_context)
        if problems:
            raise InputError("bad_chat_settings", " ".join(problems.values()))
        return self

    # -- use -----------------------------------------------------------------------------
    def to_sampling(self, *, seed: int | None = None) -> Sampling:
        """The engine's sampling for one turn (top-k and min-p stay llama.cpp's usual values)."""
        base = Sampling() if seed is None else Sampling(seed=seed)
        return dataclasses.replace(
            base,
            temperature=float(self.temperature),
            top_p=float(self.top_p),
            max_tokens=int(self.max_tokens),
            repeat_penalty=float(self.repeat_penalty),
            context_limit=int(self.context_length),
            overflow=self.overflow,
        )

    def replace(self, **changes: object) -> ChatSettings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    # -- kept in the conversation's settings ---------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def to_settings(self) -> dict[str, object]:
        """What `Store.update_conversation_settings` merges: one key, the route's keys untouched."""
        return {CHAT_KEY: self.to_dict()}

    @classmethod
    def from_dict(cls, raw: object, *, base: ChatSettings | None = None) -> tuple[ChatSettings, list[str]]:
        """Settings from a stored dict, and the names of fields that could not be used (each
        falls back to `base`'s value, by default the built-in defaults). Never raises."""
        base = base or cls()
        if not isinstance(raw, Mapping):
            return base, ([] if raw is None else ["all"])
        values: dict[str, object] = {}
        bad: list[str] = []
        for f in dataclasses.fields(cls):
            if f.name not in raw:
                continue
            value = _coerce(f.name, raw[f.name])
            if value is None or cls(**{f.name: value}).problems():  # type: ignore[arg-type]
                bad.append(f.name)
            else:
                values[f.name] = value
        return dataclasses.replace(base, **values), bad  # type: ignore[arg-type]

    @classmethod
    def from_settings(
        cls, settings: Mapping[str, object], *, base: ChatSettings | None = None
    ) -> tuple[ChatSettings, list[str]]:
        """A conversation's chat settings (`base` where it has none saved), and the fields that
        could not be read."""
        return cls.from_dict(settings.get(CHAT_KEY), base=base)


def context_note(context_length: int, model_context: int | None) -> str:
    """How much context this chat uses, in words ("" when nothing needs saying)."""
    if not model_context:
        return ""
    if not context_length:
        return f"All of the model's context: {model_context:,} tokens."
    if context_length > model_context:
        return (
            f"The model is loaded with {model_context:,} tokens, less than this chat's {context_length:,}: "
            f"it uses {model_context:,}."
        )
    return f"{context_length:,} of the model's {model_context:,} tokens."


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _range_problem(name: str, value: object) -> str:
    label = FIELD_LABELS[name]
    low, high = LIMITS[name]
    integer = name in ("max_tokens", "context_length")
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        return f"{label} must be {'a whole number' if integer else 'a number'}."
    if not math.isfinite(value):
        return f"{label} must be a number (not {value})."
    if name == "context_length":
        if value != 0 and not MIN_CONTEXT <= value <= high:
            return (
                f"Context length must be 0 (all of the model's context) or between {MIN_CONTEXT} and "
                f"{int(high):,} tokens (got {value:,})."
            )
        return ""
    if name == "top_p" and not low < value <= high:
        return f"Top-p must be above 0 and at most 1 (got {value:g})."
    if not low <= value <= high:
        shown = f"{value:,}" if integer else f"{value:g}"
        span = f"{int(low):,} and {int(high):,}" if integer else f"{low:g} and {high:g}"
        extra = " (1.0 turns it off)" if name == "repeat_penalty" else ""
        return f"{label} must be between {span}{extra} (got {shown})."
    return ""


def _coerce(name: str, value: object) -> object | None:
    """A stored value of the field's type, or None: JSON has one number type, and a hand edit
    may write 512.0 for 512 or 1 for 1.0."""
    if name in ("system_prompt", "overflow"):
        return value if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if name in ("max_tokens", "context_length"):
        if isinstance(value, float):
            return int(value) if value.is_integer() else None
        return value
    return float(value)
