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

from typing import TYPE_CHECKING, Any

from store.errors import StoreError

if TYPE_CHECKING:
    from store.rows import ConversationChange, ConversationRow, GenerationRow, MessageRow, TurnIds, TurnStart
    from store.search import SearchHit
    from store.store import Store
    from store.tool_rows import ToolReply, ToolRun
    from store.writer import StoreWriter

# Imported when first named: `import store.stats` (`hearth stats`) must not load SQLModel and the
# writer with them (0.3-0.5 s of a command that has 1 s).
_LAZY = {
    "ConversationChange": "store.rows",
    "ConversationRow": "store.rows",
    "GenerationRow": "store.rows",
    "MessageRow": "store.rows",
    "TurnIds": "store.rows",
    "TurnStart": "store.rows",
    "SearchHit": "store.search",
    "Store": "store.store",
    "ToolReply": "store.tool_rows",
    "ToolRun": "store.tool_rows",
    "StoreWriter": "store.writer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'store' has no attribute {name!r}")


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
