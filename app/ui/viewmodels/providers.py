"""The providers settings' view-model: the remote providers in providers.toml, whether each
has an API key, and adding, changing and removing them and storing their keys.

File reads and writes and every keychain call run in a worker thread (a keychain may ask
the desktop over D-Bus, or be slow to unlock). Expected failures become a `message` for a
person, worded as the CLI words them (app.cli.providers); nothing here raises at the view.
An API key passes through `save_key` on its way to the keychain and is kept nowhere else:
not in this object, not in a log, not in a message.
Must not: create widgets, ask the person anything (the dialog asks before `remove`), or
read a key back to show it (only whether one is available).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from app.core.errors import KeychainUnavailable, ProviderError
from app.core.provider_setup import Probe, probe
from app.core.providers import KeyStore, ProviderConfig, ProvidersFile, key_env_name
from app.ui.hidden import Hidden
from engine.credentials import problem

__all__ = ["KIND_HELP", "ProviderRow", "ProvidersViewModel", "timeouts_text"]

log = logging.getLogger("hearth.ui")

KIND_HELP = {
    "openai": "OpenAI-compatible chat completions: vLLM, llama-server, LM Studio or a hosted API. "
    "The base URL usually ends in /v1.",
    "ollama": "Ollama's own API, e.g. http://192.168.1.20:11434 (no key needed on a LAN).",
    "dify-chat": "A Dify chat app: the base URL ends in /v1; the key is the app's API key.",
    "dify-workflow": "A Dify workflow app: the base URL ends in /v1; the answer is the workflow's text output.",
}


@dataclass(frozen=True, slots=True)
class ProviderRow:
    """A provider as the list shows it."""

    config: ProviderConfig
    has_key: bool
    key_status: str  # "key: available (…)" or "key: none …": never the key itself

    @property
    def name(self) -> str:
        return self.config.name


def timeouts_text(config: ProviderConfig) -> str:
    return (
        f"timeouts: connect {config.connect_timeout_s:g} s · first token {config.first_token_timeout_s:g} s"
        f" · between tokens {config.between_tokens_timeout_s:g} s"
    )


def _key_status(keys: KeyStore, config: ProviderConfig) -> tuple[bool, str]:
    """Where the key would come from (worker thread: the keychain may be slow)."""
    var = config.key_env or key_env_name(config.name)
    for candidate in (config.key_env, key_env_name(config.name)):
        if candidate and os.environ.get(candidate):
            return True, f"key: available (from ${candidate})"
    if keys.key(config):
        return True, "key: available (in the system keychain)"
    return False, f"key: none (save one below, or set ${var}; a server on your LAN may need none)"


class ProvidersViewModel(QObject):
    rows_changed = Signal()  # the providers or their key status changed: read `rows`
    message = Signal(str, str)  # (kind "ok" | "info" | "error", text) for the person

    def __init__(
        self, providers: ProvidersFile, keys: KeyStore, formats: Iterable[str], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._file = providers
        self._keys = keys
        declared = set(formats)
        self._formats = [k for k in KIND_HELP if k in declared] + sorted(declared - set(KIND_HELP))
        self._rows: list[ProviderRow] = []
        self._lock = asyncio.Lock()  # one file write at a time, in the order asked

    # -- reading ---------------------------------------------------------------------------
    @property
    def rows(self) -> list[ProviderRow]:
        return list(self._rows)

    @property
    def formats(self) -> list[tuple[str, str]]:
        """(kind, what it is for) for each declared wire format."""
        return [(k, KIND_HELP.get(k, "A wire format declared in wire_formats.toml.")) for k in self._formats]

    def find(self, name: str | None) -> ProviderRow | None:
        for row in self._rows:
            if name and row.name.lower() == name.lower():
                return row
        return None

    def route_text(self, provider: str | None, model: str | None) -> tuple[str, str]:
        """("lan-box · qwen2.5-7b", tooltip) for a conversation's route; ("", "") for this computer."""
        if not provider:
            return "", ""
        row = self.find(provider)
        if row is None:
            return f"{provider} (not configured)", "This provider was removed: choose another one above the chat."
        c = row.config
        shown_model = model or c.model
        text = f"{c.name} · {shown_model}" if shown_model else c.name
        return text, f"{c.kind} at {c.base_url}\n{timeouts_text(c)}\n{row.key_status}"

    def check(self, config: ProviderConfig) -> ProviderError | None:
        """Why `config` cannot be saved (`hint` in the form's words, `field` the one to mark), or None. No I/O."""
        try:
            self._file.check(config)
        except ProviderError as e:
            return e
        return None

    async def refresh(self) -> None:
        """Re-read providers.toml and where each key would come from. Never raises."""
        try:
            rows = await asyncio.to_thread(self._read_rows)
        except ProviderError as e:
            self.message.emit("error", str(e))
            return
        except Exception as e:  # an unexpected keychain error: say so, keep what is shown
            log.exception("reading the providers failed")
            self.message.emit("error", f"Could not read the providers: {e}")
            return
        self._rows = rows
        self.rows_changed.emit()

    def _read_rows(self) -> list[ProviderRow]:
        return [ProviderRow(c, *_key_status(self._keys, c)) for c in self._file.load()]

    # -- changing ----------------------------------------------------------------------------
    async def save(self, config: ProviderConfig) -> bool:
        """Add or change a provider (by name). False, with a message, when it is not valid."""
        problem = self.check(config)
        if problem is not None:
            self.message.emit("error", problem.hint)
            return False
        try:
            async with self._lock:
                await asyncio.to_thread(self._file.upsert, config)
        except (ProviderError, KeychainUnavailable, OSError) as e:  # header values and URL passwords need a keychain
            self.message.emit("error", f"Could not save {config.name}: {e}")
            return False
        await self.refresh()
        self.message.emit("ok", f"Saved provider {config.name}. Pick it above the chat to use it.")
        return True

    def remove_question(self, name: str) -> str:
        return (
            f"Remove the provider {name} and its stored API key?\n\nConversations that use it will ask "
            "you to choose another provider before their next answer."
        )

    async def remove(self, name: str) -> bool:
        """Remove a provider and its stored key (as `hearth providers rm` does)."""
        row = self.find(name)
        if row is None:
            self.message.emit("error", f"There is no provider {name!r}.")
            return False
        try:
            async with self._lock:
                await asyncio.to_thread(self._file.remove, row.name)
            await asyncio.to_thread(self._keys.delete_key, row.config)
        except (ProviderError, OSError) as e:
            self.message.emit("error", f"Could not remove {name}: {e}")
            return False
        await self.refresh()
        self.message.emit("ok", f"Removed provider {row.name} and its stored key.")
        return True

    async def save_key(self, name: str, key: str) -> bool:
        """Store `key` for provider `name` in the OS keychain. Without a keychain the message
        names the environment variable to set instead."""
        key = key.strip()
        row = self.find(name)
        if row is None:
            self.message.emit("error", "Save the provider first, then its key.")
            return False
        if not key:
            self.message.emit("error", "No key given: paste the API key into the field first.")
            return False
        if wrong := problem(key, "The API key"):  # e.g. two lines pasted as one key
            self.message.emit("error", wrong)
            return False
        try:
            # A closure, not arguments: the executor logs the arguments of what it runs at DEBUG.
            await asyncio.to_thread(lambda: self._keys.set_key(row.config, key))
        except (KeychainUnavailable, ProviderError) as e:
            self.message.emit("error", str(e))
            return False
        except Exception as e:  # noqa: BLE001 - keyring backends raise their own types (locked, denied, D-Bus)
            log.error("storing the key for %s failed: %s", row.name, type(e).__name__)
            self.message.emit("error", f"The system keychain refused the key for {row.name}: {type(e).__name__}")
            return False
        await self.refresh()
        self.message.emit("ok", f"Stored the key for {row.name} in the system keychain.")
        return True

    async def probe(self, config: ProviderConfig, typed_key: str = "") -> Probe:
        """Test the connection with the key being typed, else the one stored (app.core.provider_setup)."""
        key: str | None = typed_key.strip()
        if not key:
            key = (await asyncio.to_thread(lambda: Hidden(self._keys.key(config)))).value  # see app.ui.hidden
        return await probe(config, key)

    def blank(self) -> ProviderConfig:
        """What a new provider starts as: OpenAI-compatible, default timeouts."""
        return ProviderConfig(name="", kind=self._formats[0] if self._formats else "openai", base_url="")
