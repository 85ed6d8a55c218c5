"""The chat service on the real path (model, engine process, store): what the window and CLI rely on."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from app.core.chat_service import ChatService
from app.core.errors import InputError
from engine.client import AsyncEngine
from engine.commands import Sampling
from engine.errors import EngineUnavailable, ModelLoadError
from engine.events import Delta
from engine.states import GenerationState
from store import Store


async def _with_service(data_dir: Path, body):
    store = Store.open(data_dir / "hearth.db")
    engine = AsyncEngine()
    try:
        return await body(ChatService(store, engine), store, engine)
    finally:
        engine.close()
        store.close()


async def _wait_for(predicate, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def test_engine_killed_mid_reply_keeps_the_partial_text_and_the_next_message_works(
    model_path: Path, data_dir: Path
) -> None:
    async def body(service: ChatService, store: Store, engine: AsyncEngine):
        await service.load(str(model_path))
        turn = await service.start_turn(None, "Tell me a long story.", sampling=Sampling.greedy(2000, ignore_eos=True))
        shown = []
        async for ev in turn:
            if isinstance(ev, Delta):
                shown.append(ev.text)
                if len(shown) == 20:
                    os.kill(engine.pid, signal.SIGKILL)
        await turn.saved
        crashed = (await store.messages(turn.ids.conversation_id))[-1]
        await _wait_for(lambda: service.model_state == "ready")  # reloaded by itself
        again = await service.start_turn(turn.ids.conversation_id, "Now a short one.", sampling=Sampling.greedy(8))
        async for _ in again:
            pass
        await again.saved
        return turn.outcome, "".join(shown), crashed, again.outcome

    outcome, shown, crashed, again = asyncio.run(_with_service(data_dir, body))
    assert outcome.state is GenerationState.FAILED and outcome.error_code == "engine_crashed"
    assert "stopped unexpectedly" in outcome.error_message
    assert crashed.state is GenerationState.FAILED and crashed.error_code == "engine_crashed"
    assert crashed.content == shown and len(shown) > 0  # what the person saw is what was saved
    assert again.state is GenerationState.COMPLETED


def test_empty_message_and_unloadable_model_are_refused_with_a_reason(not_gguf_file: Path, data_dir: Path) -> None:
    async def body(service: ChatService, store: Store, engine: AsyncEngine):
        with pytest.raises(ModelLoadError):
            await service.load(str(not_gguf_file))
        with pytest.raises(InputError):
            await service.start_turn(None, "  \n ")
        with pytest.raises(EngineUnavailable) as err:
            await service.start_turn(None, "hello")
        return err.value, service.model_state, await store.list_conversations()

    error, state, conversations = asyncio.run(_with_service(data_dir, body))
    assert state == "error" and not_gguf_file.name in error.message
    assert conversations == []  # nothing half-created


def test_a_consumer_that_stops_reading_cancels_the_answer_and_it_is_saved_with_what_it_saw(
    model_path: Path, data_dir: Path
) -> None:
    async def body(service: ChatService, store: Store, engine: AsyncEngine):
        await service.load(str(model_path))
        turn = await service.start_turn(None, "Tell me a long story.", sampling=Sampling.greedy(2000, ignore_eos=True))
        seen = []
        async for ev in turn:
            if isinstance(ev, Delta):
                seen.append(ev.text)
                if len(seen) == 5:
                    break  # the reader goes away, mid-answer
        t0 = asyncio.get_running_loop().time()
        await asyncio.wait_for(turn.saved, 10)
        took = asyncio.get_running_loop().time() - t0
        saved = (await store.messages(turn.ids.conversation_id))[-1]
        return "".join(seen), saved, took, turn.outcome

    seen, saved, took, outcome = asyncio.run(_with_service(data_dir, body))
    assert saved.state is GenerationState.CANCELLED and saved.content == seen
    assert outcome.cancel_reason == "user" and took < 2
