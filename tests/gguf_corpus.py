"""Build damaged and hostile GGUF files from the real bundled model, cheaply.

A test never needs 100 copies of 98 MB: each case writes the model's header, metadata and
tensor table (the first 1.8 MB), mutated, and extends the file to its full length with
`os.truncate`, so the weights are a sparse run of zeros that costs no disk and no time.
`with_weights=True` copies the real weights instead, for a model that must also generate.

The layout parser here is deliberately separate from engine.gguf_meta (the code under
test): it only walks the known-good bundled file and records where each field lives, so
that mutations can be aimed at a field. Each case names the error codes it may produce;
`None` means the damage may leave a valid file (a flipped bit inside a token's text).
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Case", "Layout", "build_corpus", "enc_kv", "enc_str", "layout_of", "rebuild", "write_model"]

_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
U32, U64, STRING, ARRAY, F32, I32, U8 = 4, 10, 8, 9, 6, 5, 0


@dataclass(frozen=True)
class KV:
    key: str
    start: int  # the key's length field
    type_at: int  # the value type field
    value_at: int  # scalar value, string length field, or array element type field
    vtype: int
    end: int


@dataclass(frozen=True)
class Tensor:
    name: str
    start: int  # the name's length field
    ndims_at: int
    dims: tuple[int, ...]
    type_at: int
    ttype: int
    offset_at: int
    end: int


@dataclass
class Layout:
    """Where every field of the bundled model lives, plus its first bytes (up to the data)."""

    path: Path
    head: bytes  # bytes [0, data_offset)
    size: int
    kvs: dict[str, KV] = field(default_factory=dict)
    tensors: list[Tensor] = field(default_factory=list)
    meta_end: int = 0  # end of the tensor table
    data_offset: int = 0

    def raw_kv(self, key: str) -> bytes:
        kv = self.kvs[key]
        return self.head[kv.start : kv.end]


def layout_of(path: Path) -> Layout:
    with path.open("rb") as f:
        head = f.read(8 << 20)
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", head, 8)

    def u32() -> int:
        nonlocal pos
        pos += 4
        return int(struct.unpack_from("<I", head, pos - 4)[0])

    def u64() -> int:
        nonlocal pos
        pos += 8
        return int(struct.unpack_from("<Q", head, pos - 8)[0])

    def string() -> str:
        nonlocal pos
        n = u64()
        pos += n
        return head[pos - n : pos].decode()

    lay = Layout(path, b"", path.stat().st_size)
    for _ in range(n_kv):
        start = pos
        key = string()
        type_at = pos
        vtype = u32()
        value_at = pos
        if vtype == ARRAY:
            etype, count = u32(), u64()
            for _ in range(count):
                if etype == STRING:
                    string()
                else:
                    pos += _SCALAR_SIZES[etype]
        elif vtype == STRING:
            string()
        else:
            pos += _SCALAR_SIZES[vtype]
        lay.kvs[key] = KV(key, start, type_at, value_at, vtype, pos)
    for _ in range(n_tensors):
        start = pos
        name = string()
        ndims_at = pos
        dims = tuple(u64() for _ in range(u32()))
        type_at = pos
        ttype = u32()
        offset_at = pos
        u64()
        lay.tensors.append(Tensor(name, start, ndims_at, dims, type_at, ttype, offset_at, pos))
    lay.meta_end = pos
    lay.data_offset = (pos + 31) // 32 * 32
    lay.head = head[: lay.data_offset]
    return lay


def enc_str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def enc_kv(key: str | bytes, vtype: int, payload: bytes) -> bytes:
    """One serialized key/value: the payload is the value's bytes as they follow the type."""
    return enc_str(key) + struct.pack("<I", vtype) + payload


def rebuild(
    lay: Layout,
    *,
    drop: tuple[str, ...] = (),
    replace: dict[str, bytes] | None = None,
    add: tuple[bytes, ...] = (),
    alignment: int = 32,
) -> tuple[bytes, int]:
    """Re-serialize the metadata with keys dropped, replaced (by enc_kv bytes) or added.

    Returns (head, total size): the tensor table is kept, the data section moves to the
    new aligned offset, and its length is unchanged.
    """
    replace = replace or {}
    kvs = [replace.get(k, lay.raw_kv(k)) for k in lay.kvs if k not in drop] + list(add)
    tensor_table = lay.head[lay.tensors[0].start : lay.meta_end]
    head = lay.head[:8] + struct.pack("<QQ", len(lay.tensors), len(kvs)) + b"".join(kvs) + tensor_table
    head += b"\0" * (-len(head) % alignment)
    return head, len(head) + lay.size - lay.data_offset


def write_model(path: Path, head: bytes, total: int, *, source: Layout | None = None) -> Path:
    """Write `head`, then either the source model's real weights or a sparse run of zeros."""
    with path.open("wb") as f:
        f.write(head)
        if source is not None:
            with source.path.open("rb") as src:
                src.seek(source.data_offset)
                shutil.copyfileobj(src, f, 8 << 20)
    if source is None:
        os.truncate(path, total)
    return path


# -- the corpus -----------------------------------------------------------------------

# Codes the validator gives for a damaged file; which one depends on where parsing derails.
STRUCTURAL = frozenset(
    {"truncated", "corrupt_header", "corrupt_metadata", "corrupt_tensor_info", "missing_architecture"}
)


@dataclass(frozen=True)
class Case:
    """One hostile file: how to make it, and the error codes it may yield (None: may also load)."""

    id: str
    make: Callable[[Layout], tuple[bytes, int]]
    expect: frozenset[str] | None


def _patch(lay: Layout, at: int, data: bytes) -> tuple[bytes, int]:
    head = bytearray(lay.head)
    head[at : at + len(data)] = data
    return bytes(head), lay.size


def _cut(at: int) -> Callable[[Layout], tuple[bytes, int]]:
    return lambda lay: (lay.head[:at], at) if at <= lay.data_offset else (lay.head, at)


def _set(where: Callable[[Layout], int], fmt: str, value: int) -> Callable[[Layout], tuple[bytes, int]]:
    return lambda lay: _patch(lay, where(lay), struct.pack(fmt, value))


def _rebuilt(**kw: object) -> Callable[[Layout], tuple[bytes, int]]:
    return lambda lay: rebuild(lay, **kw)  # type: ignore[arg-type]


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


def build_corpus(lay: Layout, seed: int = 20_251_122) -> list[Case]:
    """Every case, deterministic for a given seed and model."""
    rng = random.Random(seed)
    return list(_cases(lay, rng))


def _cases(lay: Layout, rng: random.Random) -> Iterator[Case]:
    trunc, meta, tinfo = _codes("truncated"), _codes("corrupt_metadata"), _codes("corrupt_tensor_info")
    keys = list(lay.kvs.values())
    n_t = len(lay.tensors)

    # 1. truncated: inside the header, at every section boundary, at random points, in the weights
    points = {4, 10, 23, 24, 30, lay.meta_end, lay.data_offset - 1}
    points |= {kv.start + 3 for kv in keys[:8]} | {keys[i].value_at + 1 for i in range(0, len(keys), 3)}
    points |= {lay.tensors[i].ndims_at + 2 for i in (0, n_t // 2, n_t - 1)}
    points |= {rng.randrange(24, lay.data_offset) for _ in range(24)}
    for at in sorted(points):
        yield Case(f"truncated-at-{at}", _cut(at), trunc)
    for frac in (0.0001, 0.5, 0.999999):
        at = lay.data_offset + int((lay.size - lay.data_offset) * frac)
        yield Case(f"truncated-in-weights-{frac}", _cut(at), trunc)

    # 2. not GGUF, or a version Hearth cannot read
    for magic in (b"GGML", b"ggjt", b"gguf", b"\0\0\0\0", b"\x7fELF", b"FUGG"):
        yield Case(f"magic-{magic!r}", lambda lay, m=magic: _patch(lay, 0, m), _codes("not_gguf"))
    for version in (0, 1, 4, 0x0300_0000, 0xFFFF_FFFF):
        yield Case(f"version-{version:#x}", _set(lambda lay: 4, "<I", version), _codes("unsupported_version"))

    # 3. absurd or off-by-one counts
    for n in (0, 2**40, 2**64 - 1):
        yield Case(f"tensor-count-{n}", _set(lambda lay: 8, "<Q", n), _codes("corrupt_header"))
    yield Case("tensor-count-plus-one", _set(lambda lay: 8, "<Q", n_t + 1), tinfo)
    yield Case("tensor-count-plus-1000", _set(lambda lay: 8, "<Q", n_t + 1000), tinfo)
    for n in (100_001, 2**63):
        yield Case(f"key-count-{n}", _set(lambda lay: 16, "<Q", n), _codes("corrupt_header"))
    yield Case("key-count-0", _set(lambda lay: 16, "<Q", 0), STRUCTURAL)
    yield Case("key-count-plus-one", _set(lambda lay: 16, "<Q", len(keys) + 1), STRUCTURAL)
    yield Case("key-count-minus-one", _set(lambda lay: 16, "<Q", len(keys) - 1), STRUCTURAL)
    yield Case("key-count-100000", _set(lambda lay: 16, "<Q", 100_000), STRUCTURAL)

    # 4. key/value fields: lengths, types, counts
    for kv in rng.sample(keys, 6):
        k = kv.key
        yield Case(f"key-length-0:{k}", _set(lambda lay, k=k: lay.kvs[k].start, "<Q", 0), meta)
        yield Case(f"key-length-huge:{k}", _set(lambda lay, k=k: lay.kvs[k].start, "<Q", 2**62), meta)
    for kv in rng.sample(keys, 3):
        yield Case(f"key-length-70000:{kv.key}", _set(lambda lay, k=kv.key: lay.kvs[k].start, "<Q", 70_000), meta)
    for kv in rng.sample(keys, 6):
        for vtype in (13, 99, 0xFFFF_FFFF):
            yield Case(
                f"value-type-{vtype}:{kv.key}", _set(lambda lay, k=kv.key: lay.kvs[k].type_at, "<I", vtype), meta
            )
    strings = [kv for kv in keys if kv.vtype == STRING]
    for kv in rng.sample(strings, 4):
        k = kv.key
        yield Case(f"string-length-huge:{k}", _set(lambda lay, k=k: lay.kvs[k].value_at, "<Q", 2**62 + 5), meta)
        yield Case(
            f"string-length-past-end:{k}",
            _set(lambda lay, k=k: lay.kvs[k].value_at, "<Q", lay.size - lay.kvs[k].value_at - 4),
            trunc,
        )
    arrays = [kv for kv in keys if kv.vtype == ARRAY]
    for kv in arrays:
        k = kv.key
        yield Case(f"array-of-arrays:{k}", _set(lambda lay, k=k: lay.kvs[k].value_at, "<I", ARRAY), meta)
        yield Case(f"array-of-type-77:{k}", _set(lambda lay, k=k: lay.kvs[k].value_at, "<I", 77), meta)
        yield Case(f"array-count-huge:{k}", _set(lambda lay, k=k: lay.kvs[k].value_at + 4, "<Q", 2**61), meta)
    yield Case("key-not-utf8", lambda lay: _patch(lay, lay.kvs["general.name"].start + 8, b"\xff"), meta)
    yield Case("name-not-utf8", lambda lay: _patch(lay, lay.kvs["general.name"].value_at + 8, b"\xc3\x28"), meta)
    yield Case("duplicate-key", lambda lay: _patch(lay, lay.kvs["general.type"].start + 8, b"general.name"), meta)
    yield Case(
        "architecture-key-renamed",
        lambda lay: _patch(lay, lay.kvs["general.architecture"].start + 8, b"general.architecturX"),
        _codes("missing_architecture"),
    )

    # 5. the tensor table
    inner = list(range(n_t - 1))  # a size change in the last tensor shows as truncation instead
    two_d = [i for i in inner if len(lay.tensors[i].dims) == 2]
    for i in rng.sample(inner, 3):
        yield Case(f"tensor-name-length-0:{i}", _set(lambda lay, i=i: lay.tensors[i].start, "<Q", 0), tinfo)
        yield Case(f"tensor-name-length-64:{i}", _set(lambda lay, i=i: lay.tensors[i].start, "<Q", 64), tinfo)
        yield Case(f"tensor-name-length-huge:{i}", _set(lambda lay, i=i: lay.tensors[i].start, "<Q", 2**63), tinfo)
    for i in rng.sample(inner, 3):
        for nd in (5, 0xFFFF_FFFF):
            yield Case(f"tensor-rank-{nd}:{i}", _set(lambda lay, i=i: lay.tensors[i].ndims_at, "<I", nd), tinfo)
    for i in rng.sample(two_d, 4):
        dim0 = lambda lay, i=i: lay.tensors[i].ndims_at + 4  # noqa: E731
        dim1 = lambda lay, i=i: lay.tensors[i].ndims_at + 12  # noqa: E731
        yield Case(f"tensor-dim-0:{i}", _set(dim1, "<Q", 0), tinfo)
        yield Case(f"tensor-dim-negative:{i}", _set(dim1, "<Q", 2**64 - 1), tinfo)
        yield Case(f"tensor-dim-2^62:{i}", _set(dim1, "<Q", 2**62), tinfo)
        yield Case(f"tensor-dim-doubled:{i}", _set(dim1, "<Q", lay.tensors[i].dims[1] * 2), tinfo)
        yield Case(f"tensor-row-not-whole-blocks:{i}", _set(dim0, "<Q", lay.tensors[i].dims[0] + 1), tinfo)
    for i in rng.sample(inner, 3):
        for ttype in (4, 31, 99, 0xFFFF_FFFF):
            yield Case(f"tensor-type-{ttype}:{i}", _set(lambda lay, i=i: lay.tensors[i].type_at, "<I", ttype), tinfo)
    quantized = [i for i in inner if lay.tensors[i].ttype not in (0, 1)]
    for i in rng.sample(quantized, 2):
        yield Case(f"tensor-type-to-f32:{i}", _set(lambda lay, i=i: lay.tensors[i].type_at, "<I", 0), tinfo)
    for i in rng.sample(inner, 3):
        at = lambda lay, i=i: lay.tensors[i].offset_at  # noqa: E731
        off = struct.unpack_from("<Q", lay.head, lay.tensors[i].offset_at)[0]
        yield Case(f"tensor-offset-misaligned:{i}", _set(at, "<Q", off + 1), tinfo)
        yield Case(f"tensor-offset-past-end:{i}", _set(at, "<Q", lay.size), tinfo)
        yield Case(f"tensor-offset-huge:{i}", _set(at, "<Q", 2**63), tinfo)
    yield Case("tensor-last-past-end", _set(lambda lay: lay.tensors[-1].offset_at, "<Q", lay.size), tinfo)
    same = [(a, b) for a, b in zip(lay.tensors, lay.tensors[1:]) if len(a.name) == len(b.name)]
    a, b = same[0]
    yield Case("tensor-duplicate-name", lambda lay, a=a, b=b: _patch(lay, b.start + 8, a.name.encode()), tinfo)

    # 6. keys llama.cpp trusts: rebuilt metadata with one key made wrong
    u32 = lambda v: struct.pack("<I", v)  # noqa: E731
    for value, ident in ((0, "0"), (3, "3"), (48, "48")):
        yield Case(f"alignment-{ident}", _rebuilt(add=(enc_kv("general.alignment", U32, u32(value)),)), meta)
    yield Case("alignment-as-u64", _rebuilt(add=(enc_kv("general.alignment", U64, struct.pack("<Q", 32)),)), meta)
    yield Case("alignment-as-text", _rebuilt(add=(enc_kv("general.alignment", STRING, enc_str("32")),)), meta)
    n_vocab = struct.unpack_from("<Q", lay.head, lay.kvs["tokenizer.ggml.tokens"].value_at + 4)[0]
    arr = lambda etype, n, body: struct.pack("<IQ", etype, n) + body  # noqa: E731
    yield Case(
        "token-types-short",
        _rebuilt(
            replace={
                "tokenizer.ggml.token_type": enc_kv(
                    "tokenizer.ggml.token_type", ARRAY, arr(I32, n_vocab - 7, b"\1\0\0\0" * (n_vocab - 7))
                )
            }
        ),
        meta,
    )
    yield Case(
        "token-types-as-bytes",
        _rebuilt(
            replace={
                "tokenizer.ggml.token_type": enc_kv(
                    "tokenizer.ggml.token_type", ARRAY, arr(U8, n_vocab, b"\1" * n_vocab)
                )
            }
        ),
        meta,
    )
    yield Case(
        "token-scores-short", _rebuilt(add=(enc_kv("tokenizer.ggml.scores", ARRAY, arr(F32, 10, b"\0" * 40)),)), meta
    )
    yield Case(
        "tokens-as-one-string",
        _rebuilt(replace={"tokenizer.ggml.tokens": enc_kv("tokenizer.ggml.tokens", STRING, enc_str("hello"))}),
        meta,
    )
    yield Case(
        "merges-as-numbers",
        _rebuilt(replace={"tokenizer.ggml.merges": enc_kv("tokenizer.ggml.merges", ARRAY, arr(I32, 3, b"\0" * 12))}),
        meta,
    )
    yield Case(
        "chat-template-as-number",
        _rebuilt(replace={"tokenizer.chat_template": enc_kv("tokenizer.chat_template", U32, u32(7))}),
        meta,
    )
    yield Case(
        "chat-template-not-utf8",
        _rebuilt(
            replace={
                "tokenizer.chat_template": enc_kv("tokenizer.chat_template", STRING, enc_str(b"{{ messages }}\xff\xfe"))
            }
        ),
        meta,
    )
    yield Case("nested-array-key", _rebuilt(add=(enc_kv("hostile.nested", ARRAY, arr(ARRAY, 1, b"")),)), meta)
    yield Case("architecture-missing", _rebuilt(drop=("general.architecture",)), _codes("missing_architecture"))
    yield Case(
        "architecture-empty",
        _rebuilt(replace={"general.architecture": enc_kv("general.architecture", STRING, enc_str(""))}),
        _codes("missing_architecture"),
    )
    yield Case(
        "architecture-as-number",
        _rebuilt(replace={"general.architecture": enc_kv("general.architecture", U32, u32(1))}),
        _codes("missing_architecture"),
    )

    # 7. values llama.cpp asserts on (each of these aborted the engine process before the check)
    def number(key: str, fmt: str, value: float) -> Callable[[Layout], tuple[bytes, int]]:
        return lambda lay: _patch(lay, lay.kvs[key].value_at, struct.pack(fmt, value))

    for layers in (0, 513, 300_000):
        yield Case(f"block-count-{layers}", number("llama.block_count", "<I", layers), meta)
    for experts, used in ((0, 2), (4, 0), (4, 8)):
        yield Case(
            f"experts-{experts}-use-{used}",
            _rebuilt(
                add=(enc_kv("llama.expert_count", U32, u32(experts)), enc_kv("llama.expert_used_count", U32, u32(used)))
            ),
            meta,
        )
    for eps in (-1.0, float("nan")):
        yield Case(f"rms-epsilon-{eps}", number("llama.attention.layer_norm_rms_epsilon", "<f", eps), meta)
    yield Case("context-length-2^32-1", number("llama.context_length", "<I", 2**32 - 1), meta)
    yield Case(
        "rope-scaling-unknown", _rebuilt(add=(enc_kv("llama.rope.scaling.type", STRING, enc_str("bogus")),)), meta
    )
    yield Case(
        "vocabulary-repeats-a-token",
        _rebuilt(
            drop=("tokenizer.ggml.token_type",),
            replace={"tokenizer.ggml.tokens": enc_kv("tokenizer.ggml.tokens", ARRAY, arr(STRING, 3, enc_str("a") * 3))},
        ),
        meta,
    )
    yield Case(
        "no-tokenizer",
        _rebuilt(replace={"tokenizer.ggml.model": enc_kv("tokenizer.ggml.model", STRING, enc_str("none"))}),
        _codes("no_tokenizer"),
    )

    # 8. random byte damage anywhere in the metadata: a flipped byte inside a token's text
    # is still a valid file, so these may load
    for _ in range(20):
        at = rng.randrange(24, lay.meta_end)
        bit = 1 << rng.randrange(8)
        yield Case(
            f"bit-flip-{at}-{bit}", lambda lay, at=at, bit=bit: _patch(lay, at, bytes([lay.head[at] ^ bit])), None
        )
