"""The KV cache of conversations the engine left, kept so that coming back costs no re-read.

Owns: a least-recently-used store of llama.cpp sequence states (the KV cells of sequence 0,
without the logits: `llama_state_seq_get_data`), each with the tokens it holds, keyed by
conversation, within a byte budget. Switching to another chat and back then restores the
first chat's cache instead of reading its whole history again.
Must not: touch a llama context (engine.local saves and restores; this only keeps bytes).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["BUDGET_BYTES", "SavedStates", "common_prefix"]

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
