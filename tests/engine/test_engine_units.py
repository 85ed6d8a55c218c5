"""Engine pieces without the model: UTF-8 splitting, the state machine, the template sandbox, GGUF checks."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from engine.commands import ChatMessage
from engine.detok import IncrementalDetokenizer
from engine.errors import ModelLoadError
from engine.gguf_check import check_gguf_header
from engine.states import GenerationState as S
from engine.states import IllegalTransition, check_transition
from engine.template import ChatTemplate
from engine.template_choice import CHATML_TEMPLATE


@pytest.mark.parametrize(
    "text", ["héllo wörld", "日本語のテキスト", "emoji 🌍🔥 mixed ✓"], ids=["latin", "cjk", "emoji"]
)
def test_multibyte_utf8_split_anywhere_comes_out_whole(text: str) -> None:
    data = text.encode()
    for cut in range(1, len(data)):
        d = IncrementalDetokenizer()
        out = d.feed(data[:cut]) + d.feed(data[cut:]) + d.flush()
        assert out == text
    d = IncrementalDetokenizer()
    assert "".join(d.feed(bytes([b])) for b in data) + d.flush() == text


def test_unfinished_character_at_end_becomes_replacement_char() -> None:
    d = IncrementalDetokenizer()
    assert d.feed(b"ok " + "🌍".encode()[:2]) == "ok "
    assert d.flush() == "\ufffd"


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (S.QUEUED, S.STREAMING),
        (S.STREAMING, S.COMPLETED),
        (S.STREAMING, S.CANCELLED),
        (S.STREAMING, S.FAILED),
        (S.QUEUED, S.CANCELLED),
        (S.QUEUED, S.FAILED),
        (S.STREAMING, S.INTERRUPTED),
    ],
    ids=lambda s: s.value,
)
def test_legal_transitions(src: S, dst: S) -> None:
    assert check_transition(src, dst) is dst


@pytest.mark.parametrize(
    ("src", "dst"),
    [
        (S.COMPLETED, S.STREAMING),
        (S.CANCELLED, S.COMPLETED),
        (S.FAILED, S.COMPLETED),
        (S.QUEUED, S.COMPLETED),
        (S.STREAMING, S.QUEUED),
        (S.INTERRUPTED, S.COMPLETED),
        (S.COMPLETED, S.COMPLETED),
    ],
    ids=lambda s: s.value,
)
def test_illegal_transitions_are_refused(src: S, dst: S) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(src, dst)


def test_template_renders_chatml() -> None:
    t = ChatTemplate(CHATML_TEMPLATE, bos_token="", eos_token="<|im_end|>")
    out = t.render([ChatMessage("user", "Hi")])
    assert out == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"


def test_template_cannot_escape_the_sandbox() -> None:
    hostile = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    t = ChatTemplate(hostile, bos_token="", eos_token="")
    with pytest.raises(Exception, match=r"unsafe|access"):
        t.render([ChatMessage("user", "x")])


def test_template_cannot_mutate_messages() -> None:
    t = ChatTemplate("{% set _ = messages.append({'role': 'x'}) %}{{ messages|length }}", bos_token="", eos_token="")
    with pytest.raises(Exception, match=r"unsafe|mutable|append"):
        t.render([ChatMessage("user", "x")])


def _header(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "m.gguf"
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "not_gguf"),
        (b"PK\x03\x04 zip file", "not_gguf"),
        (b"GGUF\x03\x00", "truncated"),
        (b"GGUF" + struct.pack("<IQQ", 99, 10, 10), "unsupported_version"),
        (b"GGUF" + struct.pack("<IQQ", 3, 10**12, 10), "corrupt_header"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 10), "corrupt_header"),
    ],
    ids=["empty", "zip", "truncated", "version-99", "absurd-tensor-count", "no-tensors"],
)
def test_gguf_header_problems_are_named(tmp_path: Path, data: bytes, code: str) -> None:
    p = _header(tmp_path, data)
    with pytest.raises(ModelLoadError) as err:
        check_gguf_header(p)
    assert err.value.code == code and p.name in err.value.message


def test_gguf_header_accepts_the_bundled_model(model_path: Path) -> None:
    assert check_gguf_header(model_path) == 98_362_432


@pytest.mark.parametrize(
    ("poison", "ok"),
    [
        (None, True),
        ("nan", False),
        ("inf", False),
        ("-inf", True),  # one token that cannot be picked, as llama.cpp's own samplers make them
        ("all -inf", False),
    ],
    ids=["finite", "a-nan", "a-plus-infinity", "a-minus-infinity", "all-minus-infinity"],
)
def test_the_full_check_refuses_logits_nothing_can_be_sampled_from(poison: str | None, ok: bool) -> None:
    """The check after the prompt, and before llama.cpp's own full pass (engine/sampler.py tests
    the cut's and greedy's checks)."""
    import numpy as np

    from engine.sampler import usable

    for at in (0, 1234, 262_143):  # first, middle, last of a Gemma-sized vocabulary
        logits = np.random.default_rng(at).normal(0, 3, 262_144).astype(np.float32)
        if poison == "all -inf":
            logits[:] = -np.inf
        elif poison is not None:
            logits[at] = float(poison)
        assert usable(logits) is ok, at
