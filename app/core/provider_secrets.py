"""A provider's secrets other than its API key: the values of its extra headers (an X-Api-Key)
and a user and password written into its base URL (http://user:pass@host).

They are kept where the key is kept, never in providers.toml: one keychain entry per provider
(`entry_name`, holding a SecretsEntry as JSON), or environment variables that win when set
(`header_env_name`, `url_env_name`). app.core.providers reads and writes them; this module
only names and shapes them.
Must not: touch the keychain, the file or the environment.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["HEADER_NAME", "SecretsEntry", "entry_name", "header_env_name", "split_url_credentials", "url_env_name"]

# An HTTP header name (RFC 9110 token).
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _upper(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def header_env_name(provider: str, header: str) -> str:
    """The environment variable that gives a header's value: HEARTH_HEADER_LAN_BOX_X_API_KEY."""
    return f"HEARTH_HEADER_{_upper(provider)}_{_upper(header)}"


def url_env_name(provider: str) -> str:
    """The environment variable that gives the base URL's "user:password"."""
    return f"HEARTH_URL_AUTH_{_upper(provider)}"


def entry_name(provider: str) -> str:
    """The keychain entry (under the service "Hearth") for a provider's secrets. Provider names
    cannot hold "#", so it cannot be another provider's key."""
    return f"{provider}#secrets"


def split_url_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """(the URL without user and password, (user, password) percent-decoded, or None)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all: the file's check says so
        return url, None
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))


@dataclass(frozen=True, slots=True)
class SecretsEntry:
    """What one keychain entry holds."""

    headers: dict[str, str] = field(default_factory=dict, repr=False)
    url_auth: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def empty(self) -> bool:
        return not self.headers and not self.url_auth

    def dumps(self) -> str:
        return json.dumps({"headers": self.headers, "url_auth": list(self.url_auth) if self.url_auth else None})

    @classmethod
    def loads(cls, text: str | None) -> SecretsEntry:
        """An entry from the keychain (nothing stored, or something unreadable: an empty one)."""
        try:
            data = json.loads(text or "{}")
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        headers = data.get("headers")
        auth = data.get("url_auth")
        return cls(
            {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
            (str(auth[0]), str(auth[1])) if isinstance(auth, list) and len(auth) == 2 else None,
        )
