"""The stream gateway behind `hearth serve`: which model answers a request, when it may start,
and the events it streams. HTTP-free (app.server.http speaks HTTP).

- Model ids: `local/<model id>` for the model the engine has loaded, `<provider>/<model>` for
  every provider in providers.toml (read per request, so one added a moment ago is served).
- The local model answers one request at a time (one KV cache, one engine process): the
  others wait in the engine's own FIFO, the same queue as the answers of the window whose
  engine this may be, each told its place (`Queued` events); at most `queue_limit` wait; beyond
  it a request is refused at once with 429 and a Retry-After estimated from recent answers.
- Providers answer concurrently up to `provider_limit` requests each (the same queue rule).
  Their replies run through the engine's own RemoteProvider and FilterStage (wire formats,
  timeouts, retries, stop strings, <think> splitting, redaction, the key scrubbed from text)
  in a thread per reply, so a slow provider never holds the local model or another provider.
- Cancel is real: closing an Opened stream cancels the local generation within a token, or
  stops reading the provider's reply and closes its connection.
Nothing here touches the store: the stream path stays thin.
Must not: import Qt or Starlette, or block the event loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from app.core.providers import KeyStore, ProviderConfig, ProvidersFile
from app.server.local_engine import LocalEngine
from app.server.metrics import Metrics
from app.server.wire import ApiError, ChatRequest
from engine.client import AsyncEngine
from engine.commands import Generate, RemoteSpec, Sampling
from engine.events import Cancelled, Failed, Final, Queued, StreamEvent
from engine.filters import FilterConfig

__all__ = ["DEFAULT_MAX_TOKENS", "TICK_S", "Gateway", "LocalModelEntry", "Opened"]

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 2048  # when a request names none; the context bounds it further
SETTLE_S = 10.0  # how long a stopped generation may take to say it stopped
TICK_S = 10.0  # a waiting stream says it is alive this often (clients read with a timeout)


@dataclass(frozen=True)
class LocalModelEntry:
    id: str  # the library's id (or the file's name): served as local/<id>
    n_ctx: int


@dataclass
class Opened:
    """A request sent to its model: its events (a local one's start with its place in the
    engine's queue; None: nothing came for TICK_S, so a stream can say it is alive), and `close`
    (stops it, also while it waits its turn). `settled`: its terminal event, also when the client
    went away first (then the generation's Cancelled, with what it had generated), or None when
    none came within SETTLE_S. `queued_ms`: its wait for a provider's slot before it was sent;
    `engine_wait_ms`: its wait in the engine's queue after (set when its turn comes)."""

    events: AsyncIterator[StreamEvent | None]
    close: Callable[[], None]
    queued_ms: float
    command_sent_at: float
    settled: asyncio.Future[StreamEvent | None]
    engine_wait_ms: float = 0.0


class _Slots:
    """`limit` at a time, the rest waiting in order, at most `queue_limit` of them."""

    def __init__(self, limit: int, queue_limit: int) -> None:
        self._free = limit
        self._waiters: list[asyncio.Future[None]] = []
        self._queue_limit = queue_limit

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, retry_after: Callable[[int], int]) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        if len(self._waiters) >= self._queue_limit:
            wait = retry_after(len(self._waiters))
            raise ApiError(
                "queue_full",
                f"The model is busy: {len(self._waiters)} requests are already waiting. Try again in {wait} s.",
                status=429,
                type_="rate_limit_error",
                headers={"Retry-After": str(wait)},
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif not waiter.cancelled():  # handed the slot just as it gave up: pass it on
                self.release()
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class Gateway:
    def __init__(
        self,
        engine: AsyncEngine | None,
        local: LocalModelEntry | Callable[[], LocalModelEntry | None] | None,
        providers: ProvidersFile,
        keys: KeyStore,
        metrics: Metrics,
        *,
        queue_limit: int = 16,
        provider_limit: int = 4,
        keeper: LocalEngine | None = None,
        attached: RemoteSpec | None = None,
    ) -> None:
        """`local`: the loaded model, or a function that says which it is now (the window's
        model changes while it serves). `keeper`: starts the engine again when it died (`hearth
        serve`'s own engine; the window reloads its engine itself). `attached`: the local model
        runs in another Hearth process's shared engine, reached over its socket (app.core.
        engine_share): local requests go there, and wait in its queue; set to None (and `keeper`
        given) once this process loads its own."""
        self._engine = engine
        self.keeper = keeper
        self.attached = attached
        self._local = local if callable(local) else (lambda: local)
        self._providers = providers
        self._keys = keys
        self.metrics = metrics
        self._queue_limit = queue_limit
        self._provider_limit = provider_limit
        self._local_open = 0  # local requests sent to the engine and not ended (one answers, the rest wait)
        self._provider_slots: dict[str, _Slots] = {}
        # Negative, and far from the window's job ids: never a generation row's id.
        self._ids = itertools.count(-1_000_000_000, -1)
        self.running = 0
        self._background: set[asyncio.Future[None]] = set()

    @property
    def local(self) -> LocalModelEntry | None:
        return self._local()

    def health(self) -> dict[str, object]:
        """The local engine's state and restarts, for /metrics (empty when nothing keeps it)."""
        return {"engine": self.keeper.health().as_dict()} if self.keeper is not None else {}

    # -- models ----------------------------------------------------------------------------
    def model_ids(self) -> list[tuple[str, str]]:
        """(id, owner) of every model served: the local one first, then each provider's."""
        local = self.local
        out = [(f"local/{local.id}", "hearth")] if local is not None else []
        out += [(f"{p.name}/{p.model or 'default'}", p.name) for p in self._load_providers()]
        return out

    def passage_chars(self, model: str) -> int:
        """The characters of passages a request for `model` may carry, as the window and `hearth ask`
        give them (app.core.chat_service.ChatService._passage_chars): about a quarter of the local
        model's context, 12,000 for a provider's. ApiError 404 for an unknown model."""
        local = self.local
        if self._resolve(model) is None and local is not None:
            return max(1_000, int(local.n_ctx * 0.25 * 3))
        return 12_000

    def _load_providers(self) -> list[ProviderConfig]:
        try:
            return self._providers.load()
        except Exception as e:  # noqa: BLE001 - a broken providers.toml must not take the local model down
            log.warning("providers.toml cannot be read: %s", e)
            return []

    def _resolve(self, model: str) -> ProviderConfig | None:
        """None for the local model, else the provider (with the model asked for)."""
        name, _, rest = model.partition("/")
        local = self.local
        if name == "local" and local is not None and rest in ("", local.id):
            return None
        for p in self._load_providers():
            if p.name.lower() == name.lower():
                return p if rest in ("", "default", p.model) else dataclasses.replace(p, model=rest)
        known = ", ".join(i for i, _ in self.model_ids()) or "none"
        raise ApiError(
            "model_not_found", f"There is no model {model!r} here. Served: {known}.", status=404, param="model"
        )

    # -- one request -----------------------------------------------------------------------
    async def open(self, request: ChatRequest, received_at: float) -> Opened:
        """Wait for the request's turn (ApiError 429 when the queue is full, 404 for an unknown
        model) and start it."""
        provider = self._resolve(request.model)
        if provider is None:
            # Sent at once: the engine queues it with every other front-end's local answers.
            if self._local_open > self._queue_limit:
                wait = self._retry_after(self._local_open - 1)
                raise ApiError(
                    "queue_full",
                    f"The model is busy: {self._local_open - 1} requests are already waiting. Try again in {wait} s.",
                    status=429,
                    type_="rate_limit_error",
                    headers={"Retry-After": str(wait)},
                )
            self._local_open += 1
            slots = None
        else:
            slots = self._provider_slots.setdefault(
                provider.name.lower(), _Slots(self._provider_limit, self._queue_limit)
            )
            await slots.acquire(self._retry_after)
        queued_ms = (time.perf_counter() - received_at) * 1000
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.running -= 1
                if slots is None:
                    self._local_open -= 1
                else:
                    slots.release()

        self.running += 1
        try:
            if provider is None and self.attached is not None:
                source, stop = self._remote(request, self.attached, FilterConfig(), self.attached.name)
            elif provider is None:
                if self.keeper is not None:
                    await self.keeper.ready()  # one restart, however many wait for it
                source, stop = self._local_stream(request)
            else:
                source, stop = self._remote(
                    request, provider.spec(self._keys.key(provider)), provider.filters(), provider.name
                )
        except BaseException:
            release()
            raise
        sent_at = time.perf_counter()
        loop = asyncio.get_running_loop()
        settled: asyncio.Future[StreamEvent | None] = loop.create_future()
        # The generation is read here, at its own pace, into this request's buffer: the turn
        # passes on when the generation ends, not when a slow client has read it all.
        buffer: asyncio.Queue[StreamEvent | None] = asyncio.Queue()

        def turn_came() -> None:
            opened.engine_wait_ms = (time.perf_counter() - sent_at) * 1000

        self.keep(asyncio.ensure_future(_pump(source(), buffer, settled, release, turn_came)))

        def give_up() -> None:  # the generation never said it ended: free the turn anyway
            release()
            if not settled.done():
                settled.set_result(None)

        def close() -> None:
            stop()  # the generation ends within a token; the pump then releases the turn
            loop.call_later(SETTLE_S, give_up)

        opened = Opened(_read(buffer), close, queued_ms, sent_at, settled)
        return opened

    def keep(self, task: asyncio.Future[None]) -> None:
        """Hold a background task (a save) until it ends."""
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for background saves and records (at shutdown)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    def _retry_after(self, waiting: int) -> int:
        per = (self.metrics.median_total_ms() or 5000.0) / 1000
        return max(1, math.ceil(per * (waiting + 1)))

    def _sampling(self, request: ChatRequest, max_tokens: int) -> Sampling:
        base = Sampling()
        return Sampling(
            temperature=base.temperature if request.temperature is None else request.temperature,
            top_p=base.top_p if request.top_p is None else request.top_p,
            seed=secrets.randbits(31) if request.seed is None else request.seed % 2**31,
            max_tokens=max_tokens,
        )

    def _local_stream(
        self, request: ChatRequest
    ) -> tuple[Callable[[], AsyncIterator[StreamEvent]], Callable[[], None]]:
        if self._engine is None or self.local is None:
            raise ApiError("model_not_found", "No local model is loaded.", status=404, param="model")
        cmd = Generate(
            next(self._ids),
            request.messages,
            self._sampling(request, request.max_tokens or DEFAULT_MAX_TOKENS),
            filters=FilterConfig(stop=request.stop),
            tools=request.tools,
            tool_choice=request.tool_choice,
        )
        stream = self._engine.generate(cmd)
        if self.keeper is None:
            return stream.__aiter__, lambda: stream.cancel("user")

        async def events() -> AsyncIterator[StreamEvent]:
            async for event in stream:
                if isinstance(event, Failed) and event.code == "engine_crashed":
                    event = dataclasses.replace(
                        event, message=f"{event.message} The server starts the engine again for the next request."
                    )
                yield event

        return events, lambda: stream.cancel("user")

    def _remote(
        self, request: ChatRequest, spec: RemoteSpec, filters: FilterConfig, name: str
    ) -> tuple[Callable[[], AsyncIterator[StreamEvent]], Callable[[], None]]:
        """A reply from a provider (or the shared engine this process is attached to), in a
        thread; its events come through a queue, which any number of readers in turn may read
        to the end (the source is re-iterable, like a local stream)."""
        from engine.filter_stage import FilterStage
        from engine.remote import RemoteProvider

        filters = dataclasses.replace(filters, stop=filters.stop + request.stop)
        # 0: the client named no limit, so none is sent (the server's own default applies).
        cmd = Generate(
            next(self._ids),
            request.messages,
            self._sampling(request, request.max_tokens or 0),
            remote=spec,
            filters=filters,
            tools=request.tools,
            tool_choice=request.tool_choice,
        )
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue()
        cancel = threading.Event()

        def put(event: StreamEvent | None) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def run() -> None:
            provider = None
            try:
                provider = RemoteProvider(spec)
                provider.generate(cmd, cancel, FilterStage(filters, put, cancel).emit, time.perf_counter())
            except Exception as e:  # noqa: BLE001 - any failure ends this reply, never the server
                put(Failed(cmd.generation_id, "engine_error", f"The provider {name} failed: {e}"))
            finally:
                if provider is not None:
                    provider.close()
                put(None)

        threading.Thread(target=run, name=f"serve-{name}", daemon=True).start()

        async def events() -> AsyncIterator[StreamEvent]:
            while (event := await queue.get()) is not None:
                yield event
            queue.put_nowait(None)  # the end stays the end for a later reader

        return events, cancel.set


def _terminal(event: StreamEvent) -> bool:
    return isinstance(event, Final | Cancelled | Failed)


async def _pump(
    events: AsyncIterator[StreamEvent],
    buffer: asyncio.Queue[StreamEvent | None],
    settled: asyncio.Future[StreamEvent | None],
    release: Callable[[], None],
    turn_came: Callable[[], None],
) -> None:
    """Read the generation to its end into the buffer; at the terminal event, settle and pass
    the turn on. `turn_came` when the first event that is not a place in the queue arrives."""
    end: StreamEvent | None = None
    waiting = True
    try:
        async for event in events:
            if waiting and not (isinstance(event, Queued) and event.ahead > 0):
                waiting = False
                turn_came()
            buffer.put_nowait(event)
            if _terminal(event):
                end = event
                break
    finally:
        release()
        if not settled.done():
            settled.set_result(end)
        buffer.put_nowait(None)


async def _read(buffer: asyncio.Queue[StreamEvent | None]) -> AsyncIterator[StreamEvent | None]:
    """The events, and None after each TICK_S without one (the end is the buffer's None)."""
    while True:
        try:
            event = await asyncio.wait_for(buffer.get(), TICK_S)
        except TimeoutError:
            yield None
            continue
        if event is None:
            return
        yield event
