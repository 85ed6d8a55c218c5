"""Each token's piece comes from llama.cpp once per token id, and is the very bytes llama-cpp-python's
`detokenize([tok])` gives (engine.detok.TokenPieces: the answer's loop reads it for every token)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.detok import IncrementalDetokenizer, TokenPieces

pytestmark = pytest.mark.model


def test_every_tokens_piece_is_llama_cpps_and_is_asked_once(llm: Any) -> None:
    asked: list[int] = []

    def detokenize(tokens: list[int]) -> bytes:
        asked.extend(tokens)
        return llm.detokenize(tokens)

    pieces = TokenPieces(detokenize)
    n_vocab = llm.n_vocab()
    # Every 7th token of the vocabulary, and the special ones (BOS loses its leading space; control
    # tokens are empty without `special`).
    ids = [*range(0, n_vocab, 7), llm.token_bos(), llm.token_eos(), n_vocab - 1]
    for tok in ids:
        assert pieces(tok) == llm.detokenize([tok]), tok
    assert sorted(asked) == sorted(set(ids))
    for tok in ids:  # asked again: from the cache
        pieces(tok)
    assert len(asked) == len(set(ids))


def test_an_answer_read_through_the_pieces_is_its_text(llm: Any) -> None:
    tokens = llm.tokenize("Crème brûlée, 東京 and 🍞: naïve text.".encode(), add_bos=False)
    pieces, detok = TokenPieces(llm.detokenize), IncrementalDetokenizer()
    text = "".join(detok.feed(pieces(t)) for t in tokens) + detok.flush()
    assert text == "Crème brûlée, 東京 and 🍞: naïve text."
