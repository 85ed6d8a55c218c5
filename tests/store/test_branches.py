"""Branches on the real store and the real model: edits and regenerations add siblings, never
replace; the prompt is the path to the branch shown, nothing else; deletes and forks."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from app.core.chat_service import ChatService
from engine.client import AsyncEngine
from engine.commands import ChatMessage, Sampling
from engine.states import GenerationState
from store import Store, StoreError


def _finish(store: Store, generation_id: int, text: str) -> None:
    store.finalize(
        generation_id, text=text, state=GenerationState.COMPLETED, metrics={}, final_token_at=time.perf_counter()
    ).result()


def _contents(rows) -> list[str]:
    return [r.content for r in rows]


def test_edit_and_regenerate_add_siblings_and_the_prompt_is_the_path_shown(data_dir: Path) -> None:
    async def body(store: Store):
        first = await store.begin_turn(None, "Hi, I am Ada.", "m")
        _finish(store, first.ids.generation_id, "Hello Ada.")
        cid = first.ids.conversation_id
        second = await store.begin_turn(cid, "What is my name?", "m")
        _finish(store, second.ids.generation_id, "Ada.")
        edited = await store.begin_edit(second.ids.user_message_id, "What is 2 + 2?", "m")
        _finish(store, edited.ids.generation_id, "4.")
        again = await store.begin_regenerate(edited.ids.assistant_message_id, "m")
        _finish(store, again.ids.generation_id, "Four.")
        shown = await store.messages(cid)
        tree = await store.tree(cid)
        await store.switch_branch(second.ids.user_message_id)
        old_branch = await store.messages(cid)
        third = await store.begin_turn(cid, "And my surname?", "m")
        return first, second, edited, again, shown, tree, old_branch, third

    with Store.open(data_dir / "h.db") as store:
        first, second, edited, again, shown, tree, old_branch, third = asyncio.run(body(store))
    # Nothing was replaced: six messages, both questions and all three answers are kept.
    assert sorted(_contents(tree)) == sorted(
        ["Hi, I am Ada.", "Hello Ada.", "What is my name?", "Ada.", "What is 2 + 2?", "4.", "Four."]
    )
    # The prompt of the edit is the path to it: the other question is not in it.
    assert _pairs(edited.history) == [
        ("user", "Hi, I am Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is 2 + 2?"),
    ]
    assert again.history == edited.history  # a regeneration answers the same question
    assert _contents(shown) == ["Hi, I am Ada.", "Hello Ada.", "What is 2 + 2?", "Four."]
    assert shown[2].siblings == (second.ids.user_message_id, edited.ids.user_message_id)
    assert shown[3].siblings == (edited.ids.assistant_message_id, again.ids.assistant_message_id)
    assert shown[0].siblings == (first.ids.user_message_id,)
    # Switching back shows the first branch, and a new message continues that branch only.
    assert _contents(old_branch) == ["Hi, I am Ada.", "Hello Ada.", "What is my name?", "Ada."]
    assert _pairs(third.history) == [
        ("user", "Hi, I am Ada."),
        ("assistant", "Hello Ada."),
        ("user", "What is my name?"),
        ("assistant", "Ada."),
        ("user", "And my surname?"),
    ]


def test_delete_removes_a_subtree_everywhere_and_the_branch_shown_moves_off_it(data_dir: Path) -> None:
    async def body(store: Store):
        first = await store.begin_turn(None, "Tell me about owls.", "m")
        _finish(store, first.ids.generation_id, "Owls hoot.")
        cid = first.ids.conversation_id
        secret = await store.begin_turn(cid, "My password is hunter2", "m")
        _finish(store, secret.ids.generation_id, "Noted hunter2.")
        edit = await store.begin_edit(secret.ids.user_message_id, "Tell me about larks.", "m")
        _finish(store, edit.ids.generation_id, "Larks sing.")
        await store.switch_branch(secret.ids.user_message_id)
        found_before = await store.search("hunter2")
        deleted = await store.delete_message(secret.ids.user_message_id)
        return cid, edit, found_before, deleted, await store.messages(cid), await store.search("hunter2")

    with Store.open(data_dir / "h.db") as store:
        cid, edit, found_before, deleted, shown, found_after = asyncio.run(body(store))
    assert len(found_before) == 2 and found_after == []  # gone from the search index too
    assert deleted == (cid, 2)  # the message and its answer
    # The branch shown was the deleted one: the sibling that is left is shown now.
    assert _contents(shown) == ["Tell me about owls.", "Owls hoot.", "Tell me about larks.", "Larks sing."]
    assert shown[2].siblings == (edit.ids.user_message_id,)


def test_deleting_the_first_message_empties_the_conversation_and_a_new_turn_starts_it_again(data_dir: Path) -> None:
    async def body(store: Store):
        first = await store.begin_turn(None, "one", "m")
        _finish(store, first.ids.generation_id, "1")
        cid = first.ids.conversation_id
        await store.delete_message(first.ids.user_message_id)
        empty = await store.messages(cid)
        again = await store.begin_turn(cid, "two", "m")
        return empty, again

    with Store.open(data_dir / "h.db") as store:
        empty, again = asyncio.run(body(store))
    assert empty == []
    assert _pairs(again.history) == [("user", "two")]


def test_an_answer_being_written_is_neither_deleted_regenerated_nor_forked(data_dir: Path) -> None:
    async def body(store: Store):
        turn = await store.begin_turn(None, "Go on", "m")  # queued: this process is alive
        errors = []
        for attempt in (
            store.delete_message(turn.ids.user_message_id),
            store.begin_regenerate(turn.ids.assistant_message_id, "m"),
            store.fork(turn.ids.assistant_message_id),
        ):
            with pytest.raises(StoreError) as caught:
                await attempt
            errors.append(caught.value.code)
        return errors, await store.tree(turn.ids.conversation_id)

    with Store.open(data_dir / "h.db") as store:
        errors, tree = asyncio.run(body(store))
    assert errors == ["busy", "busy", "busy"]
    assert len(tree) == 2  # nothing changed


def test_edit_refuses_answers_and_empty_text_and_regenerate_refuses_questions(data_dir: Path) -> None:
    async def body(store: Store):
        turn = await store.begin_turn(None, "Q", "m")
        _finish(store, turn.ids.generation_id, "A")
        codes = []
        for attempt in (
            store.begin_edit(turn.ids.assistant_message_id, "x", "m"),
            store.begin_edit(turn.ids.user_message_id, "  ", "m"),
            store.begin_regenerate(turn.ids.user_message_id, "m"),
            store.begin_edit(999, "x", "m"),
        ):
            with pytest.raises(StoreError) as caught:
                await attempt
            codes.append(caught.value.code)
        return codes

    with Store.open(data_dir / "h.db") as store:
        assert asyncio.run(body(store)) == ["not_editable", "empty_message", "not_regenerable", "no_such_message"]


def test_fork_copies_the_path_into_a_new_chat_and_leaves_the_original_alone(data_dir: Path) -> None:
    async def body(store: Store):
        first = await store.begin_turn(None, "Plan a trip", "m")
        _finish(store, first.ids.generation_id, "Where to?")
        cid = first.ids.conversation_id
        second = await store.begin_turn(cid, "Lisbon", "m")
        _finish(store, second.ids.generation_id, "Great choice.")
        made = await store.fork(first.ids.assistant_message_id)
        copy = await store.messages(made.conversation_id)
        grown = await store.begin_turn(made.conversation_id, "Porto instead", "m")
        return made, copy, grown, await store.messages(cid)

    with Store.open(data_dir / "h.db") as store:
        made, copy, grown, original = asyncio.run(body(store))
    assert made.changed.created and made.changed.row.title == "Fork: Plan a trip" and made.copied == 2
    assert _contents(copy) == ["Plan a trip", "Where to?"]
    assert copy[1].state is GenerationState.COMPLETED  # the answer's record came along
    assert _pairs(grown.history) == [("user", "Plan a trip"), ("assistant", "Where to?"), ("user", "Porto instead")]
    assert _contents(original) == ["Plan a trip", "Where to?", "Lisbon", "Great choice."]


def test_a_forks_title_tells_it_from_its_source_where_a_list_cuts_titles(data_dir: Path) -> None:
    """The mark comes first: a title made from a long question ends cut mid-word, and a list
    cuts it again at its right edge, where " (fork)" used to be."""
    question = "How do I keep a sourdough starter alive while I am away for three weeks in August?"

    async def body(store: Store) -> list[str]:
        first = await store.begin_turn(None, question, "m")
        _finish(store, first.ids.generation_id, "Feed it and refrigerate it.")
        source = (await store.list_conversations())[0].title
        forks = [await store.fork(first.ids.assistant_message_id) for _ in range(2)]
        of_fork = await store.fork((await store.messages(forks[0].conversation_id))[-1].id)
        return [source, *(f.changed.row.title for f in forks), of_fork.changed.row.title]

    with Store.open(data_dir / "h.db") as store:
        source, fork1, fork2, fork_of_fork = asyncio.run(body(store))
    assert source.endswith("…") and len(source) == 60  # cut mid-word from the question
    assert fork1 == f"Fork: {source}" and fork2 == f"Fork 2: {source}" and fork_of_fork == f"Fork 3: {source}"
    assert len({t[:24] for t in (source, fork1, fork2, fork_of_fork)}) == 4  # the first words differ


def test_only_the_end_of_the_branch_shown_can_be_continued(data_dir: Path) -> None:
    async def body(store: Store):
        turn = await store.begin_turn(None, "Q", "m")
        store.finalize(
            turn.ids.generation_id,
            text="half",
            state=GenerationState.CANCELLED,
            cancel_reason="user",
            metrics={},
            final_token_at=time.perf_counter(),
        ).result()
        other = await store.begin_regenerate(turn.ids.assistant_message_id, "m")
        _finish(store, other.ids.generation_id, "whole")
        with pytest.raises(StoreError) as caught:
            await store.begin_continue(turn.ids.assistant_message_id, "m")
        await store.switch_branch(turn.ids.assistant_message_id)
        resumed = await store.begin_continue(turn.ids.assistant_message_id, "m")
        return caught.value, resumed

    with Store.open(data_dir / "h.db") as store:
        refused, resumed = asyncio.run(body(store))
    assert refused.code == "not_continuable" and "branch" in refused.message
    assert resumed.text == "half"


# -- the real model ---------------------------------------------------------------------------------------------
async def _with_service(data_dir: Path, body):
    store = Store.open(data_dir / "hearth.db")
    engine = AsyncEngine()
    try:
        return await body(ChatService(store, engine), store)
    finally:
        engine.close()
        store.close()


async def _answer(turn) -> str:
    async for _ in turn:
        pass
    await turn.saved
    return turn.outcome.text


def test_the_model_sees_only_the_branch_shown_and_regenerate_draws_a_fresh_seed(
    model_path: Path, data_dir: Path
) -> None:
    sampling = Sampling(temperature=1.0, max_tokens=24)

    async def body(service: ChatService, store: Store):
        await service.load(str(model_path))
        first = await service.start_turn(None, "Hi.", sampling=sampling)
        await _answer(first)
        cid = first.ids.conversation_id
        second = await service.start_turn(cid, "Write one line about the sea.", sampling=sampling)
        texts = [await _answer(second)]
        original = (await store.get_generation(second.ids.generation_id)).prompt_tokens
        # A long question on another branch: if it leaked into the prompt, the count would jump.
        long = await service.start_edit(
            second.ids.user_message_id, "Describe this. " + "word " * 300, sampling=Sampling.greedy(4)
        )
        await _answer(long)
        long_prompt = (await store.get_generation(long.ids.generation_id)).prompt_tokens
        await store.switch_branch(second.ids.assistant_message_id)
        regenerated = []
        for _ in range(3):
            again = await service.start_regenerate(second.ids.assistant_message_id, sampling=sampling)
            texts.append(await _answer(again))
            regenerated.append((await store.get_generation(again.ids.generation_id)).prompt_tokens)
        return original, long_prompt, regenerated, texts, await store.messages(cid)

    original, long_prompt, regenerated, texts, shown = asyncio.run(_with_service(data_dir, body))
    assert long_prompt > original + 250
    assert regenerated == [original] * 3  # the same path, without the long branch
    assert len(set(texts)) >= 2  # a fixed seed would give four identical lines
    assert len(shown[-1].siblings) == 4 and shown[-1].id == shown[-1].siblings[-1]  # the newest is shown
    assert shown[-2].content == "Write one line about the sea."


def _pairs(history: list[ChatMessage]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in history]
