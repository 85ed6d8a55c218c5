"""Decoding one token at a time, as the answer's loop does: llama.cpp's decode on a one-token
batch made once, and llama-cpp-python's bookkeeping of what the context holds kept as
`Llama.eval` keeps it.

`Llama.eval([tok])` costs about 0.06 ms a token on top of the decode (issue 30): it removes
the KV cells past the sequence's end (none are there while an answer grows: the prompt's eval
removed them), refills its batch field by field in a Python loop, and saves the token. Here
only the token and its position change per call, through ctypes pointers taken once.

Owns: the one-token batch (freed by `close`). Keeps `llm.input_ids` and `llm.n_tokens` exactly as
`Llama.eval` would (the next turn's prefix reuse and engine.kv_states read them). Must not: be
used for a batch of several tokens (the prompt goes through `Llama.eval`), or after `close`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OneTokenDecoder"]


class OneTokenDecoder:
    """`decode(tok)` evaluates `tok` at the end of `llm`'s sequence (a llama_cpp.Llama)."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaBatch

        self._lib = llama_cpp
        self._llm = llm
        self._batch: Any = LlamaBatch(n_tokens=1, embd=0, n_seq_max=1, verbose=False)  # llama_cpp is untyped here
        raw = self._batch.batch
        raw.n_tokens = 1
        raw.n_seq_id[0] = 1
        raw.seq_id[0][0] = 0
        raw.logits[0] = True  # the one token's logits: what the next pick reads
        self._raw = raw
        # A Structure's pointer field makes a new ctypes object on every read: read them once.
        self._token, self._pos = raw.token, raw.pos

    def decode(self, tok: int) -> None:
        """As `Llama.eval([tok])`; RuntimeError when llama.cpp's decode fails."""
        llm = self._llm
        n = llm.n_tokens
        self._token[0] = tok
        self._pos[0] = n
        rc = self._lib.llama_decode(llm._ctx.ctx, self._raw)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        llm.input_ids[n] = tok
        llm.n_tokens = n + 1

    def close(self) -> None:
        self._batch.close()
