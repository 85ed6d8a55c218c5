"""Branch writes: edit and resend, regenerate, switch branch, fork, delete a message.

None of them replaces anything: an edit adds a sibling user message with a new answer, a
regeneration adds a sibling answer, and both become the branch shown (store.tree). Each runs
on the writer thread in one transaction and returns what changed, with the prompt history
of a new answer read in the same transaction (the command path's one round trip).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlmodel import Session

from engine.states import GenerationState
from store import tree, writes
from store.conversations import TITLE_MAX
from store.errors import StoreError
from store.limits import check_message
from store.reads import history_in
from store.rows import Answerer, ConversationChange, TurnIds, TurnStart
from store.summaries import summary_in

__all__ = ["Fork", "begin_edit", "begin_regenerate", "delete_message", "fork", "fork_title", "switch_branch"]

_FORK_MARK = re.compile(r"\AFork(?: \d+)?: ")  # what fork_title puts before a title


@dataclass(frozen=True, slots=True)
class Fork:
    """A new conversation holding a copy of the path to one message of another."""

    conversation_id: int
    changed: ConversationChange
    copied: int  # messages copied


def begin_edit(
    session: Session, message_id: int, text: str, model: str | Answerer, *, now: float, owner: str | None
) -> TurnStart:
    """Send `text` in place of the user message `message_id`: a sibling with a new answer."""
    check_message(text)
    conn = session.connection()
    conversation_id, parent_id, role = _message(session, message_id)
    if role != "user":
        raise StoreError(
            "not_editable",
            f"Message {message_id} is an answer; only your messages can be edited (regenerate an answer instead).",
        )
    _touch(session, conversation_id, now)
    user = int(
        conn.exec_driver_sql(
            "INSERT INTO message (conversation_id, parent_id, role, content, created_at, updated_at)"
            " VALUES (?, ?, 'user', ?, ?, ?)",
            (conversation_id, parent_id, text, now, now),
        ).lastrowid
        or 0
    )
    assistant, generation = writes.add_answer(conn, conversation_id, user, model, now=now, owner=owner)
    return _turn(session, TurnIds(conversation_id, user, assistant, generation))


def begin_regenerate(
    session: Session, message_id: int, model: str | Answerer, *, now: float, owner: str | None
) -> TurnStart:
    """A new answer beside the answer `message_id` (same question), made the branch shown."""
    conversation_id, parent_id, role = _message(session, message_id)
    if role != "assistant" or parent_id is None:
        raise StoreError(
            "not_regenerable",
            f"Message {message_id} is not an answer; only answers can be regenerated (edit your message instead).",
        )
    _refuse_live(session, [message_id])
    _touch(session, conversation_id, now)
    assistant, generation = writes.add_answer(
        session.connection(), conversation_id, parent_id, model, now=now, owner=owner
    )
    return _turn(session, TurnIds(conversation_id, parent_id, assistant, generation))


def switch_branch(session: Session, message_id: int) -> int:
    """Show the branch through `message_id` (down to its newest reply); returns the new leaf."""
    conversation_id, _, _ = _message(session, message_id)
    conn = session.connection()
    leaf = tree.latest_leaf_under(conn, message_id)
    tree.set_leaf(conn, conversation_id, leaf)
    return leaf


def fork(session: Session, message_id: int, *, now: float) -> Fork:
    """A new conversation with a copy of the path from the first message to `message_id`.

    Answers keep their text, their tool calls and their latest generation's record, tool messages
    their result and run (so the fork's prompt history holds the same tool steps); one still
    being written is refused (StoreError busy): its text is not final yet.
    """
    conversation_id, _, _ = _message(session, message_id)
    conn = session.connection()
    path = tree.path_to(conn, message_id)
    _refuse_live(session, path)
    title = conn.exec_driver_sql("SELECT title FROM conversation WHERE id = ?", (conversation_id,)).scalar()
    new_title = fork_title(session, str(title or ""))
    new_id = int(
        conn.exec_driver_sql(
            "INSERT INTO conversation (title, created_at, updated_at, settings_json, title_by) "
            "SELECT ?, ?, ?, settings_json, title_by FROM conversation WHERE id = ?",
            (new_title, now, now, conversation_id),
        ).lastrowid
        or 0
    )
    parent: int | None = None
    for old_id in path:
        parent = int(
            conn.exec_driver_sql(
                "INSERT INTO message (conversation_id, parent_id, role, content, reasoning, created_at, updated_at, "
                "tool_calls, tool_call_id, tool_meta) SELECT ?, ?, role, content, reasoning, created_at, updated_at, "
                "tool_calls, tool_call_id, tool_meta FROM message WHERE id = ?",
                (new_id, parent, old_id),
            ).lastrowid
            or 0
        )
        conn.exec_driver_sql(
            "INSERT INTO generation (message_id, model, state, cancel_reason, error_code, error_message, "
            "prompt_tokens, cached_tokens, completion_tokens, command_latency_ms, ttft_ms, tokens_per_s, total_ms, "
            "finalization_lag_ms, created_at, finished_at, checkpointed_at, stop_reason, threads, retrieval_ms, "
            "retrieval_note, route, route_reason) "
            "SELECT ?, model, state, cancel_reason, error_code, error_message, prompt_tokens, cached_tokens, "
            "completion_tokens, command_latency_ms, ttft_ms, tokens_per_s, total_ms, finalization_lag_ms, "
            "created_at, finished_at, checkpointed_at, stop_reason, threads, retrieval_ms, retrieval_note, route, "
            "route_reason FROM generation WHERE message_id = ? ORDER BY id DESC LIMIT 1",
            (parent, old_id),
        )
        # An answer's sources go with it: a fork of a cited answer still names what it cited.
        conn.exec_driver_sql(
            'INSERT INTO message_source (message_id, ordinal, path, page, heading, start, "end", score, text, '
            'collection) SELECT ?, ordinal, path, page, heading, start, "end", score, text, collection '
            "FROM message_source WHERE message_id = ?",
            (parent, old_id),
        )
    tree.set_leaf(conn, new_id, parent)
    return Fork(new_id, writes.conversation_change(session, new_id, created=True), len(path))


def fork_title(session: Session, title: str) -> str:
    """A fork's title: `Fork: <title>`, or `Fork 2: <title>`... where that one is taken. The mark
    comes first, so that a list which cuts long titles at the right still tells a fork from its
    source (a title made from a long first message already ends cut mid-word). A fork of a fork
    is numbered from the same title, not marked twice."""
    base = _FORK_MARK.sub("", title, count=1)
    conn = session.connection()
    for n in itertools.count(1):
        mark = "Fork: " if n == 1 else f"Fork {n}: "
        candidate = mark + base[: TITLE_MAX - len(mark)]
        if conn.exec_driver_sql("SELECT 1 FROM conversation WHERE title = ? LIMIT 1", (candidate,)).first() is None:
            return candidate
    raise AssertionError("unreachable")


def delete_message(session: Session, message_id: int, owner_is_dead: Callable[[str | None], bool]) -> tuple[int, int]:
    """Delete the message and everything under it (store.tree.delete_subtree); returns
    (conversation id, messages deleted)."""
    conversation_id, deleted, _ = tree.delete_subtree(session.connection(), message_id, owner_is_dead)
    return conversation_id, deleted


def _message(session: Session, message_id: int) -> tuple[int, int | None, str]:
    row = (
        session.connection()
        .exec_driver_sql("SELECT conversation_id, parent_id, role FROM message WHERE id = ?", (message_id,))
        .first()
    )
    if row is None:
        raise StoreError("no_such_message", f"There is no message {message_id}.")
    return int(row[0]), row[1], str(row[2])


def _touch(session: Session, conversation_id: int, now: float) -> None:
    session.connection().exec_driver_sql("UPDATE conversation SET updated_at = ? WHERE id = ?", (now, conversation_id))


def _refuse_live(session: Session, message_ids: list[int]) -> None:
    """Refuse when one of these answers is being written right now (by any process)."""
    marks = ",".join("?" * len(message_ids))
    live = (
        session.connection()
        .exec_driver_sql(
            f"SELECT 1 FROM generation WHERE message_id IN ({marks}) AND state IN (?, ?) LIMIT 1",
            (*message_ids, GenerationState.QUEUED.value, GenerationState.STREAMING.value),
        )
        .first()
    )
    if live is not None:
        raise StoreError("busy", "That answer is being written right now; wait for it or stop it first.")


def _turn(session: Session, ids: TurnIds) -> TurnStart:
    return TurnStart(
        ids,
        history_in(session, ids.conversation_id, before_message_id=ids.assistant_message_id),
        writes.conversation_change(session, ids.conversation_id, created=False),
        summary_in(session, ids.conversation_id, before_message_id=ids.assistant_message_id),
    )
