"""The bearer token `hearth serve` requires: the environment variable HEARTH_SERVE_TOKEN when
set (a headless server, a script), else the OS keychain, where the first run creates it.

Must not: write the token to a file, a log or the store (DESIGN.md: secrets live in the keychain).
"""

from __future__ import annotations

import os
import secrets

from app.core.errors import KeychainUnavailable

__all__ = ["TOKEN_ENV", "server_token"]

TOKEN_ENV = "HEARTH_SERVE_TOKEN"
_SERVICE, _USER = "hearth", "serve-token"  # the keychain entry


def server_token(*, create: bool = True) -> str | None:
    """The token, created and kept in the keychain when there is none yet (`create`).
    KeychainUnavailable when there is no keychain and no HEARTH_SERVE_TOKEN."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip()
    import keyring
    from keyring.errors import KeyringError

    try:
        token = keyring.get_password(_SERVICE, _USER)
        if token or not create:
            return token
        token = f"hearth-{secrets.token_urlsafe(32)}"
        keyring.set_password(_SERVICE, _USER, token)
        return token
    except KeyringError as e:
        raise KeychainUnavailable(
            f"No system keychain is available here ({type(e).__name__}), so Hearth cannot keep the server's token. "
            f"Set the environment variable {TOKEN_ENV} to a long random string instead (or use --no-auth on "
            f"127.0.0.1).") from None
