"""Picking each next token: llama.cpp's own sampler chain, fed only the tokens that can win.

llama.cpp's `llama_sampler_sample` copies every logit into an n_vocab array of candidates and
runs the whole chain over it: the repeat penalty looks every candidate up in a hash map, top-k
partially sorts them all. That is ~0.7 ms a token for SmolLM2's 49,152 tokens on a 2-core Xeon
(issue 30), five times as much for a 262,144-token vocabulary, and it is the same work whatever
the settings cut away: with top-k 40, 40 tokens are all that the later steps ever see.

So the chain (the very one llama-cpp-python builds: penalties, top-k, typical, top-p, min-p,
temperature and the seeded draw, or greedy) runs on a candidate array cut to the tokens whose
logits reach the k-th largest among those the penalty leaves alone, plus every token the penalty
remembers. The penalty only changes the logits of the tokens it remembers, so the k best after it
are always among those: the chain picks exactly the token it would pick from all n_vocab, with the
same draws of its seeded generator. Greedy without a penalty is NumPy's argmax (the first of equal
maxima, as llama.cpp's greedy sampler takes).

The cut is one native call (engine/_pick.c, built by `pip install`): one pass over the logits
that writes and checks the candidate array. Where it could not be built (no C compiler), NumPy
makes the same cut in half a dozen calls, ~0.1 ms more per token (issue 30).

Sampling garbage is refused here too (`sample` returns None): a NaN anywhere in the logits, a
+infinity, or no finite logit at all, the marks of a damaged model (engine.local says so). The
native cut sees every logit as it passes; greedy checks the logit it picked (NaN wins an argmax);
the NumPy cut and llama.cpp's full pass check all logits first.

Owns: `TokenSampler` (one generation's chain, its penalty window, the candidate cut, the check
of what it picks from). Falls back to llama.cpp's own full pass where a cut would change the
result: a grammar (it may rule out every likely token), top-k off or wider than a small share of
the vocabulary, a negative temperature (the whole distribution). Must not: outlive the
generation (the chain holds its grammar state).
"""

from __future__ import annotations

import ctypes
import math
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["PICK", "TokenSampler", "usable"]

_native: ModuleType | None
try:
    from engine import _pick as _native
except ImportError:  # not built here (no C compiler when Hearth was installed): NumPy cuts
    _native = None
PICK = "native" if _native is not None else "numpy"  # for the reports (`hearth bench overhead`)

# llama_token_data {int32 id; float logit; float p}: the candidate array's layout.
_TOKEN_DATA = np.dtype([("id", "<i4"), ("logit", "<f4"), ("p", "<f4")])
# The cut-off is estimated from every `stride`-th logit: 16 (a 49,152-token vocabulary: 3,072 of
# them), or more on a larger one, so that about 4,096 are partitioned (Gemma's 262,144: every 64th).
_STRIDE = 16
_SAMPLES = 4096
_CUT_AT_MOST = 1 / 16  # past this share of the vocabulary, the full pass costs no more


class TokenSampler:
    """One generation's token picker over `llm` (a llama_cpp.Llama) and its loaded context.

    `history`: tokens the repeat penalty remembers before the first new one (an answer being
    continued). `grammar`: a LlamaGrammar the reply must follow, or None."""

    def __init__(
        self,
        llm: Any,
        *,
        top_k: int,
        top_p: float,
        min_p: float,
        temp: float,
        repeat_penalty: float,
        history: list[int],
        grammar: Any = None,
    ) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self._llm = llm
        # The same chain, built by the same code, as llama-cpp-python's generate(): same steps, same seed.
        self._chain = llm._init_sampler(
            top_k=top_k, top_p=top_p, min_p=min_p, temp=temp, repeat_penalty=repeat_penalty, grammar=grammar
        )
        for tok in history:
            self._chain.accept(tok)
        n_vocab = int(llm.n_vocab())
        self._penalised = repeat_penalty != 1.0 and llm.last_n_tokens_size > 0
        # What the penalty remembers, as llama.cpp's ring of the last `last_n` accepted tokens.
        last_n = max(1, llm.last_n_tokens_size)
        remembered = history[-last_n:]
        self._ring = np.zeros(last_n, dtype=np.intp)
        self._ring[: len(remembered)] = remembered
        self._at, self._remembered = len(remembered) % last_n, len(remembered)
        keep = 1 if temp == 0.0 else top_k  # how many the chain's cut-off step keeps
        self._keep = keep
        self._cut = (
            grammar is None and temp >= 0.0 and keep > 0 and keep + llm.last_n_tokens_size <= n_vocab * _CUT_AT_MOST
        )
        self._plain_greedy = temp == 0.0 and not self._penalised and grammar is None
        if self._cut:
            self._buf = np.empty(n_vocab, dtype=_TOKEN_DATA)
            self._ids, self._logits, self._p = self._buf["id"], self._buf["logit"], self._buf["p"]
            self._data = self._buf.ctypes.data_as(llama_cpp.llama_token_data_p)
            self._array = llama_cpp.llama_token_data_array(data=self._data, size=0, selected=-1, sorted=False)
            self._array_ref = ctypes.byref(self._array)
            # The native cut's working space: the remembered ids below its threshold, and a copy of
            # the logits it keeps while it raises the threshold.
            self._extra = np.empty(len(self._ring), dtype=_TOKEN_DATA)
            self._scratch = np.empty(n_vocab, dtype=np.float32)

    def sample(self, logits: npt.NDArray[np.float32]) -> int | None:
        """The next token from `logits` (the last evaluated position's), or None when nothing can
        be sampled from them: a NaN or +infinity that could be picked, or no finite logit."""
        if self._plain_greedy:
            tok = int(np.argmax(logits))  # NaN wins an argmax, as it would win the pick
            if not math.isfinite(logits[tok]):
                return None
        elif self._cut:
            picked = self._from_candidates(logits)
            if picked is None:
                return None
            tok = picked
        else:  # llama.cpp's full pass over the context's last logits; it accepts the token itself
            if not usable(logits):
                return None
            return int(self._lib.llama_sampler_sample(self._chain.sampler, self._llm._ctx.ctx, -1))
        self._lib.llama_sampler_accept(self._chain.sampler, tok)
        if self._penalised:
            self._ring[self._at] = tok
            self._at = (self._at + 1) % len(self._ring)
            self._remembered = min(self._remembered + 1, len(self._ring))
        return tok

    def _from_candidates(self, logits: npt.NDArray[np.float32]) -> int | None:
        # The chain keeps `keep` tokens after the penalty: those left alone that can be among them
        # are within the best keep + (how many it remembers) of all; the remembered ones go in
        # whatever their logit, since the penalty may move them either way.
        m = self._keep + self._remembered
        ring_n = self._remembered if self._penalised else 0
        if _native is not None:
            size = _native.candidates(logits, m, self._ring, ring_n, self._buf, self._extra, self._scratch)
            if size < 0:  # a NaN (-1), or +infinity or all -infinity (-2): nothing to pick
                return None
        else:
            size = self._numpy_candidates(logits, m, ring_n)
            if size is None:
                return None
        a = self._array
        # llama.cpp lets a step point the array at a buffer of its own: read the pick through it.
        a.data = self._data  # type: ignore[assignment]  # llama_cpp declares the field an array; it is a pointer
        a.size, a.selected, a.sorted = size, -1, False
        self._lib.llama_sampler_apply(self._chain.sampler, self._array_ref)
        return int(a.data[a.selected].id)

    def _numpy_candidates(self, logits: npt.NDArray[np.float32], m: int, ring_n: int) -> int | None:
        """The native cut's work in NumPy (where it was not built): the same candidates written to
        the array, their count, or None for logits nothing can be picked from. Few NumPy calls:
        each costs several times more right after a decode (its caches are cold) than in a loop."""
        if not usable(logits):  # a pass the native cut makes as it goes
            return None
        cand = _candidates(logits, m, self._ring[:ring_n] if ring_n else None)
        size = len(cand)
        self._ids[:size] = cand
        np.take(logits, cand, out=self._logits[:size])
        self._p[:size] = 0.0
        return size

    def close(self) -> None:
        self._chain.close()


def usable(logits: npt.NDArray[np.float32]) -> bool:
    """A token can be sampled from these logits: none is NaN or +infinity (either makes every
    probability NaN), and not all are -infinity. The largest logit says it (NaN wins a max) in one
    pass that writes nothing: ~65 µs right after a decode for Gemma's 262,144 logits, against
    ~105 µs for `isfinite(...).all()`, which writes a mask and reads it again (issue 30). A
    -infinity among finite logits is a token that cannot be picked, as llama.cpp's own samplers
    make them: harmless."""
    return bool(np.isfinite(logits.max()))


def _candidates(
    logits: npt.NDArray[np.float32], m: int, remembered: npt.NDArray[np.intp] | None
) -> npt.NDArray[np.intp]:
    """The ids, ascending, of the `m` largest logits (ties at the edge all in), some more, and every
    id in `remembered`.

    A cut-off estimated from a sample of the logits usually keeps a few times m in one pass over
    the array (~20 µs for 49,152 logits against ~55 µs for an exact partition); when the estimate
    keeps fewer than m (or far too many), the exact m-th largest is the cut-off. The ids come
    from that one pass (no count of a mask, no mask edited), and the remembered ids below the
    cut-off are merged in by a sort of the few hundred ids (`np.union1d` took ~70 µs right after a
    decode, this ~8): not another pass over the vocabulary (issue 30: a pass over Gemma's 262,144
    logits is ~30-50 µs)."""
    n = len(logits)
    stride = max(_STRIDE, n // _SAMPLES)
    sample = logits[::stride]
    # About twice the m best are expected above the rank-th of the sample; the + 4 keeps a short
    # sample (few of the m best in it) from falling back to the exact partition more than rarely.
    rank = min(len(sample), 2 * m // stride + 4)
    cut = np.partition(sample, len(sample) - rank)[len(sample) - rank]
    cand = np.flatnonzero(logits >= cut)
    if not m <= len(cand) <= 64 * m:
        cut = np.partition(logits, n - m)[n - m]
        cand = np.flatnonzero(logits >= cut)
    if remembered is not None:
        # Not in `cand`: below its cut-off.
        below = remembered[logits[remembered] < cut]
        if len(below):
            merged = np.sort(np.concatenate((cand, below)))
            first = np.empty(len(merged), dtype=np.bool_)
            first[0] = True
            np.not_equal(merged[1:], merged[:-1], out=first[1:])  # a token the ring holds twice, once
            cand = merged[first]
    return cand
