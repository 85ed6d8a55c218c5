"""Remote mode end to end against a real OpenAI-compatible server: llama-cpp-python's server
serving the bundled model on 127.0.0.1 (tests/llama_server.py), through the real engine
process, chat service, store and CLI.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llama_server import API_KEY, LlamaServer
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

from app.core.chat_service import ChatService
from app.core.paths import db_path
from app.core.routes import Route
from engine.client import AsyncEngine
from engine.commands import ChatMessage, Generate, RemoteSpec, Sampling
from engine.events import Cancelled, Delta, Final, Started
from engine.states import GenerationState
from store import Store


def remote(server: LlamaServer, **kw: object) -> RemoteSpec:
    values: dict[str, object] = {
        "name": "lan-box",
        "wire": "openai",
        "base_url": server.base_url,
        "model": server.model,
    }
    values.update(kw)
    return RemoteSpec(**values)  # type: ignore[arg-type]


def test_a_reply_streams_from_the_server_through_the_engine(llama_server: LlamaServer) -> None:
    async def main() -> list[object]:
        engine = AsyncEngine()
        engine.start()
        try:
            cmd = Generate(
                1, (ChatMessage("user", "Name three colours."),), Sampling.greedy(24), remote=remote(llama_server)
            )
            return [e async for e in engine.generate(cmd)]
        finally:
            engine.close()

    events = asyncio.run(main())
    assert isinstance(events[0], Started)
    deltas = [e for e in events if isinstance(e, Delta) and e.text]
    assert len(deltas) > 3 and "".join(d.text for d in deltas).strip()
    final = events[-1]
    assert isinstance(final, Final) and final.stop_reason in ("eog", "length")
    assert final.stats.ttft_ms > 0 and final.stats.decode_tokens_per_s > 0 and final.stats.completion_tokens > 3


def test_cancel_stops_a_remote_reply_at_once(llama_server: LlamaServer) -> None:
    async def main() -> tuple[list[object], float]:
        engine = AsyncEngine()
        engine.start()
        try:
            stream = engine.generate(
                Generate(
                    2,
                    (ChatMessage("user", "Write a long story about a lighthouse."),),
                    Sampling.greedy(400),
                    remote=remote(llama_server),
                )
            )
            events: list[object] = []
            asked = 0.0
            async for e in stream:
                events.append(e)
                if isinstance(e, Delta) and e.text and not asked:
                    asked = time.monotonic()
                    stream.cancel()
            return events, time.monotonic() - asked
        finally:
            engine.close()

    events, took = asyncio.run(main())
    assert isinstance(events[-1], Cancelled) and events[-1].reason == "user"
    assert took < 0.5
    assert sum(1 for e in events if isinstance(e, Delta) and e.text) < 30  # it did not run on to 400 tokens


def test_one_conversation_switches_between_local_and_remote(
    llama_server: LlamaServer, model_path: Path, data_dir: Path
) -> None:
    async def main() -> list[tuple[str, str, str]]:
        store = Store.open(db_path(data_dir))
        engine = AsyncEngine()
        service = ChatService(store, engine)
        try:
            await service.load(str(model_path))
            sampling = Sampling.greedy(16)
            first = await service.start_turn(None, "My name is Ada.", sampling=sampling)
            [e async for e in first]
            cid = first.ids.conversation_id
            second = await service.start_turn(
                cid, "What is my name?", sampling=sampling, route=Route(remote(llama_server), None, "llama-server")
            )
            [e async for e in second]
            third = await service.start_turn(cid, "Thanks!", sampling=sampling)
            [e async for e in third]
            for turn in (first, second, third):
                await turn.saved
                assert turn.outcome is not None and turn.outcome.state is GenerationState.COMPLETED, turn.outcome
        finally:
            engine.close()
            store.close()
        with sqlite3.connect(db_path(data_dir)) as db:
            return db.execute(
                "SELECT m.role, m.content, g.model FROM message m LEFT JOIN generation g "
                "ON g.message_id = m.id WHERE m.conversation_id = ? ORDER BY m.id",
                (cid,),
            ).fetchall()

    rows = asyncio.run(main())
    assert [r[0] for r in rows] == ["user", "assistant"] * 3
    assert all(r[1].strip() for r in rows)
    models = [r[2] for r in rows if r[0] == "assistant"]
    assert models[0] == models[2] == "SmolLM2 135M Instruct (Q4_1)"
    assert models[1] == f"lan-box: {llama_server.model}"


def test_the_remote_turn_sees_the_whole_conversation(model_path: Path, data_dir: Path) -> None:
    """The server gets every earlier turn, local ones included (checked where it can be seen)."""

    async def main(server: ScriptedServer) -> None:
        store = Store.open(db_path(data_dir))
        engine = AsyncEngine()
        service = ChatService(store, engine)
        try:
            await service.load(str(model_path))
            first = await service.start_turn(None, "My name is Ada.", sampling=Sampling.greedy(8))
            [e async for e in first]
            spec = RemoteSpec(name="box", wire="openai", base_url=server.base_url + "/v1", model="m")
            second = await service.start_turn(
                first.ids.conversation_id, "What is my name?", route=Route(spec, None, spec.name)
            )
            [e async for e in second]
            await second.saved
            assert second.outcome is not None and second.outcome.text == "Ada."
            history = server.requests[0].json["messages"]
            assert [m["role"] for m in history] == ["user", "assistant", "user"]
            assert history[0]["content"] == "My name is Ada." and history[1]["content"] == first.outcome.text
        finally:
            engine.close()
            store.close()

    with ScriptedServer([Script(body=openai_stream(["Ada", "."]))]) as server:
        asyncio.run(main(server))


def _hearth(*args: str, data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_ask_with_a_provider_and_the_key_leaves_no_trace_in_the_data_dir(
    llama_server_keyed: LlamaServer, data_dir: Path
) -> None:
    env = {**os.environ, "HEARTH_API_KEY_LAN_BOX": API_KEY}
    r = _hearth(
        "providers",
        "add",
        "lan-box",
        "--url",
        llama_server_keyed.base_url,
        "--model",
        llama_server_keyed.model,
        data_dir=data_dir,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    listed = _hearth("providers", "list", data_dir=data_dir, env=env).stdout
    assert "lan-box\topenai" in listed and "key: yes" in listed

    r = _hearth(
        "ask", "Say hello.", "--provider", "lan-box", "--max-tokens", "12", "--json", data_dir=data_dir, env=env
    )
    assert r.returncode == 0, r.stderr
    assert '"state": "completed"' in r.stdout and f'"model": "lan-box: {llama_server_keyed.model}"' in r.stdout
    # The conversation keeps its route: opened in the window, it answers from lan-box too.
    from app.core.routes import RouteChoice
    from store import Store

    with Store.open(data_dir / "hearth.db") as store:
        settings = asyncio.run(store.conversation_settings(json.loads(r.stdout)["conversation_id"]))
    assert RouteChoice.from_settings(settings) == RouteChoice.of("lan-box")

    wrong = {**os.environ, "HEARTH_API_KEY_LAN_BOX": "not-the-key-123"}
    r = _hearth("ask", "Hi", "--provider", "lan-box", data_dir=data_dir, env=wrong)
    assert r.returncode == 1 and "lan-box refused the request (401): check its API key" in r.stderr

    r = _hearth("ask", "Hi", "--provider", "nowhere", data_dir=data_dir, env=env)
    assert r.returncode == 2 and "There is no provider 'nowhere' (configured: lan-box)" in r.stderr

    leaked = [p for p in data_dir.rglob("*") if p.is_file() and API_KEY.encode() in p.read_bytes()]
    assert leaked == [], f"the API key was written to {leaked}"
    assert any(data_dir.rglob("hearth.db*"))  # the database (and its WAL) were there to search


@pytest.mark.slow
def test_no_keychain_gives_a_clear_message_naming_the_variable(data_dir: Path) -> None:
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    assert (
        _hearth(
            "providers", "add", "Cloud AI", "--url", "https://api.example.invalid/v1", data_dir=data_dir, env=env
        ).returncode
        == 0
    )
    r = subprocess.run(
        [sys.executable, "-m", "app", "providers", "set-key", "Cloud AI", "--data-dir", str(data_dir)],
        input="sk-abcdef123456\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 2
    assert "No system keychain is available" in r.stderr and "HEARTH_API_KEY_CLOUD_AI" in r.stderr
    assert "sk-abcdef123456" not in (data_dir / "providers.toml").read_text()


@pytest.mark.slow
def test_ask_prints_reasoning_apart_from_the_answer(data_dir: Path) -> None:
    pieces = ["<think>", "The person", " greets me.", "</think>", "\n\nHello", " there!"]
    with ScriptedServer([Script(body=openai_stream(pieces))]) as server:
        env = dict(os.environ)
        assert (
            _hearth(
                "providers", "add", "box", "--url", server.base_url + "/v1", "--model", "m", data_dir=data_dir, env=env
            ).returncode
            == 0
        )
        r = _hearth("ask", "Hi", "--provider", "box", data_dir=data_dir, env=env)
        j = _hearth("ask", "Hi", "--provider", "box", "--json", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Hello there!\n"  # the answer alone: no tags, no reasoning
    assert "[thinking] The person greets me." in r.stderr
    assert '"reasoning": "The person greets me."' in j.stdout and '"text": "Hello there!"' in j.stdout
    # Saved apart from the answer, so a reopened conversation still shows it, folded.
    with sqlite3.connect(db_path(data_dir)) as db:
        saved = db.execute("SELECT content, reasoning FROM message WHERE role = 'assistant'").fetchall()
    assert saved == [("Hello there!", "The person greets me.")] * 2

    async def reopened() -> tuple[str, str]:
        with Store.open(db_path(data_dir)) as store:
            rows = await store.messages(json.loads(j.stdout)["conversation_id"])
            return rows[-1].content, rows[-1].reasoning

    assert asyncio.run(reopened()) == ("Hello there!", "The person greets me.")


@pytest.mark.slow
def test_a_dify_chat_keeps_its_own_conversation_across_turns(data_dir: Path) -> None:
    """Dify holds the history on its side, by the conversation_id it sends back; the next turn
    of the same Hearth conversation must send that id, or Dify starts over each time."""
    from stream_samples import DIFY_CONVERSATION, dify_chat_stream

    with ScriptedServer([Script(body=dify_chat_stream(["Hello", " Ada."]))]) as server:
        env = dict(os.environ)
        assert (
            _hearth(
                "providers",
                "add",
                "my-dify",
                "--kind",
                "dify-chat",
                "--url",
                server.base_url,
                data_dir=data_dir,
                env=env,
            ).returncode
            == 0
        )
        first = _hearth("ask", "My name is Ada.", "--provider", "my-dify", "--json", data_dir=data_dir, env=env)
        assert first.returncode == 0, first.stderr
        cid = json.loads(first.stdout)["conversation_id"]
        second = _hearth(
            "ask", "What is my name?", "--provider", "my-dify", "--conversation", str(cid), data_dir=data_dir, env=env
        )
        other = _hearth("ask", "A new topic.", "--provider", "my-dify", data_dir=data_dir, env=env)
        assert second.returncode == 0 and other.returncode == 0, (second.stderr, other.stderr)
        sent = [r.json for r in server.requests]
    assert sent[0]["conversation_id"] == "" and sent[0]["query"] == "My name is Ada."
    assert sent[1]["conversation_id"] == DIFY_CONVERSATION and sent[1]["query"] == "What is my name?"
    assert sent[2]["conversation_id"] == ""  # another Hearth conversation is another Dify conversation
