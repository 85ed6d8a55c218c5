"""The repeat penalty's memory of an answer being continued.

llama-cpp-python builds a fresh sampler chain inside each `generate` call and feeds it only the
tokens it samples, so a continued answer would forget the text it continues and repeat it.
Owns `penalty_history` (which tokens the penalty remembers) and `primed` (one `generate` call
whose sampler has accepted them first). Must not: keep the wrapped sampler past that call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["penalty_history", "primed"]


def penalty_history(llm: Any, continue_text: str, repeat_penalty: float) -> list[int]:
    """The tokens the repeat penalty remembers before the first new one: an answer being
    continued, as if it had never stopped (the penalty counts the answer's own tokens)."""
    if not continue_text or repeat_penalty == 1.0:
        return []
    answer: list[int] = llm.tokenize(continue_text.encode("utf-8"), add_bos=False, special=False)
    return answer[-llm.last_n_tokens_size :]


def primed(llm: Any, history: list[int], tokens: list[int], **kwargs: Any) -> Iterator[int]:
    """`llm.generate(tokens, **kwargs)` with its repeat-penalty history seeded with `history`:
    the sampler is wrapped for that one call, then the method is put back."""
    if not history:
        yield from llm.generate(tokens, **kwargs)
        return
    make = llm._init_sampler

    def init(**options: Any) -> Any:
        sampler = make(**options)
        for tok in history:
            sampler.accept(tok)
        return sampler

    llm._init_sampler = init
    try:
        yield from llm.generate(tokens, **kwargs)
    finally:
        del llm._init_sampler
