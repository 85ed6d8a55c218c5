"""The Hugging Face token `hearth models login` keeps: in the OS keychain, nowhere else.

One keychain entry (service "Hearth", account "huggingface.co#token": provider names cannot
hold "#", so no provider's key can collide with it). Read per call and handed to
huggingface-hub as an argument (app.core.models.hub_client, download), never put in the
environment, a file or a log. Without a saved token huggingface-hub's own rules apply (HF_TOKEN,
or a token saved by its own CLI).

Must not: print, log or echo the token, or write it anywhere but the keychain.
"""

from __future__ import annotations

from app.core.errors import KeychainUnavailable

__all__ = ["ACCOUNT", "SERVICE", "delete_token", "load_token", "save_token"]

SERVICE = "Hearth"
ACCOUNT = "huggingface.co#token"


def load_token() -> str | None:
    """The saved token, or None (none saved, or no keychain on this machine)."""
    import keyring
    from keyring.errors import KeyringError

    try:
        return keyring.get_password(SERVICE, ACCOUNT) or None
    except KeyringError:
        return None


def save_token(token: str) -> None:
    """Keep `token` in the keychain; KeychainUnavailable (naming HF_TOKEN instead) where there is none."""
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(SERVICE, ACCOUNT, token)
    except KeyringError as e:
        raise KeychainUnavailable(
            "no_keychain",
            f"No system keychain is available here ({type(e).__name__}), so Hearth cannot keep a Hugging Face "
            "token. Set HF_TOKEN in the environment of the commands that need it instead.",
        ) from None


def delete_token() -> bool:
    """Forget the saved token; False when there was none."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        had = keyring.get_password(SERVICE, ACCOUNT) is not None
        keyring.delete_password(SERVICE, ACCOUNT)
    except (PasswordDeleteError, KeyringError):
        return False
    return had
