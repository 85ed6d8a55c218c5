"""Remote providers a person configured: `<data dir>/providers.toml`, and their secrets.

A provider is a name, a wire format (`kind`: openai, ollama, dify-chat, dify-workflow, or
any format declared in engine/wire_formats.toml), a base URL, a model, extra headers,
timeouts and stream filters. Its API key is never in that file, in SQLite or in a log: it
lives in the OS keychain (keyring), or comes from an environment variable, which wins when
set: the provider's own `key_env`, else HEARTH_API_KEY_<NAME> (upper case, other
characters as "_"). Where no keychain exists (a server, a container), saving a key says so
and names the variable to use instead.

The other secrets are kept the same way: the values of extra headers (an X-Api-Key) and a
user and password written into the base URL (http://user:pass@host). The file keeps only
the header names and `url_credentials = true`; the values live in one keychain entry per
provider (app.core.provider_secrets), or come from HEARTH_HEADER_<NAME>_<HEADER> and
HEARTH_URL_AUTH_<NAME> ("user:password"). A file written before that, with the values in it,
is moved into the keychain the first time it is read (and rewritten without them); with no
keychain it keeps working as it is. Keys and header values are checked when they are set: a
control character (a "\\r" from a .env file) is refused, naming the field (engine.credentials).
No Qt.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import KeychainUnavailable, ProviderError
from app.core.provider_secrets import (
    HEADER_NAME,
    SecretsEntry,
    entry_name,
    header_env_name,
    split_url_credentials,
    url_env_name,
)
from engine.commands import RemoteSpec
from engine.credentials import problem
from engine.filters import FilterConfig

__all__ = ["KeyStore", "ProviderConfig", "ProvidersFile", "key_env_name", "session_key"]

log = logging.getLogger("hearth.providers")

_SERVICE = "Hearth"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "kind": str,
    "base_url": str,
    "model": str,
    "headers": (dict, list),  # names only; a table of names and values in files from before
    "url_credentials": bool,  # the base URL's user and password are in the keychain
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
_FORM_WORDS = {
    "name": "name",
    "kind": "kind",
    "base_url": "base URL",
    "model": "model",
    "headers": "headers",
    "connect_timeout_s": "connect timeout",
    "first_token_timeout_s": "first-token timeout",
    "between_tokens_timeout_s": "between-tokens timeout",
}


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    kind: str
    base_url: str  # never with a user or password in it: those are `url_auth`
    model: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # the values are secrets
    key_env: str | None = None
    path: str | None = None
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 120.0
    between_tokens_timeout_s: float = 60.0
    max_retries: int = 3
    stop: tuple[str, ...] = ()
    think: bool = True
    redact: tuple[str, ...] = ()
    url_auth: tuple[str, str] | None = field(default=None, repr=False)  # (user, password) given in the URL

    def __post_init__(self) -> None:
        # Credentials typed into the URL (the CLI, the form) become `url_auth` at once, so no
        # message, list or tooltip that shows the URL can show them.
        clean, auth = split_url_credentials(self.base_url)
        if auth is not None:
            object.__setattr__(self, "base_url", clean)
            object.__setattr__(self, "url_auth", auth)

    def filters(self) -> FilterConfig:
        return FilterConfig(stop=self.stop, think=("<think>", "</think>") if self.think else None, redact=self.redact)

    def spec(self, api_key: str | None) -> RemoteSpec:
        return RemoteSpec(
            name=self.name,
            wire=self.kind,
            base_url=self.base_url,
            model=self.model,
            headers=tuple(sorted((k, v) for k, v in self.headers.items() if v)),
            api_key=api_key,
            basic_auth=self.url_auth if self.url_auth and any(self.url_auth) else None,
            path=self.path,
            connect_timeout_s=self.connect_timeout_s,
            first_token_timeout_s=self.first_token_timeout_s,
            between_tokens_timeout_s=self.between_tokens_timeout_s,
            max_retries=self.max_retries,
        )

    def to_toml(self) -> dict[str, Any]:
        """What providers.toml keeps: no secret (header names, not values; no URL credentials)."""
        out: dict[str, Any] = {}
        defaults = ProviderConfig("", "", "")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "url_auth":
                if value:
                    out["url_credentials"] = True
            elif f.name == "headers":
                if value:
                    out["headers"] = sorted(value)
            elif f.name in ("name", "kind", "base_url") or value != getattr(defaults, f.name):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def secrets(self) -> SecretsEntry:
        """The values providers.toml does not keep."""
        return SecretsEntry(dict(self.headers), self.url_auth)


def key_env_name(name: str) -> str:
    return "HEARTH_API_KEY_" + re.sub(r"[^A-Z0-9]", "_", name.upper())


class ProvidersFile:
    def __init__(self, data_dir: Path, formats: set[str] | None = None, keys: KeyStore | None = None) -> None:
        self.path = Path(data_dir) / "providers.toml"
        self._formats = formats
        self._keys = keys or KeyStore()

    def load(self) -> list[ProviderConfig]:
        """The providers, with their header values and URL credentials from the keychain (or the
        environment). A file that still holds such values has them moved into the keychain."""
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ProviderError("unreadable_providers", f"{self.path} cannot be read: {e}") from e
        out: list[ProviderConfig] = []
        written_in: list[ProviderConfig] = []
        for i, raw in enumerate(data.get("provider", [])):
            config = self._parse(i, raw)
            if any(p.name.lower() == config.name.lower() for p in out):
                raise ProviderError(
                    "bad_provider",
                    f"{self.path.name}: two providers are called {config.name!r}",
                    provider=config.name,
                    field="name",
                    hint=f"Another provider is already called {config.name!r}.",
                )
            if isinstance(raw.get("headers"), dict) or config.url_auth:
                written_in.append(config)  # from before Hearth kept these in the keychain
            elif config.headers or raw.get("url_credentials"):
                config = self._keys.with_secrets(config, url=bool(raw.get("url_credentials")))
            out.append(config)
        if written_in:
            self._move_to_keychain(out, written_in)
        return out

    def get(self, name: str) -> ProviderConfig:
        providers = self.load()
        for p in providers:
            if p.name.lower() == name.lower():
                return p
        known = ", ".join(p.name for p in providers) or "none yet"
        raise ProviderError(
            "no_such_provider",
            f"There is no provider {name!r} (configured: {known}). Add one with "
            f"`hearth providers add NAME --kind openai --url URL --model MODEL`.",
            provider=name,
        )

    def save(self, providers: list[ProviderConfig]) -> None:
        import tomli_w

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".toml.tmp")
        text = tomli_w.dumps({"provider": [p.to_toml() for p in providers]})
        with tmp.open("w", encoding="utf-8") as f:
            f.write(
                "# Hearth's remote providers. API keys are not kept here, nor header values or passwords: they "
                "are in the system keychain (see `hearth providers set-key`).\n"
            )
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def upsert(self, config: ProviderConfig) -> None:
        """Add or replace a provider; its header values and URL credentials go to the keychain
        (KeychainUnavailable, naming the variables to set instead, before the file changes)."""
        self.check(config)
        providers = self.load()
        before = next((p for p in providers if p.name.lower() == config.name.lower()), None)
        if not config.secrets().empty:
            self._keys.set_secrets(config)
        if before is not None and not before.secrets().empty and (config.secrets().empty or before.name != config.name):
            self._keys.delete_secrets(before)
        self.save([*(p for p in providers if p is not before), config])

    def remove(self, name: str) -> None:
        config = self.get(name)
        self.save([p for p in self.load() if p.name.lower() != name.lower()])
        if not config.secrets().empty:
            self._keys.delete_secrets(config)

    def check(self, config: ProviderConfig) -> None:
        """Raises ProviderError (with the field and a hint in the form's words) when `config`
        cannot be saved, header values included. No I/O."""
        self._parse(0, config.to_toml())
        for header, value in config.headers.items():
            if message := problem(value, f"The value of the header {header}"):
                raise ProviderError(
                    "bad_provider", f"{config.name}: {message}", provider=config.name, field="headers", hint=message
                )

    def _move_to_keychain(self, providers: list[ProviderConfig], written_in: list[ProviderConfig]) -> None:
        try:
            for config in written_in:
                self._keys.set_secrets(config)
        except KeychainUnavailable:
            log.warning(
                "%s holds header values or a password in a URL, and there is no keychain here to move "
                "them to: they stay in the file",
                self.path,
            )
            return
        try:
            self.save(providers)
        except OSError as e:  # a read-only data dir: the keychain has them; the file is rewritten next time
            log.warning("could not rewrite %s without its secrets: %s", self.path, e)

    def _parse(self, index: int, raw: dict[str, Any]) -> ProviderConfig:
        name = str(raw.get("name") or "") or None
        label = f"{self.path.name}: provider #{index + 1} ({raw.get('name', '?')})"

        def bad(field: str, message: str, hint: str) -> ProviderError:
            return ProviderError("bad_provider", f"{label}: {message}", provider=name, field=field, hint=hint)

        for key in ("name", "kind", "base_url"):
            if not raw.get(key):
                raise ProviderError(
                    "bad_provider",
                    f"{label} lacks {key}",
                    provider=name,
                    field=key,
                    hint=f"Fill in the {_FORM_WORDS.get(key, key)}.",
                )
        for key, value in raw.items():
            want = _FIELDS.get(key)
            if want is None:
                raise ProviderError(
                    "bad_provider",
                    f"{label} has an unknown field {key!r}",
                    provider=name,
                    field=key,
                    hint=f"Hearth does not know the field {key!r}.",
                )
            if (isinstance(value, bool) and want is not bool) or not isinstance(value, want):
                raise bad(
                    key,
                    f"{key} has the wrong type ({type(value).__name__})",
                    f"The {_FORM_WORDS.get(key, key)} has the wrong type ({type(value).__name__}).",
                )
        if not _NAME.fullmatch(raw["name"]):
            raise bad(
                "name",
                "a name is letters, digits, spaces, '.', '-' or '_' (at most 64)",
                "A name is letters, digits, spaces, '.', '-' or '_' (at most 64).",
            )
        if not re.match(r"https?://[^\s/]+", raw["base_url"]):
            raise bad(
                "base_url",
                "base_url must start with http:// or https://, e.g. http://192.168.1.20:8000/v1",
                "The base URL must start with http:// or https://, e.g. http://192.168.1.20:8000/v1",
            )
        if re.search(r"[\x00-\x1f\x7f]", raw["base_url"]):
            raise bad(
                "base_url",
                "base_url contains a line break or another control character",
                "The base URL contains a line break or another control character: enter it again as one line.",
            )
        if self._formats is not None and raw["kind"] not in self._formats:
            kinds = ", ".join(sorted(self._formats))
            raise bad("kind", f"kind must be one of {kinds}", f"The kind must be one of {kinds}.")
        headers = raw.get("headers", {})
        if wrong := _headers_problem(headers):
            raise bad("headers", *wrong)
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k != "url_credentials"
        }
        values["headers"] = dict(headers) if isinstance(headers, dict) else dict.fromkeys(headers, "")
        for key in ("connect_timeout_s", "first_token_timeout_s", "between_tokens_timeout_s"):
            if key in values and not 0 < float(values[key]) <= 3600:
                raise bad(
                    key,
                    f"{key} must be between 0 and 3600 seconds",
                    f"The {_FORM_WORDS[key]} must be between 0 and 3600 seconds.",
                )
        config = ProviderConfig(**values)
        problems = config.filters().problems()
        if problems:
            raise bad("filters", " ".join(problems), " ".join(problems))
        return config


def _headers_problem(headers: dict[str, Any] | list[Any]) -> tuple[str, str] | None:
    """(what is wrong, the same in the form's words) with the headers' names, or None."""
    if any(isinstance(k, str) and k.lower() == "authorization" for k in headers):
        return (
            "put the API key in the keychain (`hearth providers set-key`), not in an Authorization header in this file",
            "Put the API key in the key field below (it goes to the system keychain), not in an Authorization header.",
        )
    for header in headers:
        if not isinstance(header, str) or not HEADER_NAME.fullmatch(header):
            return (
                f"{header!r} is not a header name",
                f"{header!r} is not a header name: letters, digits and -, with no spaces (e.g. X-Api-Key).",
            )
        if isinstance(headers, dict) and not isinstance(headers[header], str):
            return (
                f"the header {header} has a value that is not text",
                f"The value of the header {header} must be text.",
            )
    return None


class KeyStore:
    """API keys, header values and URL credentials: an environment variable when set, else the
    OS keychain. Surrounding whitespace is dropped wherever a value comes from (a CRLF .env file
    leaves a "\\r"): it is never part of a header value (RFC 9110 §5.5)."""

    def key(self, config: ProviderConfig) -> str | None:
        for var in (config.key_env, key_env_name(config.name)):
            if var and os.environ.get(var, "").strip():
                return os.environ[var].strip()
        value = self._get(config.name)
        return value.strip() or None if value else None

    def set_key(self, config: ProviderConfig, key: str) -> None:
        """Store `key` (stripped). ProviderError when it holds what HTTP cannot send (a line break)."""
        key = key.strip()
        if message := problem(key, f"The API key for {config.name}"):
            raise ProviderError("bad_key", message, provider=config.name, field="key")
        self._set(
            config.name,
            key,
            "the key",
            f"Set the environment variable {config.key_env or key_env_name(config.name)} instead.",
        )

    def delete_key(self, config: ProviderConfig) -> None:
        self._delete(config.name)

    def with_secrets(self, config: ProviderConfig, *, url: bool) -> ProviderConfig:
        """`config` with its header values (and, when `url`, its URL credentials) filled in."""
        from_env = {h: os.environ.get(header_env_name(config.name, h), "").strip() for h in config.headers}
        env_auth = os.environ.get(url_env_name(config.name), "").strip() if url else ""
        entry = SecretsEntry()
        if not all(from_env.values()) or (url and not env_auth):
            entry = SecretsEntry.loads(self._get(entry_name(config.name)))
        headers = {h: from_env[h] or entry.headers.get(h, "").strip() for h in config.headers}
        user, sep, password = env_auth.partition(":")
        auth = (user, password) if sep else entry.url_auth if url else None
        return dataclasses.replace(config, headers=headers, url_auth=auth)

    def set_secrets(self, config: ProviderConfig) -> None:
        """Keep `config`'s header values and URL credentials (those the environment does not give)."""
        headers = {
            h: v.strip()
            for h, v in config.headers.items()
            if v.strip() and v.strip() != os.environ.get(header_env_name(config.name, h), "").strip()
        }
        auth = config.url_auth
        if auth and ":".join(auth) == os.environ.get(url_env_name(config.name), "").strip():
            auth = None
        entry = SecretsEntry(headers, auth)
        if entry.empty:
            self._delete(entry_name(config.name))
            return
        names = [header_env_name(config.name, h) for h in headers] + [url_env_name(config.name)] * bool(auth)
        what = " and ".join(
            [f"the value of the header {', '.join(headers)}"] * bool(headers)
            + [f"the user and password in the URL of {config.name}"] * bool(auth)
        )
        self._set(
            entry_name(config.name),
            entry.dumps(),
            what,
            "Hearth keeps such values only in the keychain, never in providers.toml: set the environment "
            f"variable{'s' * (len(names) > 1)} {', '.join(names)} instead{' (as user:password)' * bool(auth)}.",
        )

    def delete_secrets(self, config: ProviderConfig) -> None:
        self._delete(entry_name(config.name))

    # -- the keychain ------------------------------------------------------------------------
    @staticmethod
    def _get(account: str) -> str | None:
        import keyring
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(_SERVICE, account)
        except KeyringError:  # no keychain here: only the environment can supply it
            return None

    @staticmethod
    def _set(account: str, value: str, what: str, instead: str) -> None:
        import keyring
        from keyring.errors import KeyringError

        try:
            keyring.set_password(_SERVICE, account, value)
        except KeyringError as e:
            raise KeychainUnavailable(
                "no_keychain",
                f"No system keychain is available here ({type(e).__name__}), so Hearth cannot store {what}. {instead}",
            ) from None

    @staticmethod
    def _delete(account: str) -> None:
        import keyring
        from keyring.errors import KeyringError, PasswordDeleteError

        try:
            keyring.delete_password(_SERVICE, account)
        except (PasswordDeleteError, KeyringError):
            pass  # nothing stored, or no keychain: nothing to delete


def session_key(provider: str) -> str:
    """Where a conversation's settings keep a provider's own conversation id (engine ProviderSession)."""
    return f"session:{provider.lower()}"
