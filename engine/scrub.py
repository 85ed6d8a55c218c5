"""Remove a known secret (a provider's API key) from streamed text, however it is chunked.

A server that echoes the key may split it across two chunks, so replacing it in each chunk
lets both halves through. The scrubber holds back only the end of the text that could still
grow into the secret (at most len(secret) - 1 characters, usually none), so the text is not
delayed the way pattern redaction (engine.filters, which holds back a whole window) would
delay it. Pure: no I/O.
"""

from __future__ import annotations

__all__ = ["SECRET_MARK", "SecretScrubber"]

SECRET_MARK = "[API key]"


class SecretScrubber:
    def __init__(self, secret: str | None) -> None:
        # Very short "secrets" would eat ordinary text; the provider refuses keys under 6 chars.
        self._secret = secret if secret and len(secret) >= 6 else None
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of the text seen so far that can be shown, with every secret replaced."""
        if self._secret is None:
            return text
        buf = (self._held + text).replace(self._secret, SECRET_MARK)
        keep = self._open_prefix(buf)
        self._held = buf[len(buf) - keep:] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """What is still held back (the stream ended: it can no longer become the secret)."""
        held, self._held = self._held, ""
        return held

    def reset(self) -> None:
        self._held = ""

    def scrub(self, text: str) -> str:
        """A whole text at once (an error message, a replaced reply)."""
        return text.replace(self._secret, SECRET_MARK) if self._secret else text

    def _open_prefix(self, buf: str) -> int:
        """Length of the longest end of `buf` that is the start of the secret."""
        assert self._secret is not None
        for n in range(min(len(buf), len(self._secret) - 1), 0, -1):
            if self._secret.startswith(buf[-n:]):
                return n
        return 0
