"""engine.sampler picks exactly the tokens llama-cpp-python's own generate() picks, on the real
model: the same chain fed only the candidates that can win gives the same answer, greedy or
seeded, with the repeat penalty remembering a continued answer, and where it must fall back.
Both cuts are held to it: the native one (engine/_pick.c) and NumPy's, used where that was not
built."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.sampler
from engine.sampler import _TOKEN_DATA, TokenSampler, _candidates

pytestmark = pytest.mark.model

_NOT_BUILT = "engine/_pick.c was not built: `pip install -e .` builds it (packaging/bootstrap.sh runs that)"


@pytest.fixture(params=["native", "numpy"])
def cut(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test with each way of cutting the candidates."""
    if request.param == "native":
        assert engine.sampler._native is not None, _NOT_BUILT
    else:
        monkeypatch.setattr(engine.sampler, "_native", None)
    return str(request.param)


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
def test_the_same_tokens_as_llama_cpp_pythons_generate(
    llm: Any, options: dict[str, Any], continued: bool, cut: str
) -> None:
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


@contextmanager
def _cutting(way: str) -> Iterator[None]:
    """The sampler cuts the `way` given ("native" or "numpy") inside the block."""
    native = engine.sampler._native
    assert way == "numpy" or native is not None, _NOT_BUILT
    engine.sampler._native = native if way == "native" else None
    try:
        yield
    finally:
        engine.sampler._native = native


def _cut(way: str, logits: np.ndarray, m: int, ring: np.ndarray | None) -> np.ndarray:
    """The ids each cut keeps; the native one's records also carry their logits, and p = 0."""
    if way == "numpy":
        return _candidates(logits, m, ring)
    native = engine.sampler._native
    assert native is not None, _NOT_BUILT
    n, ring_n = len(logits), 0 if ring is None else len(ring)
    out, extra = np.empty(n, dtype=_TOKEN_DATA), np.empty(max(1, ring_n), dtype=_TOKEN_DATA)
    size = native.candidates(
        logits, m, np.zeros(1, np.intp) if ring is None else ring, ring_n, out, extra, np.empty(n, dtype=np.float32)
    )
    assert size >= 0
    kept = out[:size]
    assert (kept["logit"] == logits[kept["id"]]).all() and (kept["p"] == 0).all()
    return kept["id"].astype(np.intp)


_WAYS = ["native", "numpy"]


@pytest.mark.parametrize("way", _WAYS)
@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(-30, 30, width=32), min_size=1, max_size=3000),
    m=st.integers(1, 300),
    ties=st.booleans(),
    order=st.sampled_from(["as drawn", "ascending", "descending"]),
    remembered=st.lists(st.integers(0, 2999), max_size=64),
)
def test_the_cut_holds_the_m_largest_logits_and_the_remembered(
    way: str, values: list[float], m: int, ties: bool, order: str, remembered: list[int]
) -> None:
    """Any logits: ties (at the edge too), and the orders hardest for a one-pass cut (each logit
    a new best: ascending) and easiest (descending)."""
    logits = np.array(values, dtype=np.float32)
    if ties:
        logits = np.round(logits)  # many equal logits, at the edge too
    if order != "as drawn":
        logits = np.sort(logits) if order == "ascending" else np.sort(logits)[::-1].copy()
    m = min(m, len(logits))
    ring = np.array([t % len(logits) for t in remembered], dtype=np.intp) if remembered else None
    kept = _cut(way, logits, m, ring)
    threshold = np.sort(logits)[-m]
    assert set(np.flatnonzero(logits >= threshold)) <= set(kept.tolist())
    assert ring is None or set(ring.tolist()) <= set(kept.tolist())
    assert (np.diff(kept) > 0).all()  # ascending, each id once: the order llama.cpp's full pass sees


@pytest.mark.parametrize("way", _WAYS)
@pytest.mark.parametrize("n", [49_152, 151_936, 262_144], ids=["smollm2", "qwen", "gemma"])
@pytest.mark.parametrize("m", [1, 40, 104, 300])
def test_the_cut_holds_the_m_largest_of_a_real_sized_vocabulary(way: str, n: int, m: int) -> None:
    """A real vocabulary's size: NumPy's estimate of the cut-off samples every 16th logit, or
    fewer of them (every 64th of Gemma's); the m largest and the remembered are always in, and
    not many more (the chain's work grows with them)."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        logits = rng.normal(0, 3, n).astype(np.float32)
        logits[rng.choice(n, 50)] += 15  # a peaked distribution, as after a confident step
        ring = rng.integers(0, n, 64).astype(np.intp)
        kept = _cut(way, logits, m + 64, ring)
        threshold = np.sort(logits)[-(m + 64)]
        assert set(np.flatnonzero(logits >= threshold)) | set(ring.tolist()) <= set(kept.tolist())
        assert (np.diff(kept) > 0).all() and len(kept) <= 64 * (m + 64) + 64


_N = 1000
_BAD_ARGS = {  # the native cut's arguments: logits, m, ring, ring_n, out, extra, scratch
    "a remembered id past the vocabulary": dict(ring=np.array([_N], np.intp), ring_n=1),
    "a negative remembered id": dict(ring=np.array([-1], np.intp), ring_n=1),
    "more remembered than the ring holds": dict(ring_n=9),
    "m past the vocabulary": dict(m=_N + 1),
    "no m": dict(m=0),
    "an output too small": dict(out=np.empty(_N - 1, _TOKEN_DATA)),
    "a work space too small": dict(scratch=np.empty(_N - 1, np.float32)),
    "no logits": dict(logits=np.zeros(0, np.float32)),
    "a read-only output": dict(out=np.empty(_N, _TOKEN_DATA)),  # made read-only below
    "strided logits": dict(logits=np.zeros(2 * _N, np.float32)[::2]),
}


@pytest.mark.parametrize("bad", _BAD_ARGS)
def test_the_native_cut_refuses_arguments_that_do_not_fit(bad: str) -> None:
    """It trusts nothing it is handed: a size, a remembered id or a buffer that would read or
    write out of bounds raises instead."""
    native = engine.sampler._native
    assert native is not None, _NOT_BUILT
    args: dict[str, Any] = dict(
        logits=np.zeros(_N, np.float32),
        m=10,
        ring=np.arange(8, dtype=np.intp),
        ring_n=8,
        out=np.empty(_N, _TOKEN_DATA),
        extra=np.empty(8, _TOKEN_DATA),
        scratch=np.empty(_N, np.float32),
    )
    assert native.candidates(*args.values()) == _N  # all equal: all in
    args.update(_BAD_ARGS[bad])
    if bad == "a read-only output":
        args["out"].flags.writeable = False
    with pytest.raises((ValueError, TypeError), match="candidates"):
        native.candidates(*args.values())


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


@pytest.mark.parametrize("way", _WAYS)
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    temp=st.sampled_from([0.0, 0.7, 1.5]),
    top_k=st.sampled_from([1, 5, 40]),
    penalty=st.sampled_from([1.0, 1.1, 3.0, 0.7]),
    remembered=st.integers(0, 64),
)
def test_the_cut_picks_what_the_full_pass_picks_when_the_penalty_reorders_the_top(
    way: str, seed: int, temp: float, top_k: int, penalty: float, remembered: int
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
        with _cutting(way):
            for step in range(4):
                logits = rng.normal(0, 2, n).astype(np.float32)
                logits[ranked[: remembered + 8]] += np.linspace(12, 10, remembered + 8, dtype=np.float32)
                assert ours.sample(logits) == _full_pass(theirs, logits), step
    finally:
        ours.close()
        theirs.close()


_PATHS = {  # the sampler's ways to pick: (its settings, the cut it makes)
    "cut": (dict(top_k=40, temp=0.7, repeat_penalty=1.1), "native"),
    "numpy-cut": (dict(top_k=40, temp=0.7, repeat_penalty=1.1), "numpy"),
    "greedy": (dict(top_k=40, temp=0.0, repeat_penalty=1.0), "native"),
    "full-pass": (dict(top_k=0, temp=0.7, repeat_penalty=1.1), "native"),  # llama.cpp's own over all n_vocab
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
    options, way = _PATHS[path]
    sampler = TokenSampler(_Vocabulary(n, at), top_p=0.95, min_p=0.05, history=[at, 7], **options)
    try:
        with _cutting(way):
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


@pytest.mark.parametrize("path", _PATHS)
@pytest.mark.parametrize("poison", ["a NaN", "a NaN at the top"])
def test_a_single_nan_anywhere_is_refused_whichever_way_the_sampler_picks(path: str, poison: str) -> None:
    """One NaN is a damaged model's mark too, wherever it is: the native cut sees every logit as
    it passes, NumPy's cut and the full pass check them all first, greedy would pick it. The same
    logits with a -infinity there (a token ruled out) give a finite token."""
    n = 49_152
    for at in (0, 1234, n - 1):
        logits = _poisoned(n, at, poison)
        assert _pick(path, n, at, logits) is None, at
        if path != "full-pass":  # it samples the real context's logits, not these
            as_minus_infinity = np.nan_to_num(logits, nan=-np.inf)
            tok = _pick(path, n, at, as_minus_infinity)
            assert tok is not None and np.isfinite(logits[tok]), at


@pytest.mark.parametrize("path", ["cut", "numpy-cut", "greedy"])
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


def test_the_install_built_the_native_cut() -> None:
    """`pip install -e .` (packaging/bootstrap.sh) compiles engine/_pick.c; the NumPy cut is only
    for a machine that could not, and is ~0.1 ms a token slower (issue 30)."""
    assert engine.sampler.PICK == "native", _NOT_BUILT
