"""How long a message Hearth keeps: one limit for every door (the composer, `hearth ask`, import, the API).

MAX_MESSAGE_BYTES is 4 MB of UTF-8. The longest contexts of current models are about a million
tokens, which hold about 4 MB of text: a longer message cannot fit any model, so the prompt can
only leave it out, while it still costs memory and time in every read, search and export. It is
also the API's request body limit (app.server.http.MAX_BODY), so one size holds at every door.

Owns the limit, the words for a message over it (and the store's refusal of one), and the cut
an import makes (the start of the text, at a character boundary, with a note saying where it was
cut). Must not: know the doors.
"""

from __future__ import annotations

from store.errors import StoreError

__all__ = ["MAX_MESSAGE_BYTES", "check_message", "cut_to_limit", "megabytes", "too_long_message"]

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def megabytes(n_bytes: int) -> str:
    """`n_bytes` for a person: "10.5 MB" (as the API's "over 4 MB": 1 MB is 1024 * 1024 bytes)."""
    return f"{n_bytes / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


def _utf8_length(text: str) -> int:
    # An ASCII string is as long in bytes as in characters: no copy of a huge message to count it.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def too_long_message(text: str) -> str | None:
    """What to tell a person whose message is over MAX_MESSAGE_BYTES; None when it is not."""
    if len(text) * 4 <= MAX_MESSAGE_BYTES:  # a character is at most 4 bytes: no need to count
        return None
    size = _utf8_length(text)
    if size <= MAX_MESSAGE_BYTES:
        return None
    return (
        f"This message is {megabytes(size)}; Hearth takes messages up to {megabytes(MAX_MESSAGE_BYTES)}. "
        "Shorten it, or split it into several messages."
    )


def check_message(text: str) -> None:
    """StoreError(empty_message | message_too_long) for a person's message no turn may hold."""
    if not text.strip():
        raise StoreError("empty_message", "The message is empty; type something to send.")
    if (problem := too_long_message(text)) is not None:
        raise StoreError("message_too_long", problem)


def cut_to_limit(text: str) -> str:
    """`text` itself when it is within the limit, else its start with a note saying how long it was."""
    if too_long_message(text) is None:
        return text
    size = _utf8_length(text)
    note = (
        f"\n\n[Hearth cut this message here: it was {megabytes(size)}, and Hearth keeps messages up to "
        f"{megabytes(MAX_MESSAGE_BYTES)}.]"
    )
    room = MAX_MESSAGE_BYTES - len(note.encode("utf-8"))
    # Cut the bytes, then drop a character split in two by the cut.
    head = text.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return head + note
