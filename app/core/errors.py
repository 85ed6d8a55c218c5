"""Every error Hearth shows a person, in one tree, and the helpers that turn low-level
exceptions into it.

    HearthError (engine.errors)     code: stable, safe to branch on and to store
     │                              message: for a person; str(error) gives it too
     ├── EngineError (engine.errors)
     │    ├── ModelLoadError          a model file that cannot be loaded
     │    ├── EngineUnavailable       the engine process died or has no model
     │    ├── TemplateTooCostly       a chat template went past a limit on time, size or memory
     │    │                           (engine.template_limits)
     │    ├── WireFormatError         a malformed wire-format declaration: format_name, key (engine.wire)
     │    ├── TooLarge                a provider's tool calls past their cap (engine.tool_calls)
     │    └── ToolGrammarError        tools whose schemas cannot be enforced by a grammar (engine.tool_grammar)
     ├── StoreError (store.errors)    the database: newer schema, disk full, read-only, ...
     ├── InputError                   what a person typed or passed cannot be used
     │    └── ExchangeError           a file to import cannot be used (not JSON, wrong shape, too big, newer)
     ├── ProviderError                providers.toml or a provider's settings: provider, field, hint
     ├── KeychainUnavailable          no OS keychain: set the key's environment variable instead
     ├── ServeError                   the API server cannot start (a port in use, an unsafe token file)
     ├── CatalogError                 models.toml is malformed
     ├── LibraryError                 the model library cannot do what was asked
     ├── DownloadError                a model download could not finish (code says why)
     ├── HubError (app.core.models.hub_client)  the Hugging Face Hub could not answer (network,
     │                                slow, rate_limited, not_found, gated, ...; retry_after_s)
     ├── McpConfigError (app.core.tools.errors)  mcp.json or one server in it: server, key
     ├── ToolError (app.core.tools.errors)       an MCP server unreachable, or a tool call that did
     │                                           not finish (timed out, exited, refused, ...)
     └── ApiError (app.server.wire)   a request to `hearth serve` refused: an OpenAI-shaped body with
                                      its HTTP status: status, param, headers

Each is built as `SomeError(code, message, *, context)` (engine.errors says why).

A low-level exception (OSError, a TOML or JSON error, sqlite3.Error, an httpx error) becomes one of
these where it is met, since that is where the file, provider or request the message must name is
known: `raise SomeError(code, message) from e` in an `except` (engine/ and store/, below this
module, do the same). `mapped` is for a block where one kind of failure can come from any of
several calls (a download's network faults): the kinds are named once, outside the calls.

Anything else is a programming error: it is never caught to be relabelled or retried, and
the UI reports it as "Something went wrong" with the traceback in the log.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from engine.errors import HearthError

__all__ = [
    "CatalogError",
    "DownloadError",
    "ExchangeError",
    "InputError",
    "KeychainUnavailable",
    "LibraryError",
    "ProviderError",
    "ServeError",
    "describe",
    "mapped",
    "network_errors",
]


@functools.cache
def network_errors() -> tuple[type[BaseException], ...]:
    """What "the network failed" means, for every client Hearth uses: the remote providers
    speak httpx, huggingface-hub 2.x httpx2 (same names, separate classes); a socket shut
    down by Cancel raises OSError. Nothing else is retried as a network fault. A function,
    so that importing this module (every CLI command does) does not load two HTTP stacks."""
    import httpx
    import httpx2

    return (httpx.TransportError, httpx2.TransportError, OSError)


class InputError(HearthError):
    """What a person typed or passed on the command line cannot be used; the message says why.
    Codes: bad_input (the general one), message_too_long, bad_chat_settings, no_such_preset,
    bad_preset_name, builtin_preset."""


class ExchangeError(InputError):
    """A file given to import (or a place to export to) cannot be used; the message names the file
    and says why. Codes: unreadable, too_big, not_utf8, not_json, bad_shape, newer_version, exists,
    unwritable."""


class ProviderError(HearthError):
    """A provider's configuration is wrong, or a conversation names a provider that is gone.

    `provider` and `field` say where (a form marks that field); `hint` is the same problem in
    the form's words, without the file and entry the form already shows."""

    def __init__(
        self, code: str, message: str, *, provider: str | None = None, field: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(code, message)
        self.provider = provider
        self.field = field
        self.hint = hint or message


class KeychainUnavailable(HearthError):
    """No OS keychain is available; the message names the environment variable to use instead.
    Code: no_keychain."""


class ServeError(HearthError):
    """The API server (app.server) could not start; the message says why and what to do.
    Codes: cannot_serve (the port), token_file (the token's file is unsafe or unreadable)."""


class CatalogError(HearthError):
    """The catalog file is malformed; the message names the entry and the field. Code: bad_catalog."""


class LibraryError(HearthError):
    """Something a person asked of the model library cannot be done; the message says why and what to do."""


class DownloadError(HearthError):
    """A download could not finish. Codes: cancelled, busy (another download holds the partial
    file), not_found, gated, unauthorized, network, server, hash_mismatch, size_mismatch,
    catalog_mismatch, unverifiable, disk."""


def describe(error: BaseException) -> str:
    """What to tell a person about `error`: its message for a HearthError, otherwise a
    sentence that admits a bug (the details belong in the log, not the window)."""
    if isinstance(error, HearthError):
        return error.message
    return f"Something went wrong ({type(error).__name__}: {error or 'no details'}). The log has the details."


@contextmanager
def mapped(
    mapping: Mapping[type[BaseException] | tuple[type[BaseException], ...], Callable[[BaseException], HearthError]],
) -> Iterator[None]:
    """Turn the low-level exceptions named in `mapping` into HearthErrors (first match wins),
    chained to the original; HearthErrors and everything unnamed pass through untouched.

        with mapped({network_errors(): lambda e: DownloadError("network", f"... {e}")}):
            fetch()
    """
    try:
        yield
    except HearthError:
        raise
    except Exception as e:
        for kinds, make in mapping.items():
            if isinstance(e, kinds):
                raise make(e) from e
        raise
