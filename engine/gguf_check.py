"""Decide whether a file is a GGUF model that llama.cpp can be trusted to load.

A model file is untrusted input. llama.cpp reports most problems only as "failed to load
model" on stderr, and some it does not report at all: it asserts and aborts the process
(a layer count outside 1-512, inconsistent expert counts, an unknown RoPE scaling type, a
repeated vocabulary token, `general.alignment` of the wrong type), or fails at the first
reply (a negative or NaN norm epsilon). `check_gguf` runs before llama.cpp sees the file,
in the engine process, and turns each of these into a `ModelLoadError` with a stable code
and a message that names the file:

    not_found, not_a_file, unreadable   the path itself
    not_gguf, unsupported_version       the first 8 bytes
    corrupt_header                      an absurd tensor or key count
    truncated, corrupt_metadata,        the layout (engine.gguf_meta): lengths, types,
    corrupt_tensor_info                 encodings, shapes, tensor data offsets
    missing_architecture                no usable `general.architecture`
    no_tokenizer                        no vocabulary: nothing Hearth can chat with

It reads the header, the metadata and the tensor table, never the weights. Hyperparameters
that llama.cpp itself reports cleanly (wrong types, shapes that do not match the tensors,
unknown architectures) are left to it.
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ModelLoadError
from engine.gguf_meta import (
    FLOAT32,
    INT32,
    STRING,
    TYPE_NAMES,
    UINT32,
    GGUFMetadata,
    TensorInfo,
    damaged,
    read_metadata,
    show,
)

__all__ = ["GGUFSummary", "check_gguf", "check_gguf_header", "check_gguf_metadata"]

_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
# Far above any real model (a 405B model has ~1,100 tensors and a few dozen keys);
# a header claiming more is corrupt or hostile.
_MAX_TENSORS = 1_000_000
_MAX_KV = 100_000
_DEFAULT_ALIGNMENT = 32
_MAX_LAYERS = 512  # LLAMA_MAX_LAYERS
_ROPE_SCALING_TYPES = ("none", "linear", "yarn", "longrope")
_INT32_MAX = (1 << 31) - 1
_ARCH_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Tokenizer arrays llama.cpp reads through typed pointers and indexes by the vocabulary size.
_TOKENIZER_ARRAYS = {
    "tokenizer.ggml.tokens": STRING,
    "tokenizer.ggml.scores": FLOAT32,
    "tokenizer.ggml.token_type": INT32,
    "tokenizer.ggml.merges": STRING,
}


@dataclass(frozen=True, slots=True)
class GGUFSummary:
    """What the engine needs from a checked GGUF file, read without loading weights."""

    size_bytes: int
    version: int
    architecture: str
    name: str | None
    chat_template: str | None
    n_tensors: int
    data_offset: int  # where the tensor data starts


def check_gguf_header(path: str | os.PathLike[str]) -> int:
    """Return the file size if `path` starts like a GGUF model; raise ModelLoadError otherwise."""
    p = Path(path)
    if not p.exists():
        raise ModelLoadError("not_found", f"Model file not found: {p}")
    if not p.is_file():
        raise ModelLoadError("not_a_file", f"Model path is not a file: {p}")
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            head = f.read(24)
    except OSError as e:
        raise ModelLoadError("unreadable", f"Cannot read model file {p}: {e.strerror or e}") from e
    if len(head) < 4 or head[:4] != _MAGIC:
        raise ModelLoadError(
            "not_gguf",
            f"{p.name} is not a GGUF model file (it does not start with 'GGUF'). "
            "Hearth runs llama.cpp GGUF models; convert or download a .gguf file.",
        )
    if len(head) < 24:
        raise ModelLoadError("truncated", f"{p.name} is truncated: the GGUF header is incomplete.")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in _SUPPORTED_VERSIONS:
        raise ModelLoadError(
            "unsupported_version", f"{p.name} is GGUF version {version}; Hearth reads versions 2 and 3."
        )
    if n_tensors == 0 or n_tensors > _MAX_TENSORS or n_kv > _MAX_KV:
        raise ModelLoadError(
            "corrupt_header",
            f"{p.name} has an implausible GGUF header ({n_tensors:,} tensors, {n_kv:,} metadata keys).",
        )
    return size


def check_gguf(path: str | os.PathLike[str]) -> GGUFSummary:
    """Check the header, metadata and tensor table of `path`; raise ModelLoadError if unsafe."""
    return check_gguf_metadata(path)[0]


def check_gguf_metadata(path: str | os.PathLike[str]) -> tuple[GGUFSummary, GGUFMetadata]:
    """`check_gguf`, also returning the metadata it checked (for engine.gguf_info: one pass)."""
    size = check_gguf_header(path)
    p = Path(path)
    try:
        with p.open("rb") as f:
            meta = read_metadata(f, size, p.name)
    except OSError as e:
        raise ModelLoadError("unreadable", f"Cannot read model file {p}: {e.strerror or e}") from e
    name = p.name
    arch = _architecture(meta, name)
    _check_hyperparameters(meta, arch, name)
    _check_tokenizer(meta, name)
    alignment = _alignment(meta, name)
    data_offset = -(-meta.table_end // alignment) * alignment
    _check_tensor_layout(meta.tensors, data_offset, alignment, size, name)
    summary = GGUFSummary(
        size_bytes=size,
        version=meta.version,
        architecture=arch,
        name=meta.strings.get("general.name"),
        chat_template=meta.strings.get("tokenizer.chat_template"),
        n_tensors=len(meta.tensors),
        data_offset=data_offset,
    )
    return summary, meta


def _architecture(meta: GGUFMetadata, name: str) -> str:
    key = "general.architecture"
    arch = meta.strings.get(key, "").strip()
    if not arch:
        stored = meta.type_name(key)
        why = "is missing" if stored is None else "is empty" if stored == "string" else f"is stored as {stored}"
        raise ModelLoadError(
            "missing_architecture",
            f"{name} does not say which model architecture it is ('{key}' {why}), so llama.cpp cannot load it.",
        )
    if not _ARCH_NAME.fullmatch(arch):  # it prefixes other keys' names, and appears in messages
        raise damaged(name, "corrupt_metadata", f"its architecture name {show(arch)} is not a plain name")
    return arch


def _check_hyperparameters(meta: GGUFMetadata, arch: str, name: str) -> None:
    """Values llama.cpp asserts on (aborting the process) instead of reporting them.

    Only values of the type llama.cpp expects are judged: a wrong type it reports cleanly.
    """
    layers = meta.number(f"{arch}.block_count", UINT32)
    if layers is not None and not 1 <= layers <= _MAX_LAYERS:
        raise damaged(
            name,
            "corrupt_metadata",
            f"it claims {layers:,} layers ('{arch}.block_count'), where llama.cpp supports 1 to {_MAX_LAYERS}",
        )
    experts = meta.number(f"{arch}.expert_count", UINT32) or 0
    used = meta.number(f"{arch}.expert_used_count", UINT32) or 0
    if (experts == 0 and used > 0) or (experts > 0 and not 1 <= used <= experts):
        raise damaged(name, "corrupt_metadata", f"it has {experts:,} experts and claims to use {used:,} per token")
    context = meta.number(f"{arch}.context_length", UINT32)
    if context is not None and context > _INT32_MAX:  # llama.cpp reads it back as a negative int32
        raise damaged(name, "corrupt_metadata", f"it claims a context of {context:,} tokens")
    for key in (f"{arch}.attention.layer_norm_rms_epsilon", f"{arch}.attention.layer_norm_epsilon"):
        eps = meta.number(key, FLOAT32)
        if eps is not None and not (eps >= 0 and math.isfinite(eps)):  # a NaN compares false
            raise damaged(name, "corrupt_metadata", f"its normalisation epsilon ('{key}') is {eps}")
    scaling = meta.strings.get(f"{arch}.rope.scaling.type")
    if scaling is not None and scaling not in _ROPE_SCALING_TYPES:
        raise damaged(
            name, "corrupt_metadata", f"its RoPE scaling type ('{arch}.rope.scaling.type') is unknown: {scaling[:40]!r}"
        )


def _check_tokenizer(meta: GGUFMetadata, name: str) -> None:
    model = meta.strings.get("tokenizer.ggml.model")
    if model in ("none", "no_vocab"):
        raise ModelLoadError(
            "no_tokenizer",
            f"{name} has no tokenizer ('tokenizer.ggml.model' is '{model}'), so Hearth cannot chat with it.",
        )
    for key, etype in _TOKENIZER_ARRAYS.items():
        stored = meta.type_name(key)
        if stored is not None and stored != f"array of {TYPE_NAMES[etype]}":
            raise damaged(
                name,
                "corrupt_metadata",
                f"the tokenizer's '{key}' is stored as {stored}, not as a list of {TYPE_NAMES[etype]}",
            )
    tokens = meta.arrays.get("tokenizer.ggml.tokens")
    for key in ("tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        entries = meta.arrays.get(key)
        if tokens is not None and entries is not None and entries[1] != tokens[1]:
            raise damaged(
                name,
                "corrupt_metadata",
                f"the tokenizer has {tokens[1]:,} tokens but {entries[1]:,} entries in '{key}'",
            )
    stored = meta.type_name("tokenizer.chat_template")
    if stored not in (None, "string"):
        raise damaged(
            name,
            "corrupt_metadata",
            f"its chat template ('tokenizer.chat_template') is stored as {stored}, not as text",
        )


def _alignment(meta: GGUFMetadata, name: str) -> int:
    """`general.alignment`: llama.cpp reads it as a uint32 and aborts on any other type."""
    key = "general.alignment"
    stored = meta.type_name(key)
    if stored is None:
        return _DEFAULT_ALIGNMENT
    value = meta.number(key, UINT32)
    if value is None:
        raise damaged(name, "corrupt_metadata", f"'{key}' is stored as {stored}, not as uint32")
    assert isinstance(value, int)
    if value == 0 or value & (value - 1):
        raise damaged(name, "corrupt_metadata", f"'{key}' is {value:,}, not a power of two")
    return value


def _check_tensor_layout(tensors: list[TensorInfo], data_offset: int, alignment: int, size: int, name: str) -> None:
    """llama.cpp requires the tensors in order, each at the next aligned offset, all inside the file."""
    expected = 0
    end = data_offset
    for t in tensors:
        if t.offset != expected:
            raise damaged(
                name,
                "corrupt_tensor_info",
                f"tensor {show(t.name)} claims its data at offset "
                f"{t.offset:,} of the data section, where the tensors "
                f"before it put it at {expected:,}",
            )
        expected += -(-t.nbytes // alignment) * alignment
        end = data_offset + t.offset + t.nbytes
    if end > size:
        raise damaged(name, "truncated", f"it is {size:,} bytes long, but its tensors need {end:,} bytes")
