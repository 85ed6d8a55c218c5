"""What a credential sent in an HTTP header may hold, and the words for why one cannot be sent.

A key copied from a .env file with Windows line endings ends in "\\r"; one pasted across two
lines holds "\\n". httpx (h11) refuses such a header with an error that quotes the whole value
("Illegal header value b'Bearer sk-…\\r'"), so Hearth looks first and names the field instead.
The same words serve where a credential is set (the CLI, the Providers window) and just before
it is sent (a key from an environment variable is only seen then).

    problem(value, what)   why `value` cannot go in a header (None: it can)
    looks_secret(name)     whether a header's name says it carries a credential

Must not: put the value itself in any text it returns.
"""

from __future__ import annotations

import re

__all__ = ["looks_secret", "problem"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SECRET_NAME = re.compile(r"key|token|auth|secret|pass|cookie|session|signature|credential", re.IGNORECASE)


def problem(value: str, what: str) -> str | None:
    """Why `value` cannot be sent as a header value, in words that name `what` (e.g. "The API
    key for lan-box") and never the value; None when it can be sent. Whitespace around the
    value is not a problem: callers strip it (HTTP drops it anyway, RFC 9110 §5.5)."""
    value = value.strip()
    if _CONTROL.search(value):
        return (
            f"{what} contains a line break or another control character (\\r, \\n, a tab or NUL), so Hearth "
            "will not send it. A key copied with the end of its line (from a .env file with Windows line "
            "endings, or across two lines) is the usual cause: enter it again as one line."
        )
    if not value.isascii():
        return (
            f"{what} contains a character that is not plain ASCII (often a curly quote or a non-breaking "
            "space copied from a document), and HTTP headers carry only ASCII: enter it again."
        )
    return None


def looks_secret(header: str) -> bool:
    """Whether a header's name says it carries a credential (X-Api-Key, X-Auth-Token, Cookie…)."""
    return bool(_SECRET_NAME.search(header))
