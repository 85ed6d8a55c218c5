"""engine.sampler picks exactly the tokens llama-cpp-python's own generate() picks, on the real
model: the same chain fed only the candidates that can win gives the same answer, greedy or
seeded, with the repeat penalty remembering a continued answer, and where it must fall back."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sampler import TokenSampler, _candidates

pytestmark = pytest.mark.model

_PROMPT = "<|im_start|>user\nWrite a story about a red fox and a crow, with names.<|im_end|>\n<|im_start|>assistant\n"
_TOKENS = 32


def _prompt(llm: Any) -> list[int]:
    return list(llm.tokenize(_PROMPT.encode(), add_bos=False, special=True))


def _theirs(llm: Any, history: list[int], **options: Any) -> list[int]:
    """llama-cpp-python's generate(), its sampler first fed `history` (as engine.penalty_history did)."""
    llm.reset()
    make = llm._init_sampler

    def init(**kw: Any) -> Any:
        sampler = make(**kw)
        for tok in history:
            sampler.accept(tok)
        return sampler

    llm._init_sampler = init
    try:
        out = []
        for tok in llm.generate(_prompt(llm), reset=True, **options):
            out.append(tok)
            if len(out) == _TOKENS:
                break
        return out
    finally:
        del llm._init_sampler


def _ours(llm: Any, history: list[int], **options: Any) -> list[int]:
    import llama_cpp

    llm.reset()
    llm.eval(_prompt(llm))
    sampler = TokenSampler(llm, history=history, **options)
    try:
        out = []
        while True:
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),))
            out.append(sampler.sample(logits))
            if len(out) == _TOKENS:
                return out
            llm.eval([out[-1]])
    finally:
        sampler.close()


_CASES = {  # the settings, and whether the answer is a continued one (its tokens in the penalty's memory)
    "greedy": (dict(top_k=40, top_p=0.95, min_p=0.05, temp=0.0, repeat_penalty=1.0), False),
    "greedy-penalty-continued": (dict(top_k=40, top_p=0.95, min_p=0.05, temp=0.0, repeat_penalty=1.3), True),
    "seeded": (dict(top_k=40, top_p=0.95, min_p=0.05, temp=0.9, repeat_penalty=1.0), False),
    "seeded-penalty": (dict(top_k=40, top_p=0.95, min_p=0.05, temp=0.9, repeat_penalty=1.15), False),
    "seeded-penalty-continued": (dict(top_k=40, top_p=0.95, min_p=0.05, temp=0.9, repeat_penalty=1.15), True),
    "hot-wide": (dict(top_k=200, top_p=1.0, min_p=0.0, temp=1.5, repeat_penalty=1.1), False),
    "penalty-below-one": (dict(top_k=40, top_p=0.95, min_p=0.05, temp=0.8, repeat_penalty=0.8), True),
    "top-k-off": (dict(top_k=0, top_p=0.9, min_p=0.05, temp=0.9, repeat_penalty=1.1), False),  # the full pass
}


@pytest.mark.parametrize(("options", "continued"), _CASES.values(), ids=_CASES.keys())
def test_the_same_tokens_as_llama_cpp_pythons_generate(llm: Any, options: dict[str, Any], continued: bool) -> None:
    # A continued answer: the penalty remembers its tokens, among them ones the model wants next.
    history = _theirs(llm, [], **_CASES["greedy"][0])[:30] if continued else []
    llm.set_seed(2026)
    theirs = _theirs(llm, history, **options)
    llm.set_seed(2026)
    ours = _ours(llm, history, **options)
    assert ours == theirs, (llm.detokenize(theirs), llm.detokenize(ours))


def test_the_seed_still_decides(llm: Any) -> None:
    """Two seeds, two answers; the same seed, the same answer (else the comparison above proves little)."""
    options = _CASES["seeded-penalty"][0]
    answers = []
    for seed in (1, 2026, 1):
        llm.set_seed(seed)
        answers.append(_ours(llm, [], **options))
    assert answers[0] == answers[2] != answers[1]


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(-30, 30, width=32), min_size=1, max_size=3000),
    m=st.integers(1, 300),
    ties=st.booleans(),
    remembered=st.lists(st.integers(0, 2999), max_size=64),
)
def test_the_cut_holds_the_m_largest_logits_and_the_remembered(
    values: list[float], m: int, ties: bool, remembered: list[int]
) -> None:
    logits = np.array(values, dtype=np.float32)
    if ties:
        logits = np.round(logits)  # many equal logits, at the edge too
    m = min(m, len(logits))
    ring = np.array([t % len(logits) for t in remembered], dtype=np.intp) if remembered else None
    kept = _candidates(logits, m, ring)
    threshold = np.sort(logits)[-m]
    assert set(np.flatnonzero(logits >= threshold)) <= set(kept.tolist())
    assert ring is None or set(ring.tolist()) <= set(kept.tolist())
    assert (np.diff(kept) > 0).all()  # ascending, each id once: the order llama.cpp's full pass sees


@pytest.mark.parametrize("n", [49_152, 151_936, 262_144], ids=["smollm2", "qwen", "gemma"])
@pytest.mark.parametrize("m", [1, 40, 104, 300])
def test_the_cut_holds_the_m_largest_of_a_real_sized_vocabulary(n: int, m: int) -> None:
    """A real vocabulary's size: the sample that estimates the cut-off is every 16th logit, or
    fewer of them (every 64th of Gemma's); the m largest and the remembered are always in."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        logits = rng.normal(0, 3, n).astype(np.float32)
        logits[rng.choice(n, 50)] += 15  # a peaked distribution, as after a confident step
        ring = rng.integers(0, n, 64).astype(np.intp)
        kept = _candidates(logits, m + 64, ring)
        threshold = np.sort(logits)[-(m + 64)]
        assert set(np.flatnonzero(logits >= threshold)) | set(ring.tolist()) <= set(kept.tolist())
        assert (np.diff(kept) > 0).all() and len(kept) <= 64 * (m + 64) + 64


class _Vocabulary:
    """What TokenSampler reads of a Llama, without a model: the chain is llama.cpp's real one
    (built by llama-cpp-python's own `_init_sampler`); only the logits are made up."""

    def __init__(self, n_vocab: int, seed: int) -> None:
        import llama_cpp

        self._n_vocab, self._seed, self.last_n_tokens_size = n_vocab, seed, 64
        self._init_sampler = llama_cpp.Llama._init_sampler.__get__(self)

    def n_vocab(self) -> int:
        return self._n_vocab


def _full_pass(chain: Any, logits: np.ndarray) -> int:
    """llama.cpp's way: every token a candidate, the chain over all of them."""
    import ctypes

    import llama_cpp

    data = (llama_cpp.llama_token_data * len(logits))(*[(i, float(v), 0.0) for i, v in enumerate(logits)])
    array = llama_cpp.llama_token_data_array(data=data, size=len(logits), selected=-1, sorted=False)
    llama_cpp.llama_sampler_apply(chain.sampler, ctypes.byref(array))
    tok = int(array.data[array.selected].id)
    llama_cpp.llama_sampler_accept(chain.sampler, tok)
    return tok


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    temp=st.sampled_from([0.0, 0.7, 1.5]),
    top_k=st.sampled_from([1, 5, 40]),
    penalty=st.sampled_from([1.0, 1.1, 3.0, 0.7]),
    remembered=st.integers(0, 64),
)
def test_the_cut_picks_what_the_full_pass_picks_when_the_penalty_reorders_the_top(
    seed: int, temp: float, top_k: int, penalty: float, remembered: int
) -> None:
    """The hard case for the cut: the tokens the penalty remembers are the very best ones (a
    looping answer), so with a strong penalty the winner is one ranked far below them."""
    n = 4096
    rng = np.random.default_rng(seed)
    vocab = _Vocabulary(n, seed)
    ranked = rng.permutation(n)
    history = [int(t) for t in ranked[:remembered]]
    ours = TokenSampler(vocab, top_k=top_k, top_p=0.95, min_p=0.05, temp=temp, repeat_penalty=penalty, history=history)
    theirs = vocab._init_sampler(top_k=top_k, top_p=0.95, min_p=0.05, temp=temp, repeat_penalty=penalty)
    for tok in history:
        theirs.accept(tok)
    try:
        for step in range(4):
            logits = rng.normal(0, 2, n).astype(np.float32)
            logits[ranked[: remembered + 8]] += np.linspace(12, 10, remembered + 8, dtype=np.float32)
            assert ours.sample(logits) == _full_pass(theirs, logits), step
    finally:
        ours.close()
        theirs.close()


_PATHS = {  # the sampler's three ways to pick
    "cut": dict(top_k=40, temp=0.7, repeat_penalty=1.1),
    "greedy": dict(top_k=40, temp=0.0, repeat_penalty=1.0),
    "full-pass": dict(top_k=0, temp=0.7, repeat_penalty=1.1),  # llama.cpp's own over all n_vocab
}


def _poisoned(n: int, at: int, poison: str) -> np.ndarray:
    rng = np.random.default_rng(at)
    logits = rng.normal(0, 3, n).astype(np.float32)
    logits[rng.choice(n, 20)] += 12  # a peaked distribution, as after a confident step
    if poison == "a NaN at the top":
        logits[int(np.argmax(logits))] = np.nan
    elif poison.startswith("a "):
        logits[at] = {"a NaN": np.nan, "a +infinity": np.inf, "a -infinity": -np.inf}[poison]
    elif poison == "half NaN":
        logits[::2] = np.nan
    else:
        logits[:] = {"all NaN": np.nan, "all -infinity": -np.inf}[poison]
    return logits


def _pick(path: str, n: int, at: int, logits: np.ndarray) -> int | None:
    sampler = TokenSampler(_Vocabulary(n, at), top_p=0.95, min_p=0.05, history=[at, 7], **_PATHS[path])
    try:
        return sampler.sample(logits)
    finally:
        sampler.close()


@pytest.mark.parametrize("path", _PATHS)
@pytest.mark.parametrize("poison", ["a +infinity", "all -infinity", "all NaN", "half NaN"])
def test_no_token_is_picked_from_logits_nothing_can_be_sampled_from(path: str, poison: str) -> None:
    """A damaged model's logits: the sampler says so (None) and the answer fails as 'invalid
    numbers' (engine/local.py), whichever way it picks; at the first, a middle and the last id."""
    n = 49_152
    for at in (0, 1234, n - 1):
        assert _pick(path, n, at, _poisoned(n, at, poison)) is None, at


@pytest.mark.parametrize("poison", ["a NaN", "a NaN at the top"])
def test_a_nan_the_cut_leaves_out_is_never_picked_and_a_nan_greedy_would_pick_is_refused(poison: str) -> None:
    """Where the cut runs, only its candidates are checked (not all n_vocab logits: a pass per
    token saved): a NaN is never one of them, so it is passed over like a -infinity, the same
    pick. Greedy and the full pass see it, and refuse."""
    n = 49_152
    for at in (0, 1234, n - 1):
        logits = _poisoned(n, at, poison)
        as_minus_infinity = np.nan_to_num(logits, nan=-np.inf)
        tok = _pick("cut", n, at, logits)
        assert tok is not None and np.isfinite(logits[tok]), at
        assert tok == _pick("cut", n, at, as_minus_infinity), at
        assert _pick("greedy", n, at, logits) is None, at
        assert _pick("full-pass", n, at, logits) is None, at
        assert _pick("greedy", n, at, as_minus_infinity) == int(np.argmax(as_minus_infinity)), at


@pytest.mark.parametrize("path", ["cut", "greedy"])
@pytest.mark.parametrize("finite", [1, 5, 50, 200])
def test_logits_mostly_minus_infinity_still_give_one_of_the_finite_tokens(path: str, finite: int) -> None:
    """A model that rules out most of its vocabulary with -infinity (fewer finite logits than the
    cut wants): not garbage, and the pick is one of the tokens it left possible."""
    n = 49_152
    rng = np.random.default_rng(finite)
    logits = np.full(n, -np.inf, dtype=np.float32)
    allowed = rng.choice(n, finite, replace=False)
    logits[allowed] = rng.normal(0, 3, finite)
    assert _pick(path, n, int(allowed[0]), logits) in set(allowed.tolist())
