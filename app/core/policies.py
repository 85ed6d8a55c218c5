"""Model policies: how a chat chooses the route of each answer, beside a fixed route.

    Policy        a chat's policy, kept in its settings beside RouteChoice ({"policy": {...}}):
                  local-first  this computer's model; when it cannot answer (no model, or it failed
                               to load; the prompt does not fit its context; the queue wait passes
                               `queue_limit_s`), the first of `routes` answers instead
                  fast         among `routes`, the one with the best recent TTFT and tokens/s
                               (store.stats over the last 7 days); a route with no answers yet first
                  deep         the first of `routes`: a larger model or route, chosen for hard questions
    Choice        RouteChoice | Policy: what a chat's settings hold (`choice_from_settings`)
    Planner       Choice -> Route for one turn, with `reason` (stored with the answer) and, for
                  local-first, its `fallback`

Where each decision is taken: a fixed route, fast and deep are decided here before the turn's rows
are saved; local-first's "no model" by ChatService._start, which knows the model's state; a prompt
that does not fit and a queue wait past the limit by app.core.fallback, which watches the local
stream and retries on the fallback before any token. That way a local-first turn costs nothing
more than a local one when the local model answers (measuring the prompt first would render and
tokenize it twice on every turn).
Must not: import Qt, or write to the store (the answer's rows record the route: store.writes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from app.core.routes import LOCAL, Route, RouteChoice, Router, SettingsReader
from store.stats import StatsQuery, StatsReport

__all__ = [
    "DEFAULT_QUEUE_LIMIT_S",
    "POLICIES",
    "Choice",
    "Planner",
    "Policy",
    "PolicyKind",
    "choice_from_settings",
    "choice_settings",
    "make_policy",
    "parse_routes",
    "route_label",
]

log = logging.getLogger(__name__)

PolicyKind = Literal["local-first", "fast", "deep"]
POLICIES: tuple[PolicyKind, ...] = get_args(PolicyKind)
DEFAULT_QUEUE_LIMIT_S = 20.0
RECENT_S = 7 * 86_400  # fast: the answers of the last 7 days count
_SAMPLE_TOKENS = 100  # fast: routes are compared by the time to the first 100 tokens of an answer


@dataclass(frozen=True, slots=True)
class Policy:
    """A chat's model policy. `routes`: local-first's fallback (the first), fast's candidates, deep's
    route (the first); each a RouteChoice (LOCAL: this computer's model)."""

    kind: PolicyKind
    routes: tuple[RouteChoice, ...]
    queue_limit_s: float = DEFAULT_QUEUE_LIMIT_S

    def settings(self) -> dict[str, object]:
        """What the conversation's settings store: the policy, and no fixed route beside it."""
        return {
            "policy": {
                "kind": self.kind,
                "routes": [route_label(r) for r in self.routes],
                "queue_limit_s": self.queue_limit_s,
            },
            "provider": None,
            "model": None,
        }


Choice = RouteChoice | Policy


def choice_from_settings(settings: Mapping[str, object] | None) -> Choice:
    """A chat's choice from its stored settings: its policy when it has one, else its fixed route.
    A damaged policy (an older or newer Hearth, a hand-edited file) reads as the local model."""
    raw = (settings or {}).get("policy")
    if raw is None:
        return RouteChoice.from_settings(settings)
    try:
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        kind = raw.get("kind")
        if kind not in POLICIES:
            raise ValueError(f"kind {kind!r}")
        names = raw.get("routes", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError("routes is not a list of names")
        limit = raw.get("queue_limit_s", DEFAULT_QUEUE_LIMIT_S)
        if not isinstance(limit, int | float) or isinstance(limit, bool) or not 0 < limit < 3600:
            raise ValueError(f"queue_limit_s {limit!r}")
        return _checked(Policy(kind, parse_routes(",".join(names)), float(limit)))
    except ValueError as e:
        log.warning("a chat's model policy is damaged (%s): it answers with the local model", e)
        return LOCAL


def choice_settings(choice: Choice) -> dict[str, object]:
    """What a conversation's settings store for `choice` (a fixed route clears a policy)."""
    if isinstance(choice, Policy):
        return choice.settings()
    return {**choice.settings(), "policy": None}


def parse_routes(text: str) -> tuple[RouteChoice, ...]:
    """Routes as a person writes them: "local", "NAME" (a provider, its default model) or
    "NAME:MODEL", separated by commas. ValueError for an empty list."""
    routes = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "local":
            routes.append(LOCAL)
        else:
            name, _, model = part.partition(":")
            routes.append(RouteChoice.of(name, model or None))
    if not routes:
        raise ValueError("no routes given")
    return tuple(routes)


def route_label(choice: RouteChoice) -> str:
    """`choice` as `parse_routes` reads it back."""
    if choice.provider is None:
        return "local"
    return f"{choice.provider}:{choice.model}" if choice.model else choice.provider


def make_policy(kind: str, routes: str, queue_limit_s: float = DEFAULT_QUEUE_LIMIT_S) -> Policy:
    """A policy from a person's words (`hearth ask --policy KIND --routes A,B`); ValueError says
    what is wrong."""
    if kind not in POLICIES:
        raise ValueError(f"unknown policy {kind!r}: choose one of {', '.join(POLICIES)}")
    if not 0 < queue_limit_s < 3600:
        raise ValueError("the queue limit is in seconds, between 0 and 3600")
    return _checked(Policy(kind, parse_routes(routes), float(queue_limit_s)))


def _checked(policy: Policy) -> Policy:
    if policy.kind == "local-first" and policy.routes[0].is_local:
        raise ValueError("local-first needs a remote route to fall back on (a provider's name), not local")
    return policy


@dataclass(frozen=True, slots=True)
class Recent:
    """One route's recent figures (p50 over its answers of the last 7 days; None: none recorded)."""

    answers: int
    ttft_ms: float | None
    tokens_per_s: float | None

    @property
    def cost_ms(self) -> float:
        """The time to the first 100 tokens of an answer: how fast compares routes. A route with
        no figures yet costs nothing, so it is tried first (once: then it has figures)."""
        if self.ttft_ms is None:
            return -math.inf
        if not self.tokens_per_s:  # a reply in one piece has no decode speed: its TTFT is all there is
            return self.ttft_ms
        return self.ttft_ms + _SAMPLE_TOKENS * 1000 / self.tokens_per_s


def recent_of(report: StatsReport) -> Recent:
    """A route's figures from its statistics (the model with the most answers on it)."""
    if not report.routes:
        return Recent(0, None, None)
    top = report.routes[0]
    return Recent(top.answers, top.ttft_ms.p50, top.tokens_per_s.p50)


class Planner:
    """A chat's choice -> the Route of one turn. `report(query)`: Store.stats.report (blocking: run
    in a thread here), read for fast's candidates, at most once a minute per route."""

    def __init__(
        self,
        router: Router,
        report: Callable[[StatsQuery], StatsReport],
        *,
        clock: Callable[[], float] = time.time,
        cache_s: float = 60.0,
    ) -> None:
        self.router = router
        self._report = report
        self._clock = clock
        self._cache_s = cache_s
        self._recent: dict[str, tuple[float, Recent]] = {}
        self._tried: set[str] = set()  # routes chosen once for having no figures

    async def route(self, store: SettingsReader, conversation_id: int | None, choice: Choice) -> Route:
        """The route of the next turn under `choice`, with `reason` (and local-first's fallback).
        Raises ProviderError (provider_gone) when a chosen provider is no longer configured."""
        if isinstance(choice, RouteChoice):
            return await self.router.for_conversation(store, conversation_id, choice)
        if choice.kind == "local-first":
            fallback = await self.router.for_conversation(store, conversation_id, choice.routes[0])
            local = await self.router.for_conversation(store, conversation_id, LOCAL)
            return dataclasses.replace(
                local, reason="local-first", fallback=fallback, queue_limit_s=choice.queue_limit_s
            )
        if choice.kind == "deep":
            deep = await self.router.for_conversation(store, conversation_id, choice.routes[0])
            return dataclasses.replace(deep, reason="deep")
        best, reason = await self._fastest(choice.routes)
        chosen = await self.router.for_conversation(store, conversation_id, best)
        return dataclasses.replace(chosen, reason=reason)

    async def _fastest(self, routes: Sequence[RouteChoice]) -> tuple[RouteChoice, str]:
        names = [r.provider or "local" for r in routes]
        figures = [await self._recent_of(name) for name in names]
        # A route with no figures is tried first, once; until its answer brings figures it comes last.
        costs = [math.inf if f.cost_ms == -math.inf and n in self._tried else f.cost_ms for n, f in zip(names, figures)]
        i = min(range(len(routes)), key=lambda k: costs[k])  # the first of equals
        got = figures[i]
        if got.ttft_ms is None:
            self._tried.add(names[i])
            return routes[i], "fast: no recent answers yet, tried first"
        speed = f" / {got.tokens_per_s:,.0f} tok/s" if got.tokens_per_s else ""
        return routes[i], f"fast: best recent TTFT {got.ttft_ms:,.0f} ms{speed}"

    async def _recent_of(self, name: str) -> Recent:
        now = self._clock()
        cached = self._recent.get(name)
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        report = await asyncio.to_thread(self._report, StatsQuery(since=now - RECENT_S, route=name, slowest=0))
        recent = recent_of(report)
        if recent.ttft_ms is not None:  # no figures yet: read again next turn, its first answer may bring them
            self._recent[name] = (now, recent)
        return recent
