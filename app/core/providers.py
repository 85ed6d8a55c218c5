"""Remote providers a person configured: `<data dir>/providers.toml`, and their API keys.

A provider is a name, a wire format (`kind`: openai, ollama, dify-chat, dify-workflow, or
any format declared in engine/wire_formats.toml), a base URL, a model, extra headers,
timeouts and stream filters. Its API key is never in that file, in SQLite or in a log: it
lives in the OS keychain (keyring), or comes from an environment variable, which wins when
set: the provider's own `key_env`, else HEARTH_API_KEY_<NAME> (upper case, other
characters as "_"). Where no keychain exists (a server, a container), saving a key says so
and names the variable to use instead. No Qt.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import KeychainUnavailable, ProviderError
from engine.commands import RemoteSpec
from engine.filters import FilterConfig

__all__ = ["KeyStore", "KeychainUnavailable", "ProviderConfig", "ProviderError", "ProvidersFile", "key_env_name",
           "session_key"]

_SERVICE = "Hearth"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "kind": str,
    "base_url": str,
    "model": str,
    "headers": dict,
    "key_env": str,
    "path": str,
    "connect_timeout_s": (int, float),
    "first_token_timeout_s": (int, float),
    "between_tokens_timeout_s": (int, float),
    "max_retries": int,
    "stop": list,
    "think": bool,
    "redact": list,
}
# How the providers form names each field in its messages.
_FORM_WORDS = {"name": "name", "kind": "kind", "base_url": "base URL", "model": "model", "headers": "headers",
               "connect_timeout_s": "connect timeout", "first_token_timeout_s": "first-token timeout",
               "between_tokens_timeout_s": "between-tokens timeout"}


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    kind: str
    base_url: str
    model: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    key_env: str | None = None
    path: str | None = None
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 120.0
    between_tokens_timeout_s: float = 60.0
    max_retries: int = 3
    stop: tuple[str, ...] = ()
    think: bool = True
    redact: tuple[str, ...] = ()

    def filters(self) -> FilterConfig:
        return FilterConfig(stop=self.stop, think=("<think>", "</think>") if self.think else None, redact=self.redact)

    def spec(self, api_key: str | None) -> RemoteSpec:
        return RemoteSpec(name=self.name, wire=self.kind, base_url=self.base_url, model=self.model,
                          headers=tuple(sorted(self.headers.items())), api_key=api_key, path=self.path,
                          connect_timeout_s=self.connect_timeout_s, first_token_timeout_s=self.first_token_timeout_s,
                          between_tokens_timeout_s=self.between_tokens_timeout_s, max_retries=self.max_retries)

    def to_toml(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        defaults = ProviderConfig("", "", "")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("name", "kind", "base_url") or value != getattr(defaults, f.name):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def key_env_name(name: str) -> str:
    return "HEARTH_API_KEY_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


class ProvidersFile:
    def __init__(self, data_dir: Path, formats: set[str] | None = None) -> None:
        self.path = Path(data_dir) / "providers.toml"
        self._formats = formats

    def load(self) -> list[ProviderConfig]:
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ProviderError(f"{self.path} cannot be read: {e}", code="unreadable_providers") from e
        out: list[ProviderConfig] = []
        for i, raw in enumerate(data.get("provider", [])):
            config = self._parse(i, raw)
            if any(p.name.lower() == config.name.lower() for p in out):
                raise ProviderError(f"{self.path.name}: two providers are called {config.name!r}", provider=config.name,
                                    field="name", hint=f"Another provider is already called {config.name!r}.")
            out.append(config)
        return out

    def get(self, name: str) -> ProviderConfig:
        providers = self.load()
        for p in providers:
            if p.name.lower() == name.lower():
                return p
        known = ", ".join(p.name for p in providers) or "none yet"
        raise ProviderError(f"There is no provider {name!r} (configured: {known}). Add one with "
                            f"`hearth providers add NAME --kind openai --url URL --model MODEL`.",
                            code="no_such_provider", provider=name)

    def save(self, providers: list[ProviderConfig]) -> None:
        import tomli_w

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".toml.tmp")
        text = tomli_w.dumps({"provider": [p.to_toml() for p in providers]})
        with tmp.open("w", encoding="utf-8") as f:
            f.write("# Hearth's remote providers. API keys are not kept here: see `hearth providers set-key`.\n")
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def upsert(self, config: ProviderConfig) -> None:
        self.check(config)
        providers = [p for p in self.load() if p.name.lower() != config.name.lower()]
        self.save([*providers, config])

    def remove(self, name: str) -> None:
        self.get(name)
        self.save([p for p in self.load() if p.name.lower() != name.lower()])

    def check(self, config: ProviderConfig) -> None:
        self._parse(0, config.to_toml())

    def _parse(self, index: int, raw: dict[str, Any]) -> ProviderConfig:
        name = str(raw.get("name") or "") or None
        label = f"{self.path.name}: provider #{index + 1} ({raw.get('name', '?')})"

        def bad(field: str, message: str, hint: str) -> ProviderError:
            return ProviderError(f"{label}: {message}", provider=name, field=field, hint=hint)

        for key in ("name", "kind", "base_url"):
            if not raw.get(key):
                raise ProviderError(f"{label} lacks {key}", provider=name, field=key,
                                    hint=f"Fill in the {_FORM_WORDS.get(key, key)}.")
        for key, value in raw.items():
            want = _FIELDS.get(key)
            if want is None:
                raise ProviderError(f"{label} has an unknown field {key!r}", provider=name, field=key,
                                    hint=f"Hearth does not know the field {key!r}.")
            if (isinstance(value, bool) and want is not bool) or not isinstance(value, want):
                raise bad(key, f"{key} has the wrong type ({type(value).__name__})",
                          f"The {_FORM_WORDS.get(key, key)} has the wrong type ({type(value).__name__}).")
        if not _NAME.fullmatch(raw["name"]):
            raise bad("name", "a name is letters, digits, spaces, '.', '-' or '_' (at most 64)",
                      "A name is letters, digits, spaces, '.', '-' or '_' (at most 64).")
        if not re.match(r"https?://[^\s/]+", raw["base_url"]):
            raise bad("base_url", "base_url must start with http:// or https://, e.g. http://192.168.1.20:8000/v1",
                      "The base URL must start with http:// or https://, e.g. http://192.168.1.20:8000/v1")
        if self._formats is not None and raw["kind"] not in self._formats:
            kinds = ", ".join(sorted(self._formats))
            raise bad("kind", f"kind must be one of {kinds}", f"The kind must be one of {kinds}.")
        if any(k.lower() == "authorization" for k in raw.get("headers", {})):
            raise bad("headers", "put the API key in the keychain (`hearth providers set-key`), not in an "
                      "Authorization header in this file",
                      "Put the API key in the key field below (it goes to the system keychain), not in an "
                      "Authorization header.")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        for key in ("connect_timeout_s", "first_token_timeout_s", "between_tokens_timeout_s"):
            if key in values and not 0 < float(values[key]) <= 3600:
                raise bad(key, f"{key} must be between 0 and 3600 seconds",
                          f"The {_FORM_WORDS[key]} must be between 0 and 3600 seconds.")
        config = ProviderConfig(**values)
        problems = config.filters().problems()
        if problems:
            raise bad("filters", " ".join(problems), " ".join(problems))
        return config


class KeyStore:
    """API keys: an environment variable when set, else the OS keychain."""

    def key(self, config: ProviderConfig) -> str | None:
        for var in (config.key_env, key_env_name(config.name)):
            if var and os.environ.get(var):
                return os.environ[var]
        import keyring
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(_SERVICE, config.name)
        except KeyringError:  # no keychain here: only the environment can supply a key
            return None

    def set_key(self, config: ProviderConfig, key: str) -> None:
        import keyring
        from keyring.errors import KeyringError

        try:
            keyring.set_password(_SERVICE, config.name, key)
        except KeyringError as e:
            raise KeychainUnavailable(
                f"No system keychain is available here ({type(e).__name__}), so Hearth cannot store the key. "
                f"Set the environment variable {config.key_env or key_env_name(config.name)} instead.") from None

    def delete_key(self, config: ProviderConfig) -> None:
        import keyring
        from keyring.errors import KeyringError, PasswordDeleteError

        try:
            keyring.delete_password(_SERVICE, config.name)
        except (PasswordDeleteError, KeyringError):
            pass  # nothing stored, or no keychain: nothing to delete


def session_key(provider: str) -> str:
    """Where a conversation's settings keep a provider's own conversation id (engine ProviderSession)."""
    return f"session:{provider.lower()}"
