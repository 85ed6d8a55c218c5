"""Remove known secrets (a provider's API key, header values, URL credentials) from text that
leaves the engine: streamed replies, however they are chunked, and error messages, in every
form a secret can take there.

Streams: a server that echoes the key may split it across two chunks, so replacing it in each
chunk lets both halves through. The scrubber holds back only the end of the text that could
still grow into a secret (at most len(secret) - 1 characters, usually none), so the text is not
delayed the way pattern redaction (engine.filters, which holds back a whole window) would
delay it. Only the raw secret is looked for in replies, and only the secrets that are credentials
(a header such as X-Title: Hearth must not eat the word "Hearth" from every answer).

Error text quotes a secret in other shapes: Python's repr ("…abc\\r"), a bytes repr
(b'Bearer …'), JSON escapes, percent-encoding (quote, quote_plus), with its whitespace folded,
or cut at a control character; `forms` lists them and `scrub` replaces every one. Callers scrub
before they shorten a message, so no cut can leave the start of a secret behind.
Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from engine.credentials import looks_secret

__all__ = ["OTHER_MARK", "SECRET_MARK", "SecretScrubber", "forms"]

SECRET_MARK = "[API key]"
OTHER_MARK = "[secret]"
# Very short "secrets" would eat ordinary text: the provider refuses keys under 6 characters;
# error text is scrubbed of anything from 4 (a user name in a URL).
_STREAM_MIN = 6
_ERROR_MIN = 4
_CONTROL_RUN = re.compile(r"[\x00-\x1f\x7f]+")


def forms(secret: str) -> set[str]:
    """Every way `secret` can be spelled in an error message (at least 4 characters long)."""
    out: set[str] = set()
    for s in {secret, secret.strip()}:
        out |= {
            s,
            repr(s)[1:-1],
            repr(s.encode("utf-8", "backslashreplace"))[2:-1],
            json.dumps(s)[1:-1],
            json.dumps(s, ensure_ascii=False)[1:-1],
            quote(s, safe=""),
            quote(s),
            quote_plus(s),
            " ".join(s.split()),
        }
        out |= set(_CONTROL_RUN.split(s))  # a message that keeps one line of it
    return {f for f in out if len(f.strip()) >= _ERROR_MIN}


class SecretScrubber:
    """`secret` (the API key) and `others` (credentials: a URL's password, a key in a header)
    are scrubbed from replies and errors; `errors_only` (every other header value) from errors."""

    def __init__(self, secret: str | None, others: Iterable[str] = (), *, errors_only: Iterable[str] = ()) -> None:
        marked = [(s, SECRET_MARK) for s in [secret] if s] + [(s, OTHER_MARK) for s in others if s]
        streamed = {s: mark for raw, mark in marked for s in {raw, raw.strip()} if len(s) >= _STREAM_MIN}
        # Longest first, so a secret that contains another is replaced whole.
        self._streamed = sorted(streamed.items(), key=lambda item: -len(item[0]))
        in_errors: dict[str, str] = {}
        for raw, mark in [*marked, *((s, OTHER_MARK) for s in errors_only if s)]:
            for form in forms(raw):
                in_errors.setdefault(form, mark)
        self._in_errors = sorted(in_errors.items(), key=lambda item: -len(item[0]))
        self._held = ""

    @classmethod
    def for_request(
        cls, api_key: str | None, headers: Iterable[tuple[str, str]], basic_auth: tuple[str, str] | None
    ) -> SecretScrubber:
        """The scrubber for what one request sends: replies lose the key, the URL's user and
        password and the values of headers that look secret; errors lose every header value too."""
        headers = list(headers)
        user, password = basic_auth or ("", "")
        basic = base64.b64encode(f"{user}:{password}".encode()).decode() if basic_auth else ""
        credentials = [password, user, *(v for h, v in headers if looks_secret(h))]
        return cls(api_key, credentials, errors_only=[basic, *(v for _, v in headers)])

    def feed(self, text: str) -> str:
        """The part of the text seen so far that can be shown, with every secret replaced."""
        if not self._streamed:
            return text
        buf = self._held + text
        for secret, mark in self._streamed:
            buf = buf.replace(secret, mark)
        keep = self._open_prefix(buf)
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """What is still held back (the stream ended: it can no longer become the secret)."""
        held, self._held = self._held, ""
        return held

    def reset(self) -> None:
        self._held = ""

    def reply(self, text: str) -> str:
        """A whole reply at once (one the server replaced): as `feed` would show it, nothing held."""
        for secret, mark in self._streamed:
            text = text.replace(secret, mark)
        return text

    def scrub(self, text: str) -> str:
        """A whole error text at once: every form of every secret."""
        for form, mark in self._in_errors:
            text = text.replace(form, mark)
        return text

    def _open_prefix(self, buf: str) -> int:
        """Length of the longest end of `buf` that is the start of a secret."""
        longest = 0
        for secret, _ in self._streamed:
            for n in range(min(len(buf), len(secret) - 1), longest, -1):
                if secret.startswith(buf[-n:]):
                    longest = n
                    break
        return longest
