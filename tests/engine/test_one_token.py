"""engine.one_token decodes an answer's tokens as `Llama.eval([tok])` does, on the real model: the
same logits after every token, and the same record of what the context holds (the next turn's
prefix reuse and the saved KV states read it), so the cheaper path changes no answer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from engine.one_token import OneTokenDecoder

pytestmark = pytest.mark.model

_PROMPT = "<|im_start|>user\nName three rivers.<|im_end|>\n<|im_start|>assistant\n"


def _last_logits(llm: Any) -> np.ndarray[Any, Any]:
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).copy()


def _greedy_answer(llm: Any, step: Any, n: int) -> tuple[list[int], list[np.ndarray[Any, Any]]]:
    """Read the prompt with Llama.eval (from an empty context), then `n` greedy tokens through `step`."""
    llm.n_tokens = 0
    llm.eval(list(llm.tokenize(_PROMPT.encode(), add_bos=False, special=True)))
    picked, seen = [], [_last_logits(llm)]
    for _ in range(n):
        tok = int(np.argmax(seen[-1]))
        picked.append(tok)
        step(tok)
        seen.append(_last_logits(llm))
    return picked, seen


def test_one_token_decodes_give_the_logits_and_the_record_that_eval_gives(llm: Any) -> None:
    theirs, their_logits = _greedy_answer(llm, lambda tok: llm.eval([tok]), 24)
    their_ids, their_n = llm.input_ids[: llm.n_tokens].copy(), llm.n_tokens

    one = OneTokenDecoder(llm)
    try:
        ours, our_logits = _greedy_answer(llm, one.decode, 24)
    finally:
        one.close()
    assert ours == theirs
    for a, b in zip(our_logits, their_logits, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    assert llm.n_tokens == their_n
    assert np.array_equal(llm.input_ids[: llm.n_tokens], their_ids)

    # The next turn reads a longer prompt after what the context holds: eval goes on from there.
    held = llm.n_tokens
    more = list(llm.tokenize(b"<|im_end|>\n<|im_start|>user\nAnd one more.", add_bos=False, special=True))
    llm.eval(more)
    assert llm.n_tokens == held + len(more)
    assert np.isfinite(_last_logits(llm)).all()


def test_a_decode_llama_cpp_refuses_raises_and_leaves_the_record_as_it_was(llm: Any) -> None:
    """A position that does not follow what the cache holds (a record gone wrong): llama.cpp
    refuses it, the error says so (the engine then fails the answer with it), and nothing is
    recorded as held."""
    one = OneTokenDecoder(llm)
    try:
        llm.n_tokens = 0
        llm.eval([1])
        for position in (5, llm.n_ctx()):
            llm.n_tokens = position
            with pytest.raises(RuntimeError, match="llama_decode returned"):
                one.decode(2)
            assert llm.n_tokens == position
    finally:
        one.close()
        llm.n_tokens = 0
