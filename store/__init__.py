"""Hearth's storage: SQLite (WAL, one writer thread) through SQLModel.

Owns the schema and its migrations, the single writer, reads, checkpoints and the
generation record. Never imports Qt or `app`; uses only `engine`'s public types.

    store = Store.open(path)                     # migrate, start the writer, recover leftovers
    ids = await store.create_turn(None, "Hi", "smollm2")
    store.checkpoint(ids.generation_id, "Hel")   # returns a Future at once
    store.finalize(ids.generation_id, text="Hello", state=GenerationState.COMPLETED,
                   metrics={...}, final_token_at=time.perf_counter())
    store.add_health_listener(fn)                # fn(ok, message) when saves fail / recover
    store.backup(Path("copy.db"))                # a consistent copy while writes go on
    store.close()                                # drains queued writes
"""

from store.errors import StoreError
from store.rows import ConversationChange, ConversationRow, GenerationRow, MessageRow, TurnIds, TurnStart
from store.search import SearchHit
from store.store import Store
from store.tool_rows import ToolReply, ToolRun
from store.writer import StoreWriter

__all__ = [
    "ConversationChange",
    "ConversationRow",
    "GenerationRow",
    "MessageRow",
    "SearchHit",
    "Store",
    "StoreError",
    "StoreWriter",
    "ToolReply",
    "ToolRun",
    "TurnIds",
    "TurnStart",
]
