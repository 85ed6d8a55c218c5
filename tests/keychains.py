"""Keychains for tests: an in-memory keyring backend (a real `keyring` backend that keeps keys
in a dict) and none at all (keyring's fail backend, as on a server). Each fixture swaps the
process's backend in and restores the previous one afterwards.

Fixtures are defined here and imported by tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail

__all__ = ["MemoryKeyring", "memory_keychain", "no_keychain"]


class MemoryKeyring(KeyringBackend):
    """A keychain that lives only in this process; `saved` is what it holds."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.saved.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.saved[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.saved.pop((service, username), None)


@pytest.fixture
def memory_keychain() -> Iterator[MemoryKeyring]:
    old = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(old)


@pytest.fixture
def no_keychain() -> Iterator[None]:
    old = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(old)
