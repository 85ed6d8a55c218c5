"""A keyring backend that keeps its entries in a JSON file, so that several `hearth` processes
started by one test share a keychain the test can read afterwards. Chosen in a child process
with PYTHON_KEYRING_BACKEND=file_keychain.FileKeyring (tests/ on PYTHONPATH); the file is
$HEARTH_TEST_KEYRING. Not imported by the test process itself: keyring would otherwise
consider it for its own default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend

__all__ = ["FileKeyring"]


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @property
    def _path(self) -> Path:
        return Path(os.environ["HEARTH_TEST_KEYRING"])

    def _read(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._path.read_text()))
        except FileNotFoundError:
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._read().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        saved = self._read()
        saved[f"{service}/{username}"] = password
        self._path.write_text(json.dumps(saved))

    def delete_password(self, service: str, username: str) -> None:
        saved = self._read()
        saved.pop(f"{service}/{username}", None)
        self._path.write_text(json.dumps(saved))
