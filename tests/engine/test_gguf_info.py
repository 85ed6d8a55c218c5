"""What Hearth tells a person about a model before loading it, checked against llama.cpp itself.

llama.cpp's own numbers for the bundled model come from one subprocess, so native code never
loads into the test process. Variants are the bundled model's header rewritten
(tests/gguf_corpus.py), with the weights a sparse run of zeros.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gguf_corpus import (
    ARRAY,
    STRING,
    U32,
    U64,
    Case,
    Layout,
    build_corpus,
    enc_kv,
    enc_str,
    layout_of,
    rebuild,
    write_model,
)

from app.core.paths import default_model_path
from engine.errors import ModelLoadError
from engine.gguf_check import check_gguf
from engine.gguf_info import GGUFInfo, format_bytes, format_params, read_gguf_info

_REPO = Path(__file__).resolve().parents[2]
# llama.cpp's own view of the model: its parameter count, shape and type description.
_ASK_LLAMA_CPP = """
import json, sys
import llama_cpp as l
from engine.backends import load_backends
load_backends(l)
params = l.llama_model_default_params()
params.use_mmap = True
model = l.llama_model_load_from_file(sys.argv[1].encode(), params)
desc = l.ctypes.create_string_buffer(256)
l.llama_model_desc(model, desc, 256)
print(json.dumps({"n_params": l.llama_model_n_params(model), "n_layer": l.llama_model_n_layer(model),
                  "n_head": l.llama_model_n_head(model), "n_head_kv": l.llama_model_n_head_kv(model),
                  "n_embd": l.llama_model_n_embd(model), "n_ctx_train": l.llama_model_n_ctx_train(model),
                  "desc": desc.value.decode()}))
l.llama_model_free(model)
"""
_I32 = 5


@pytest.fixture(scope="module")
def llama_cpp_view(model_path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _ASK_LLAMA_CPP, str(model_path)],
        capture_output=True,
        text=True,
        cwd=_REPO,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def layout(model_path: Path) -> Layout:
    return layout_of(model_path)


@pytest.fixture(scope="module")
def bundled(model_path: Path) -> GGUFInfo:
    return read_gguf_info(model_path)


def _variant(lay: Layout, folder: Path, **changes: object) -> Path:
    return write_model(folder / "variant.gguf", *rebuild(lay, **changes))  # type: ignore[arg-type]


def _u32(key: str, value: int) -> bytes:
    return enc_kv(key, U32, struct.pack("<I", value))


def _u32_list(key: str, etype: int, values: list[int]) -> bytes:
    fmt = "<I" if etype == U32 else "<i"
    return enc_kv(key, ARRAY, struct.pack("<IQ", etype, len(values)) + b"".join(struct.pack(fmt, v) for v in values))


# -- the bundled model --------------------------------------------------------------------


def test_the_bundled_model_reads_as_llama_cpp_sees_it(bundled: GGUFInfo, llama_cpp_view: dict[str, object]) -> None:
    assert bundled.parameters == llama_cpp_view["n_params"] == 134_515_008
    assert bundled.block_count == llama_cpp_view["n_layer"] == 30
    assert bundled.head_count == llama_cpp_view["n_head"] == 9
    assert bundled.head_count_kv == llama_cpp_view["n_head_kv"] == 3
    assert bundled.embedding_length == llama_cpp_view["n_embd"] == 576
    assert bundled.context_length == llama_cpp_view["n_ctx_train"] == 8192
    assert bundled.quantisation == "Q4_1" and "Q4_1" in str(llama_cpp_view["desc"])
    assert bundled.architecture == "llama" and bundled.name == "Smollm2 135M 8k Lc100K Mix1 Ep2"
    assert (bundled.key_length, bundled.value_length) == (64, 64)
    assert bundled.chat_template is not None and "<|im_start|>" in bundled.chat_template
    assert bundled.size_bytes == 98_362_432 and bundled.file_name == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_layer_bytes_account_for_every_tensor(bundled: GGUFInfo) -> None:
    assert len(bundled.layer_bytes) == 30 and len(set(bundled.layer_bytes)) == 1
    # The tensors fill the data section exactly: 98,362,432 bytes minus the 1,785,664 before it.
    assert sum(bundled.layer_bytes) + bundled.other_bytes == 98_362_432 - 1_785_664
    assert bundled.other_bytes > bundled.layer_bytes[0]  # the 49,152 x 576 token embedding


def test_it_reads_the_header_only_and_quickly(model_path: Path) -> None:
    read_gguf_info(model_path)  # warm the page cache
    best = float("inf")
    for _ in range(5):  # CPU time, best of five: deaf to busy neighbours
        t0 = time.process_time()
        read_gguf_info(model_path)
        best = min(best, time.process_time() - t0)
    assert best < 0.15, f"{best * 1000:.0f} ms"


def test_the_description_a_person_sees(bundled: GGUFInfo) -> None:
    assert bundled.describe() == [
        ("Name", "Smollm2 135M 8k Lc100K Mix1 Ep2"),
        ("File", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ("Architecture", "llama"),
        ("Parameters", "135M"),
        ("Quantisation", "Q4_1"),
        ("Context length", "8,192 tokens"),
        ("Layers", "30"),
        ("Chat template", f"built in (ChatML-style, {len(bundled.chat_template or ''):,} chars)"),
        ("File size", "98.4 MB"),
    ]


# -- headers that leave things out or say them differently ---------------------------------


def test_a_missing_context_length_is_unknown(layout: Layout, tmp_path: Path) -> None:
    info = read_gguf_info(_variant(layout, tmp_path, drop=("llama.context_length",)))
    assert info.context_length is None
    assert ("Context length", "unknown") in info.describe()


def test_absent_kv_heads_default_to_the_query_heads(layout: Layout, tmp_path: Path) -> None:
    info = read_gguf_info(_variant(layout, tmp_path, drop=("llama.attention.head_count_kv",)))
    assert info.head_count_kv == info.head_count == 9
    assert (info.key_length, info.value_length) == (576 // 9, 576 // 9)


@pytest.mark.parametrize("etype", [U32, _I32], ids=["uint32-list", "int32-list"])
def test_kv_heads_listed_per_layer_take_the_largest(etype: int, layout: Layout, tmp_path: Path) -> None:
    per_layer = [3] * 30
    per_layer[7], per_layer[12] = 0, 6  # a layer without attention, and a wider one
    key = "llama.attention.head_count_kv"
    info = read_gguf_info(_variant(layout, tmp_path, replace={key: _u32_list(key, etype, per_layer)}))
    assert info.head_count_kv == 6
    assert info.head_count == 9


def test_explicit_key_and_value_lengths_win(layout: Layout, tmp_path: Path) -> None:
    info = read_gguf_info(
        _variant(
            layout, tmp_path, add=(_u32("llama.attention.key_length", 96), _u32("llama.attention.value_length", 80))
        )
    )
    assert (info.key_length, info.value_length) == (96, 80)


@pytest.mark.parametrize(
    ("file_type", "expected"),
    [
        (18, "Q6_K"),
        (15, "Q4_K_M"),
        (0, "F32"),
        (32, "BF16"),
        (38, "MXFP4_MOE"),
        (4, "Q4_1"),  # removed from llama.cpp: the tensors decide
        (999, "Q4_1"),
        (None, "Q4_1"),
    ],
    ids=["q6_k", "q4_k_m", "all-f32", "bf16", "mxfp4-moe", "removed-type-4", "unknown-999", "absent"],
)
def test_quantisation_names_and_fallback(file_type: int | None, expected: str, layout: Layout, tmp_path: Path) -> None:
    key = "general.file_type"
    changes = {"drop": (key,)} if file_type is None else {"replace": {key: _u32(key, file_type)}}
    info = read_gguf_info(_variant(layout, tmp_path, **changes))
    assert info.quantisation == expected


def test_a_file_type_stored_as_uint64_still_reads(layout: Layout, tmp_path: Path) -> None:
    key = "general.file_type"
    info = read_gguf_info(_variant(layout, tmp_path, replace={key: enc_kv(key, U64, struct.pack("<Q", 15))}))
    assert info.quantisation == "Q4_K_M"


def test_a_missing_chat_template_is_described(layout: Layout, tmp_path: Path) -> None:
    info = read_gguf_info(_variant(layout, tmp_path, drop=("tokenizer.chat_template",)))
    assert info.chat_template is None
    described = dict(info.describe())["Chat template"]
    assert described.startswith("none in the file: Hearth uses ChatML (a guess)"), described


def test_an_unfamiliar_template_is_counted_without_a_style(layout: Layout, tmp_path: Path) -> None:
    key = "tokenizer.chat_template"
    source = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    info = read_gguf_info(_variant(layout, tmp_path, replace={key: enc_kv(key, STRING, enc_str(source))}))
    assert ("Chat template", f"built in ({len(source)} chars)") in info.describe()


@pytest.mark.parametrize("block_count", [None, 2**40], ids=["absent", "absurd-uint64"])
def test_layers_are_counted_from_the_tensors_when_the_header_does_not_say(
    block_count: int | None, layout: Layout, tmp_path: Path
) -> None:
    key = "llama.block_count"
    changes: dict[str, object] = {"drop": (key,)}
    if block_count is not None:
        changes = {"replace": {key: enc_kv(key, U64, struct.pack("<Q", block_count))}}
    info = read_gguf_info(_variant(layout, tmp_path, **changes))
    assert info.block_count == 30 and len(info.layer_bytes) == 30


# -- damaged files: the same verdict as the check before loading ---------------------------

_FAMILIES = (
    "truncated-at-",
    "truncated-in-weights-",
    "magic-",
    "version-",
    "tensor-count-",
    "key-length-",
    "array-count-huge",
    "tensor-type-",
    "tensor-offset-",
    "block-count-",
    "no-tokenizer",
    "architecture-missing",
    "alignment-",
    "token-types-short",
)


def _damaged_cases(path: Path) -> list[Case]:
    """The first case of each family of damage in the hostile corpus."""
    if not path.is_file():
        return []
    seen: set[str] = set()
    picked: list[Case] = []
    for case in build_corpus(layout_of(path)):
        family = next((f for f in _FAMILIES if case.id.startswith(f)), None)
        if case.expect is not None and family is not None and family not in seen:
            seen.add(family)
            picked.append(case)
    return picked


_DAMAGED = _damaged_cases(default_model_path())


def test_every_damage_family_is_covered() -> None:
    assert len(_DAMAGED) == len(_FAMILIES)


@pytest.mark.parametrize("case", _DAMAGED, ids=[c.id for c in _DAMAGED])
def test_a_damaged_file_fails_as_the_check_does(case: Case, layout: Layout, tmp_path: Path) -> None:
    path = write_model(tmp_path / "broken-model.gguf", *case.make(layout))
    with pytest.raises(ModelLoadError) as checked:
        check_gguf(path)
    with pytest.raises(ModelLoadError) as described:
        read_gguf_info(path)
    assert (described.value.code, described.value.message) == (checked.value.code, checked.value.message)
    assert case.expect is not None and described.value.code in case.expect
    assert "broken-model.gguf" in described.value.message


@pytest.mark.parametrize("kind", ["not-gguf", "missing"], ids=["text-file", "missing-file"])
def test_what_is_not_a_model_at_all(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    if kind == "not-gguf":
        path.write_text("a note, not a model\n" * 10)
    with pytest.raises(ModelLoadError) as err:
        read_gguf_info(path)
    assert err.value.code == {"not-gguf": "not_gguf", "missing": "not_found"}[kind]
    assert "notes.gguf" in err.value.message


# -- formatting ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (134_515_008, "135M"),
        (1_543_714_304, "1.5B"),
        (7_615_616_512, "7.6B"),
        (70_553_706_496, "71B"),
        (999_600_000, "1B"),
        (1_000_000_000, "1B"),
        (12_345, "12K"),
        (950, "950"),
        (0, "0"),
    ],
    ids=[
        "smollm2-135m",
        "qwen-1.5b",
        "qwen-7b",
        "llama-70b",
        "rounds-up-to-1b",
        "exactly-1b",
        "thousands",
        "hundreds",
        "zero",
    ],
)
def test_format_params(n: int, text: str) -> None:
    assert format_params(n) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (98_362_432, "98.4 MB"),
        (4_920_000_000, "4.9 GB"),
        (2_048, "2.0 kB"),
        (12, "12 bytes"),
    ],
    ids=["bundled", "7b-q4", "kilobytes", "bytes"],
)
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text
