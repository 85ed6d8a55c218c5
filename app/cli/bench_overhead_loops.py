"""The two plain decode loops `hearth bench overhead` sets beside llama.cpp's own and Hearth's.

- the eval loop: llama-cpp-python's `Llama.eval([token])` one token at a time, the next token the
  argmax of `llama_get_logits_ith(ctx, -1)` (no sampler): what most Python code on llama.cpp does;
- the C loop: `llama_decode` and llama.cpp's own sampler chain (`llama_sampler_*`, greedy) called
  straight through ctypes, the least Python can do per token. It stands in for llama-bench where
  that cannot be built, and shows the floor beside it where it can.

Flash attention is automatic, as in Hearth's engine and llama-bench (engine/flash_attn.py: the
bench process loads one model at a time, as that helper needs). Both decode from the
beginning-of-sequence token, one token per llama_decode, as llama-bench's tg
test does, and time the whole loop. They run in the bench's own process, one model at a time,
between the other paths' runs (never at the same time as them).
Must not: run before engine.backends.load_backends (a GGML_BACKEND_DL build has no CPU code
until then).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PlainLoops"]


class PlainLoops:
    """One model loaded with llama-cpp-python at a fixed thread count, both loops on it."""

    def __init__(self, model: Path, threads: int, n_ctx: int) -> None:
        import llama_cpp

        from engine.backends import load_backends
        from engine.flash_attn import flash_attention

        load_backends(llama_cpp)
        self._lib: Any = llama_cpp
        with flash_attention(llama_cpp, None) as flash_attn:
            self._llama: Any = llama_cpp.Llama(
                model_path=str(model),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=0,
                flash_attn=flash_attn,
                verbose=False,
            )
        self._ctx = self._llama._ctx.ctx
        vocab = llama_cpp.llama_model_get_vocab(self._llama._model.model)
        self.n_vocab: int = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self._bos: int = int(llama_cpp.llama_vocab_bos(vocab))

    def _context(self, depth: int) -> list[int]:
        """`depth` tokens to decode after (BOS, then arbitrary ones: the model's work per token
        depends on how many it attends to, not on which)."""
        return [self._bos, *(1000 + i % 1000 for i in range(depth - 1))] if depth else []

    def eval_loop(self, tokens: int, depth: int = 0) -> float:
        """Tokens/s of `Llama.eval` one token at a time with a greedy argmax over the logits, after
        `depth` tokens evaluated untimed (Hearth decodes after its prompt)."""
        llama, ctx, n_vocab = self._llama, self._ctx, self.n_vocab
        logits_ith = self._lib.llama_get_logits_ith
        llama.reset()
        before = self._context(depth)
        if before:
            llama.eval(before)
        token = self._bos if not before else int(np.ctypeslib.as_array(logits_ith(ctx, -1), shape=(n_vocab,)).argmax())
        t0 = time.perf_counter()
        for _ in range(tokens):
            llama.eval([token])
            token = int(np.ctypeslib.as_array(logits_ith(ctx, -1), shape=(n_vocab,)).argmax())
        return tokens / (time.perf_counter() - t0)

    def c_loop(self, tokens: int, depth: int = 0) -> float:
        """Tokens/s of llama_decode plus llama.cpp's greedy sampler chain, called through ctypes,
        after `depth` tokens decoded untimed."""
        lib, ctx = self._lib, self._ctx
        lib.llama_memory_clear(lib.llama_get_memory(ctx), True)
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        lib.llama_sampler_chain_add(chain, lib.llama_sampler_init_greedy())
        token = (lib.llama_token * 1)(self._bos)
        decode, batch_get_one, sample = lib.llama_decode, lib.llama_batch_get_one, lib.llama_sampler_sample
        if before := self._context(depth):
            prompt = (lib.llama_token * len(before))(*before)
            if decode(ctx, batch_get_one(prompt, len(before))) != 0:
                raise RuntimeError("llama_decode failed on the C loop's context")
            token[0] = sample(chain, ctx, -1)
        try:
            t0 = time.perf_counter()
            for _ in range(tokens):
                if decode(ctx, batch_get_one(token, 1)) != 0:
                    raise RuntimeError("llama_decode failed in the C loop")
                token[0] = sample(chain, ctx, -1)
            elapsed = time.perf_counter() - t0
        finally:
            lib.llama_sampler_free(chain)
            self._llama.reset()  # Llama's own bookkeeping no longer matches the context
        return tokens / elapsed

    def close(self) -> None:
        self._llama.close()
