"""Every way of starting an answer in a chat that uses documents reads passages: a new message,
an edited one, a regenerated answer (passages found again for its question), and a continued
answer (the same passages it had, numbered as before). Through the real ChatService, store and
engine process, to a real HTTP server that records the prompt the model was sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.core.chat_service import ChatService
from app.core.documents.retrieval import Augmented, with_passages
from app.core.documents.search import Found
from app.core.routes import Route
from engine.client import AsyncEngine
from engine.commands import RemoteSpec
from store import Store
from tests.sse_server import Script, ScriptedServer
from tests.stream_samples import openai_stream

PASSAGES = {
    "Fastnet": "The Fastnet lighthouse stands on a rock off Ireland, first lit in 1854.",
    "Etna": "Mount Etna erupts often; it is on Sicily.",
}


def _found(text: str) -> Found:
    return Found(1, "/notes/facts.md", None, "Facts", 0, len(text), text, 0.03, ("text",), 1.0, None)


async def _answer(turn) -> str:  # type: ignore[no-untyped-def]
    async for _ in turn:
        pass
    await turn.saved
    return str(turn.outcome.text)


def test_new_edited_regenerated_and_continued_answers_all_read_their_passages(tmp_path: Path) -> None:
    asked: list[str] = []  # the questions retrieval was run for

    async def augment(question: str, max_chars: int) -> Augmented:
        asked.append(question)
        hits = [_found(t) for key, t in PASSAGES.items() if key.lower() in question.lower()]
        text, used = with_passages(question, hits, max_chars=max_chars)
        return Augmented(text, used, 12.0, None)

    scripts = [
        Script(body=openai_stream(["First lit in 1854 [1]."])),
        Script(body=openai_stream(["In 1854, says [1]."])),
        Script(body=openai_stream(["Etna is on Sicily [1]."])),
        Script(body=openai_stream(["It is on"], finish_reason=None, done=False), close_early=True),
        Script(body=openai_stream([" Sicily [1]."])),
    ]
    with ScriptedServer(scripts) as server:
        route = Route(
            RemoteSpec(name="box", wire="openai", base_url=server.base_url + "/v1", model="m", max_retries=0),
            None,
            "box",
        )

        async def body() -> list[object]:
            store = Store.open(tmp_path / "hearth.db")
            engine = AsyncEngine()
            try:
                service = ChatService(store, engine)
                first = await service.start_turn(None, "When was Fastnet first lit?", route=route, augment=augment)
                await _answer(first)
                again = await service.start_regenerate(first.ids.assistant_message_id, route=route, augment=augment)
                await _answer(again)
                edited = await service.start_edit(
                    first.ids.user_message_id, "Where is Etna?", route=route, augment=augment
                )
                await _answer(edited)
                broken = await service.start_turn(
                    first.ids.conversation_id, "And Etna, once more?", route=route, augment=augment
                )
                await _answer(broken)  # the server hangs up mid-answer
                kept = await store.sources(broken.ids.assistant_message_id)
                resumed = await service.continue_message(broken.ids.assistant_message_id, route=route)
                text = await _answer(resumed)
                return [kept, await store.sources(broken.ids.assistant_message_id), text, broken.outcome.state]
            finally:
                engine.close()
                store.close()

        kept, after, text, broken_state = asyncio.run(body())
        sent = [req.json["messages"][-1]["content"] for req in server.requests if req.json]
        continued = [req.json["messages"] for req in server.requests if req.json][-1]

    assert asked == ["When was Fastnet first lit?"] * 2 + ["Where is Etna?", "And Etna, once more?"]
    assert "[1] facts.md, § Facts\n> The Fastnet lighthouse" in sent[0]
    assert sent[1] == sent[0]  # regenerated: the same question with its passages, found again
    assert sent[2].startswith("Where is Etna?\n\n") and "> Mount Etna erupts often" in sent[2]
    assert str(broken_state) != "completed" and [s.text for s in kept] == [PASSAGES["Etna"]]
    # Continued without retrieval of its own: the question it answers carries the passages it had.
    question = next(m["content"] for m in reversed(continued) if m["role"] == "user")
    assert question.startswith("And Etna, once more?\n\n") and "[1] facts.md, § Facts\n> Mount Etna" in question
    assert after == kept and text.endswith("Sicily [1].")
