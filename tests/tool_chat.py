"""A saved chat with a tool step, written through the store's own writes (as app.core.tool_loop
saves one): a question, an answer that asks for two tools, their results as tool messages (one
ok, one failed), and the answer after them. For tests of what reads, exports, searches, prints
and forks such a chat; tests/core/test_tool_loop.py builds them through the real loop."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from engine.commands import ToolCall
from engine.states import GenerationState
from store import Store
from store.tool_rows import ToolReply, ToolRun

__all__ = ["ECHO", "ToolChat", "finish", "tool_chat"]

ECHO = ToolCall("call_echo", "test/echo", '{"text": "hi from the kettle"}')
CLOCK = ToolCall("call_clock", "hearth/date_time", "{}")


@dataclass(frozen=True)
class ToolChat:
    conversation_id: int
    question_id: int
    asking_id: int  # the answer that asked for the tools
    tool_ids: tuple[int, int]  # the two tool messages, in the calls' order
    answer_id: int  # the answer after the results


def finish(store: Store, generation_id: int, text: str, **fields: object) -> None:
    store.finalize(
        generation_id,
        text=text,
        state=GenerationState.COMPLETED,
        metrics={},
        final_token_at=time.perf_counter(),
        **fields,  # type: ignore[arg-type]
    ).result(5)


def tool_chat(store: Store, *, echo_text: str = "hi from the kettle", conversation_id: int | None = None) -> ToolChat:
    first = asyncio.run(store.begin_turn(conversation_id, "Ask the echo tool, then tell me the time", "smol"))
    finish(store, first.ids.generation_id, "Let me ask.", tool_calls=(ECHO, CLOCK))
    replies = [
        ToolReply(ECHO.id, echo_text, ToolRun("test/echo", "ok", 12.4)),
        ToolReply(CLOCK.id, "The clock is not reachable.", ToolRun("hearth/date_time", "error", 3.0)),
    ]
    step = asyncio.run(store.begin_tool_step(first.ids.assistant_message_id, replies, "smol"))
    finish(store, step.ids.generation_id, "The echo tool said hi; the clock failed.")
    echo_id, clock_id = (m.id for m in asyncio.run(store.messages(step.ids.conversation_id)) if m.role == "tool")
    return ToolChat(
        step.ids.conversation_id,
        first.ids.user_message_id,
        first.ids.assistant_message_id,
        (echo_id, clock_id),
        step.ids.assistant_message_id,
    )
