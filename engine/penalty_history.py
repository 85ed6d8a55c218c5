"""The repeat penalty's memory of an answer being continued.

A fresh sampler chain is built for each generation (engine.sampler) and would otherwise know
only the tokens it samples, so a continued answer would forget the text it continues and repeat
it. Owns `penalty_history` (which tokens the penalty remembers); engine.sampler feeds them to
the chain before the first new token.
"""

from __future__ import annotations

from typing import Any

__all__ = ["penalty_history"]


def penalty_history(llm: Any, continue_text: str, repeat_penalty: float) -> list[int]:
    """The tokens the repeat penalty remembers before the first new one: an answer being
    continued, as if it had never stopped (the penalty counts the answer's own tokens)."""
    if not continue_text or repeat_penalty == 1.0:
        return []
    answer: list[int] = llm.tokenize(continue_text.encode("utf-8"), add_bos=False, special=False)
    return answer[-llm.last_n_tokens_size :]
