"""Model policies (app.core.policies) on the real store, scripted OpenAI-compatible servers on
127.0.0.1 as providers, and the bundled model for local answers.

What a person notices: a local-first chat answers from the provider when this computer has no
model, when the question does not fit the small local context, or when the local model is busy
past the limit, and the answer says which route and why; the route is stored with the answer,
exported and imported, and counted in the statistics under its name; fast picks the route with
the better recent figures (a new route is tried first, once); deep answers from its route.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

from app.core.chat_service import ChatService
from app.core.exchange.hearth_json import from_json, to_json
from app.core.message_view import from_outcome, from_row
from app.core.policies import Planner, Policy, choice_from_settings, choice_settings, make_policy
from app.core.providers import ProviderConfig, ProvidersFile
from app.core.routes import LOCAL, RouteChoice, Router
from app.core.turn import Turn
from engine.client import AsyncEngine
from engine.commands import Sampling
from engine.events import Delta, Queued, StreamEvent
from engine.wire import load_formats
from store import Store
from store.stats import StatsQuery

T = TypeVar("T")


def _served(text: str, pause_s: float = 0.0) -> Script:
    return Script(body=[pause_s, *openai_stream([text])] if pause_s else openai_stream([text]))


def _providers(data_dir: Path, **servers: ScriptedServer) -> Router:
    file = ProvidersFile(data_dir, set(load_formats()))
    file.save(
        [ProviderConfig(name, "openai", s.base_url + "/v1", model="m", max_retries=0) for name, s in servers.items()]
    )
    return Router(file)


def _run[T](data_dir: Path, body: Callable[[Store, ChatService], Awaitable[T]]) -> T:
    async def main() -> T:
        store = Store.open(data_dir / "hearth.db")
        engine = AsyncEngine()
        try:
            return await body(store, ChatService(store, engine))
        finally:
            await engine.aclose()
            store.close()

    return asyncio.run(main())


async def _answer(turn: Turn) -> list[StreamEvent]:
    events = [e async for e in turn]
    await turn.saved
    return events


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, Delta))


def test_a_policy_is_kept_in_the_chat_settings_and_a_damaged_one_reads_as_the_local_model() -> None:
    policy = make_policy("local-first", "box:big", 5)
    assert choice_from_settings(choice_settings(policy)) == policy
    assert choice_from_settings({"provider": "box"}) == RouteChoice.of("box")
    assert choice_from_settings(choice_settings(RouteChoice.of("box"))) == RouteChoice.of("box")
    for damaged in (
        "fast",
        {"kind": "quick"},
        {"kind": "fast", "routes": "box"},
        {"kind": "fast", "routes": []},
        {"kind": "local-first", "routes": ["local"]},
        {"kind": "deep", "routes": ["a"], "queue_limit_s": -1},
    ):
        assert choice_from_settings({"policy": damaged, "provider": "box"}) == LOCAL, damaged
    with pytest.raises(ValueError, match="remote route to fall back on"):
        make_policy("local-first", "local")


def test_local_first_with_no_local_model_answers_from_its_fallback_and_says_why(data_dir: Path) -> None:
    with ScriptedServer([_served("From the box.")]) as box:
        router = _providers(data_dir, box=box)
        footers: list[str] = []

        async def body(store: Store, service: ChatService) -> tuple[str, object, object]:
            route = await Planner(router, store.stats.report).route(store, None, make_policy("local-first", "box"))
            turn = await service.start_turn(None, "Hello?", route=route)
            text = _text(await _answer(turn))
            row = (await store.messages(turn.ids.conversation_id))[-1]
            report = await asyncio.to_thread(store.stats.report, StatsQuery(route="box"))
            # The footer under the answer, live (from the turn's outcome) and read back alike.
            footers.extend([from_row(row).footer, from_outcome(text, turn.outcome, None).footer])
            return text, (row.route, row.route_reason, turn.answerer), report.routes

        text, (route, reason, answerer), routes = _run(data_dir, body)
    assert text == "From the box."
    assert route == "box"
    assert reason == "local-first: fell back because no local model is loaded"
    assert answerer is not None and answerer.model == "box: m"  # type: ignore[attr-defined]
    assert [(r.route, r.model, r.completed) for r in routes] == [("box", "box: m", 1)]  # type: ignore[attr-defined]
    assert len(footers) == 2 and footers[0] == footers[1]
    assert footers[0].endswith(" · box (local-first: fell back because no local model is loaded)"), footers


def test_deep_answers_from_its_route_and_a_fixed_route_is_recorded_as_fixed(data_dir: Path) -> None:
    with ScriptedServer([_served("Deep.")]) as deep, ScriptedServer([_served("Plain.")]) as plain:
        router = _providers(data_dir, deep=deep, plain=plain)

        async def body(store: Store, service: ChatService) -> list[tuple[str | None, str | None, str]]:
            planner = Planner(router, store.stats.report)
            first = await service.start_turn(
                None, "Think hard.", route=await planner.route(store, None, make_policy("deep", "deep"))
            )
            await _answer(first)
            cid = first.ids.conversation_id
            second = await service.start_turn(
                cid, "And now?", route=await planner.route(store, cid, RouteChoice.of("plain"))
            )
            await _answer(second)
            return [(m.route, m.route_reason, m.content) for m in await store.messages(cid) if m.role == "assistant"]

        rows = _run(data_dir, body)
    assert rows == [("deep", "deep", "Deep."), ("plain", "fixed", "Plain.")]


def test_fast_tries_each_new_route_once_then_picks_the_better_recent_figures(data_dir: Path) -> None:
    with ScriptedServer([_served("Slow.", pause_s=0.4)]) as slow, ScriptedServer([_served("Quick.")]) as quick:
        router = _providers(data_dir, slow=slow, quick=quick)

        async def body(store: Store, service: ChatService) -> list[tuple[str | None, str | None]]:
            planner = Planner(router, store.stats.report)
            policy = make_policy("fast", "slow,quick")
            cid = None
            for text in ("one", "two", "three", "four"):
                turn = await service.start_turn(cid, text, route=await planner.route(store, cid, policy))
                await _answer(turn)
                cid = turn.ids.conversation_id
            return [(m.route, m.route_reason) for m in await store.messages(cid) if m.role == "assistant"]  # type: ignore[arg-type]

        rows = _run(data_dir, body)
    assert rows[:2] == [
        ("slow", "fast: no recent answers yet, tried first"),
        ("quick", "fast: no recent answers yet, tried first"),
    ]
    assert [r[0] for r in rows[2:]] == ["quick", "quick"]
    assert rows[2][1] is not None and rows[2][1].startswith("fast: best recent TTFT ")
    assert rows[2][1].endswith(" ms")  # one piece: no decode speed to compare


def test_the_route_and_its_reason_are_exported_and_imported_and_an_older_file_imports(data_dir: Path) -> None:
    with ScriptedServer([_served("From the box.")]) as box:
        router = _providers(data_dir, box=box)

        async def body(store: Store, service: ChatService) -> tuple[dict[str, object], list[object], list[object]]:
            route = await Planner(router, store.stats.report).route(store, None, make_policy("local-first", "box"))
            turn = await service.start_turn(None, "Hello?", route=route)
            await _answer(turn)
            exported = to_json(await asyncio.to_thread(store.reads.export, turn.ids.conversation_id))
            older = json.loads(json.dumps(exported))
            for m in older["messages"]:
                if m["generation"]:
                    del m["generation"]["route"], m["generation"]["route_reason"]
            found: list[list[object]] = []
            for name, value in (("copy", exported), ("older", older)):
                with Store.open(data_dir / f"{name}.db") as elsewhere:  # another Hearth's store
                    incoming = from_json(json.loads(json.dumps(value)))
                    added = await elsewhere.import_conversation(incoming.conversation, incoming.key)  # type: ignore[union-attr]
                    assert added is not None
                    messages = await elsewhere.messages(added.row.id)
                    found.append([(m.route, m.route_reason) for m in messages if m.role == "assistant"])
            copied, plain = found
            return exported, copied, plain

        exported, copied, plain = _run(data_dir, body)
    generation = exported["messages"][1]["generation"]  # type: ignore[index]
    assert generation["route"] == "box"  # type: ignore[index]
    assert generation["route_reason"] == "local-first: fell back because no local model is loaded"  # type: ignore[index]
    assert copied == [("box", "local-first: fell back because no local model is loaded")]
    assert plain == [(None, None)]


@pytest.mark.slow
def test_local_first_answers_locally_and_falls_back_when_the_prompt_does_not_fit(
    data_dir: Path, model_path: Path
) -> None:
    with ScriptedServer([_served("From the box.")]) as box:
        router = _providers(data_dir, box=box)

        async def body(store: Store, service: ChatService) -> list[tuple[str | None, str | None, str | None]]:
            await service.load(str(model_path), n_ctx=256)
            planner = Planner(router, store.stats.report)
            policy = make_policy("local-first", "box")
            first = await service.start_turn(
                None, "Say hi.", route=await planner.route(store, None, policy), sampling=Sampling.greedy(8)
            )
            await _answer(first)
            cid = first.ids.conversation_id
            long = "Tell me about this: " + "lorem ipsum dolor sit amet " * 120  # ~700 tokens, the context is 256
            second = await service.start_turn(
                cid, long, route=await planner.route(store, cid, policy), sampling=Sampling.greedy(8)
            )
            events = await _answer(second)
            assert _text(events) == "From the box."
            return [(m.route, m.route_reason, m.error_code) for m in await store.messages(cid) if m.role == "assistant"]

        rows = _run(data_dir, body)
    assert rows[0] == ("local", "local-first", None)
    route, reason, error = rows[1]
    assert (route, error) == ("box", None)
    assert reason is not None and reason.startswith("local-first: fell back because the prompt did not fit (")
    assert reason.endswith(" > 256 tokens)"), reason


@pytest.mark.slow
def test_local_first_falls_back_when_the_queue_wait_passes_its_limit(data_dir: Path, model_path: Path) -> None:
    with ScriptedServer([_served("From the box.")]) as box:
        router = _providers(data_dir, box=box)

        async def body(store: Store, service: ChatService) -> tuple[list[StreamEvent], list[object], object]:
            await service.load(str(model_path))
            held = await service.start_turn(
                None, "Tell me a very long story.", sampling=Sampling.greedy(4000, ignore_eos=True)
            )
            holding = asyncio.ensure_future(_answer(held))
            route = await Planner(router, store.stats.report).route(store, None, make_policy("local-first", "box", 0.5))
            turn = await service.start_turn(None, "Hello?", route=route, sampling=Sampling.greedy(8))
            events = await asyncio.wait_for(_answer(turn), 30)
            still = held.outcome is None  # the held answer went on meanwhile
            held.cancel()
            await holding
            rows = [
                (m.route, m.route_reason)
                for m in await store.messages(turn.ids.conversation_id)
                if m.role == "assistant"
            ]
            return events, rows, still

        events, rows, still = _run(data_dir, body)
    assert [e.ahead for e in events if isinstance(e, Queued)][:1] == [1]  # it was told it waits, then the box answered
    assert _text(events) == "From the box."
    assert rows == [("box", "local-first: fell back because the queue wait passed 0.5 s (1 ahead)")]
    assert still is True


def test_planner_leaves_a_fixed_route_as_it_was(data_dir: Path) -> None:
    router = _providers(data_dir)

    async def body(store: Store, service: ChatService) -> object:
        return await Planner(router, store.stats.report).route(store, None, LOCAL)

    route = _run(data_dir, body)
    assert route.remote is None and route.reason == "fixed" and route.fallback is None  # type: ignore[attr-defined]
    assert isinstance(make_policy("fast", "local,box"), Policy)
