"""Where a conversation's answers come from: the choice a person made, and the route it
resolves to just before each turn. The one place that resolution happens, for the window
and the CLI alike.

    RouteChoice   what is chosen and stored: a provider (None: this computer) and optionally
                  a model the provider should use instead of its default
    Route         what a turn is sent with: the remote spec (with its key and the provider's
                  own conversation id) or None for the local model, and the stream filters
    Router        RouteChoice + the conversation's stored settings -> Route

Resolved per turn, so a provider edited or a key stored a moment ago is used at once. No Qt.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from app.core.errors import ProviderError
from app.core.providers import KeyStore, ProvidersFile, session_key
from engine.commands import RemoteSpec
from engine.filters import FilterConfig

__all__ = ["LOCAL", "LOCAL_ROUTE", "Route", "RouteChoice", "Router"]


@dataclass(frozen=True, slots=True)
class RouteChoice:
    """A conversation's choice of model. Always in normal form (build it with `of`): no empty
    strings, and a model only together with a provider."""

    provider: str | None = None
    model: str | None = None

    @classmethod
    def of(cls, provider: object = None, model: object = None) -> RouteChoice:
        name = str(provider).strip() if provider else None
        override = str(model).strip() if model and name else None
        return cls(name or None, override or None)

    @classmethod
    def from_settings(cls, settings: Mapping[str, object] | None) -> RouteChoice:
        """From a conversation's stored settings ({"provider": ..., "model": ...})."""
        return cls.of((settings or {}).get("provider"), (settings or {}).get("model"))

    def settings(self) -> dict[str, str | None]:
        """What the conversation's settings store for this choice."""
        return {"provider": self.provider, "model": self.model}

    @property
    def is_local(self) -> bool:
        return self.provider is None


LOCAL = RouteChoice()


@dataclass(frozen=True, slots=True)
class Route:
    """What one turn is sent with, resolved just before it is sent."""

    remote: RemoteSpec | None  # None: the local model
    filters: FilterConfig | None  # None: the engine's defaults (reasoning split only)
    provider: str | None  # the provider's name, for the window
    # Why this route answers, stored with the answer (app.core.policies): "fixed" for a chat's own choice.
    reason: str = "fixed"
    # local-first: the route that answers when the local model cannot (no model, the prompt does not
    # fit, the queue wait passes `queue_limit_s`: app.core.chat_service and app.core.fallback).
    fallback: Route | None = None
    queue_limit_s: float = 20.0

    @property
    def name(self) -> str:
        """The route as answers record it: "local" for this computer's model (also when another
        Hearth process runs it), else the provider's name."""
        if self.remote is None or self.remote.uds is not None:
            return "local"
        return self.provider or self.remote.name


LOCAL_ROUTE = Route(None, None, None)


class SettingsReader(Protocol):
    async def conversation_settings(
        self, conversation_id: int, *, after_pending_writes: bool = False
    ) -> dict[str, object]: ...


class Router:
    def __init__(
        self, providers: ProvidersFile, keys: KeyStore | None = None, local_filters: FilterConfig | None = None
    ) -> None:
        self.providers = providers
        self.keys = keys or KeyStore()
        self.local_filters = local_filters

    def resolve(self, choice: RouteChoice, stored: Mapping[str, object] | None = None) -> Route:
        """The Route for `choice`; `stored` (the conversation's settings) supplies what a
        provider asked to be sent back next turn (Dify's conversation id). Reads
        providers.toml and the keychain: call it off the UI thread. Raises ProviderError
        (code provider_gone) when the chosen provider is no longer configured."""
        if choice.provider is None:
            return dataclasses.replace(LOCAL_ROUTE, filters=self.local_filters)
        try:
            config = self.providers.get(choice.provider)
        except ProviderError as e:
            raise ProviderError(
                "provider_gone",
                f"This conversation answers with the provider {choice.provider!r}, which is no "
                f"longer configured: choose another provider for it. ({e})",
                provider=choice.provider,
            ) from None
        if choice.model:
            config = dataclasses.replace(config, model=choice.model)
        spec = config.spec(self.keys.key(config))
        session = (stored or {}).get(session_key(config.name))
        if isinstance(session, str) and session:
            spec = dataclasses.replace(spec, session=session)
        return Route(spec, config.filters(), config.name)

    async def for_conversation(self, store: SettingsReader, conversation_id: int | None, choice: RouteChoice) -> Route:
        """The route of one turn of a conversation (None: a new one) under `choice`: the
        one place the window and the CLI resolve routes."""
        if choice.is_local:
            return self.resolve(choice)
        stored: dict[str, object] = {}
        if conversation_id is not None:
            stored = await store.conversation_settings(conversation_id, after_pending_writes=True)
        return await asyncio.to_thread(self.resolve, choice, stored)
