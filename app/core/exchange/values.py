"""What the readers of each format hand the importer, and the checks they share.

`Incoming` is one conversation ready for the store (with its dedup key, the messages left
out, by reason, and what was mended on the way); `Rejected` is one that cannot be imported,
with why. Text from a file is untrusted: lone surrogates (valid in JSON, not in UTF-8) become
U+FFFD, times must be real dates, titles are one line of at most TITLE_MAX characters, and of
its settings only those a person could have chosen are kept (`importable_settings`): a file
never picks a conversation's provider, nor its import key (the importer derives that from the
file's content), which would let it pass for a later real import.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from app.core.chat_settings import CHAT_KEY, ChatSettings
from store.exchange import ExchangeConversation

__all__ = ["Incoming", "Rejected", "clean_text", "clean_title", "importable_settings", "public_settings", "time_of"]

TITLE_MAX = 200  # as store.conversations.TITLE_MAX: a title a person could have typed
_SURROGATE = re.compile("[\ud800-\udfff]")
_LATEST = 4102444800.0  # 2100-01-01: a later "time" is a broken file, not a date
# Settings hold provider names, models and a provider's conversation id; these are never
# meant to be there, and an export must not carry them if something put them there.
_SECRET = re.compile(
    r"(api[_-]?key|secret|passw(or)?d|authori[sz]ation|bearer|credential|cookie|(^|[_:-])token$)", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A conversation read from a file, ready to import under `key` (its dedup key)."""

    conversation: ExchangeConversation
    key: str
    messages_skipped: Counter[str] = field(default_factory=Counter)
    repaired: str = ""  # what was wrong with it and how it was mended, for a person ("" : nothing)


@dataclass(frozen=True, slots=True)
class Rejected:
    """A conversation in the file that cannot be imported, and why (for a person)."""

    title: str
    reason: str
    broken: bool = True  # False: nothing wrong with the file (empty, or already imported)


def clean_text(value: str) -> str:
    """`value` as valid UTF-8 text: a lone surrogate (JSON allows "\\ud800") becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", value)


def clean_title(value: object, fallback: str) -> str:
    if not isinstance(value, str):
        return fallback
    title = " ".join(clean_text(value).split())
    if len(title) > TITLE_MAX:
        title = title[: TITLE_MAX - 1].rstrip() + "…"
    return title or fallback


def time_of(value: object) -> float | None:
    """A unix time in seconds from a file, or None when it is missing or not a plausible date."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    t = float(value)
    return t if math.isfinite(t) and 0 <= t < _LATEST else None


def public_settings(settings: dict[str, object]) -> dict[str, object]:
    """The settings without anything named like a secret (see _SECRET)."""
    return {k: v for k, v in settings.items() if not _SECRET.search(k)}


def importable_settings(settings: object) -> dict[str, object]:
    """What of a file's settings an imported conversation keeps: the chat settings a person sets
    in the window or with `hearth ask` (system prompt, sampling, context, overflow), each field
    checked as there and left out when it does not pass. Everything else is Hearth's own
    bookkeeping or a route (provider, model, a provider's session, the import key) and is dropped."""
    raw = settings.get(CHAT_KEY) if isinstance(settings, dict) else None
    if not isinstance(raw, dict):
        return {}
    chat, bad = ChatSettings.from_dict(raw)
    kept = {name: value for name, value in chat.to_dict().items() if name in raw and name not in bad}
    return {CHAT_KEY: kept} if kept else {}
