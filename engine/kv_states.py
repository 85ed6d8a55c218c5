"""The KV cache of conversations the engine left, kept so that coming back costs no re-read.

Owns: a least-recently-used store of llama.cpp sequence states (the KV cells of sequence 0,
without the logits: `llama_state_seq_get_data`), each with the tokens it holds, keyed by
conversation, within a byte budget (`SavedStates`, which only keeps bytes), and
`ConversationStates`, which saves the context's state when another conversation's turn comes
and restores it when its own comes back. Switching to another chat and back then restores the
first chat's cache instead of reading its whole history again.
Must not: touch a llama context outside `ConversationStates.switch_to`, which engine.local calls
from the generating thread between two generations (a context is not thread-safe).
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from typing import Any

__all__ = ["BUDGET_BYTES", "ConversationStates", "SavedStates", "common_prefix"]

# The states kept, together: a 7B model's 4k-token chat is ~0.5 GB of KV in f16; the bundled
# model's whole 2k context is ~45 MB. The oldest chat's state goes first.
BUDGET_BYTES = 1 << 30


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class SavedStates:
    def __init__(self, budget_bytes: int = BUDGET_BYTES) -> None:
        self._budget = budget_bytes
        self._states: OrderedDict[int, tuple[list[int], bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._states)

    def put(self, key: int, tokens: list[int], data: bytes) -> None:
        """Keep `key`'s state (its tokens and KV bytes), dropping the least recently used ones
        past the budget. A state bigger than the whole budget is not kept."""
        self.drop(key)
        if len(data) > self._budget:
            return
        self._states[key] = (tokens, data)
        self.bytes += len(data)
        while self.bytes > self._budget:
            _, (_, old) = self._states.popitem(last=False)
            self.bytes -= len(old)

    def take(self, key: int) -> tuple[list[int], bytes] | None:
        """`key`'s state, removed from the store (it goes back into the context)."""
        found = self._states.pop(key, None)
        if found is not None:
            self.bytes -= len(found[1])
        return found

    def peek_tokens(self, key: int) -> list[int] | None:
        found = self._states.get(key)
        return None if found is None else found[0]

    def drop(self, key: int) -> None:
        found = self._states.pop(key, None)
        if found is not None:
            self.bytes -= len(found[1])


class ConversationStates:
    """Whose conversation a llama context's KV cache holds, and the others' saved states.

    `llm` is llama-cpp-python's `Llama`, `lib` its `llama_cpp` module (the state API)."""

    def __init__(self, llm: Any, lib: Any, budget_bytes: int = BUDGET_BYTES) -> None:
        self._llm = llm
        self._lib = lib
        self.saved = SavedStates(budget_bytes)  # other conversations' KV caches
        self.key: int | None = None  # whose conversation the context holds

    def switch_to(self, key: int | None, tokens: list[int]) -> None:
        """Another conversation's turn: keep the KV cache of the one the context holds, and bring
        back this one's when it shares more of the prompt `tokens` than what the context holds now."""
        if key == self.key:
            return
        held = self._llm._input_ids.tolist()
        if self.key is not None and held:
            data = self._read_sequence()
            if data:
                self.saved.put(self.key, held, data)
        self.key = key
        saved = self.saved.take(key) if key is not None else None
        if saved is not None and common_prefix(saved[0], tokens) > common_prefix(held, tokens):
            self._write_sequence(*saved)

    def _read_sequence(self) -> bytes:
        """The KV cells of sequence 0 (no logits: the next prefill evaluates at least one token)."""
        ctx = self._llm._ctx.ctx
        size = int(self._lib.llama_state_seq_get_size(ctx, 0))
        if size <= 0:
            return b""
        buf = (ctypes.c_uint8 * size)()
        n = int(self._lib.llama_state_seq_get_data(ctx, buf, size, 0))
        return ctypes.string_at(buf, n)  # one copy: a 7B model's state is hundreds of MB

    def _write_sequence(self, tokens: list[int], data: bytes) -> None:
        llm = self._llm
        ctx = llm._ctx.ctx
        self._lib.llama_memory_seq_rm(self._lib.llama_get_memory(ctx), 0, -1, -1)
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if int(self._lib.llama_state_seq_set_data(ctx, buf, len(data), 0)) == 0:
            llm.n_tokens = 0  # not restored: the prompt is read again, as without a saved state
            return
        llm.input_ids[: len(tokens)] = tokens
        llm.n_tokens = len(tokens)
