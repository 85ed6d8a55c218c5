"""Branch writes on a chat with a tool step, on a real store: a fork copies the answer's calls
and the tool messages with their call ids and runs (the fork's next prompt holds the same tool
steps); deleting a result or editing the question before a tool step leaves no call without
its result in any prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tool_chat import finish, tool_chat

from store import Store


def run[T](coro: object) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def steps(rows) -> list[tuple[object, ...]]:
    return [(r.role, r.content, r.tool_calls, r.tool_call_id, r.tool_run) for r in rows]


def test_a_fork_of_a_chat_with_a_tool_step_copies_calls_results_and_runs(data_dir: Path) -> None:
    with Store.open(data_dir / "hearth.db") as store:
        chat = tool_chat(store)
        fork = run(store.fork(chat.answer_id))
        assert fork.copied == 5
        original = run(store.messages(chat.conversation_id))
        copied = run(store.messages(fork.conversation_id))
        assert steps(copied) == steps(original)
        assert [r.tool_run.name if r.tool_run else None for r in copied] == [
            None,
            None,
            "test/echo",
            "hearth/date_time",
            None,
        ]
        # The fork's next question is asked with the same tool steps before it.
        turn = run(store.begin_turn(fork.conversation_id, "And tomorrow?", "smol"))
        again = run(store.begin_turn(chat.conversation_id, "And tomorrow?", "smol"))
        assert turn.history == again.history
        assert [m.role for m in turn.history] == ["user", "assistant", "tool", "tool", "assistant", "user"]
        assert turn.history[1].tool_calls == original[1].tool_calls


def test_a_fork_at_the_answer_that_asked_keeps_its_calls_and_no_prompt_sends_them_unanswered(data_dir: Path) -> None:
    with Store.open(data_dir / "hearth.db") as store:
        chat = tool_chat(store)
        fork = run(store.fork(chat.asking_id))
        copied = run(store.messages(fork.conversation_id))
        assert [r.role for r in copied] == ["user", "assistant"] and len(copied[1].tool_calls) == 2
        turn = run(store.begin_turn(fork.conversation_id, "Never mind", "smol"))
        assert [(m.role, m.tool_calls) for m in turn.history] == [
            ("user", ()),
            ("assistant", ()),  # its calls have no results here: left out of the prompt
            ("user", ()),
        ]


def test_deleting_a_result_takes_what_came_after_it_and_the_prompt_drops_the_unanswered_call(data_dir: Path) -> None:
    with Store.open(data_dir / "hearth.db") as store:
        chat = tool_chat(store)
        _, deleted = run(store.delete_message(chat.tool_ids[1]))  # the clock's result, and the answer after it
        assert deleted == 2
        shown = run(store.messages(chat.conversation_id))
        assert [r.role for r in shown] == ["user", "assistant", "tool"]
        turn = run(store.begin_turn(chat.conversation_id, "Try the clock again", "smol"))
        asked = turn.history[1]
        assert [c.id for c in asked.tool_calls] == ["call_echo"]  # the clock's call lost its result
        assert [(m.role, m.tool_call_id or None) for m in turn.history[2:]] == [("tool", "call_echo"), ("user", None)]


def test_editing_the_question_before_a_tool_step_starts_a_branch_without_it(data_dir: Path) -> None:
    with Store.open(data_dir / "hearth.db") as store:
        chat = tool_chat(store)
        edit = run(store.begin_edit(chat.question_id, "Just tell me the time", "smol"))
        finish(store, edit.ids.generation_id, "It is noon.")
        assert [(m.role, m.tool_calls) for m in edit.history] == [("user", ())]
        assert [r.role for r in run(store.messages(chat.conversation_id))] == ["user", "assistant"]
        run(store.switch_branch(chat.question_id))  # back to the branch with the tool step: all of it
        back = run(store.messages(chat.conversation_id))
        assert [r.role for r in back] == ["user", "assistant", "tool", "tool", "assistant"]
        assert back[2].tool_call_id == "call_echo" and back[3].tool_run is not None
