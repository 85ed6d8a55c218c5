"""Read a GGUF file's metadata and tensor table defensively, without reading the weights.

Owns the byte layout: header, key/value section, tensor descriptions, and the damage that
shows in it (codes `truncated`, `corrupt_metadata`, `corrupt_tensor_info`). What the values
mean to llama.cpp, and whether it can be trusted with them, is engine.gguf_check's business.

Why a hand parser and not `gguf.GGUFReader`: the reader memory-maps the file and builds a
numpy view per field and per array element (about 100,000 for a vocabulary), which takes
4 s or more on the bundled model, and on damaged input it raises bare IndexError or
ValueError from numpy ("index 0 is out of bounds", "cannot reshape array") that say
nothing about the file. Here every length is checked against the bytes left in the file
before it is read, values that are not needed are stepped over without being read, and
memory stays bounded by a 1 MiB read window plus the few values that are kept (scalar
text such as the architecture and the chat template, numeric lists of up to 1,024 values
such as per-layer head counts, and the vocabulary's token set). Reading stops after the
tensor table: on the bundled model that is the first 1.8 MB of 98 MB, checked in about
45 ms, 20 of them spent making sure that the 49,152 vocabulary tokens are distinct.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, NoReturn

from engine.errors import ModelLoadError

__all__ = [
    "ARRAY",
    "FLOAT32",
    "INT32",
    "STRING",
    "TYPE_NAMES",
    "UINT32",
    "GGUFMetadata",
    "TensorInfo",
    "damaged",
    "read_metadata",
    "show",
]

# GGUF value types: fixed-size scalars as (struct format, size); 8 is a string, 9 an array.
_SCALAR_FORMATS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<b", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
STRING, ARRAY, UINT32, INT32, FLOAT32 = 8, 9, 4, 5, 6
TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}

# ggml tensor types: (name, elements per block, bytes per block), as the llama.cpp that
# Hearth ships reports them (ggml_blck_size / ggml_type_size). Numbers missing here were
# removed from ggml, and llama.cpp rejects them too.
_TENSOR_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
    42: ("Q2_0", 64, 18),
}

_HEADER_BYTES = 24
_MAX_KEY_BYTES = 65_535  # the GGUF spec's limit
_MAX_TENSOR_NAME_BYTES = 63  # GGML_MAX_NAME - 1
_MAX_DIMS = 4  # GGML_MAX_DIMS
_MAX_KEPT_STRING = 16 << 20  # scalar text is decoded; real chat templates are tens of KB
_WINDOW = 1 << 20
_MAX_KEPT_LIST = 1024  # covers one value per layer (llama.cpp allows at most 512 layers)
# A length beyond any real model file is damage; a smaller one past the end is a file cut short.
_ABSURD_LENGTH = 1 << 42
_INT64_MAX = (1 << 63) - 1
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_VOCABULARY = "tokenizer.ggml.tokens"


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One entry of the tensor table."""

    name: bytes
    nbytes: int
    offset: int  # from the start of the data section
    elements: int
    type_name: str  # the ggml type: "Q4_1", "F32"


@dataclass(frozen=True, slots=True)
class GGUFMetadata:
    """The key/value section and tensor table of a structurally sound GGUF file."""

    version: int
    scalars: dict[str, tuple[int, int | float]]  # key -> (value type, value)
    strings: dict[str, str]
    arrays: dict[str, tuple[int, int]]  # key -> (element type, count)
    tensors: list[TensorInfo]
    table_end: int  # file offset just after the tensor table
    # The values of short numeric lists (per-layer hyperparameters such as head counts);
    # long ones (token scores) are stepped over.
    lists: dict[str, tuple[int | float, ...]]

    def type_name(self, key: str) -> str | None:
        """How `key` is stored ("uint32", "string", "array of int32"), or None if absent."""
        if key in self.strings:
            return "string"
        if key in self.scalars:
            return TYPE_NAMES[self.scalars[key][0]]
        if key in self.arrays:
            return f"array of {TYPE_NAMES[self.arrays[key][0]]}"
        return None

    def number(self, key: str, vtype: int) -> int | float | None:
        """The value of `key` if it is a scalar of type `vtype`."""
        stored = self.scalars.get(key)
        return stored[1] if stored is not None and stored[0] == vtype else None


def damaged(name: str, code: str, detail: str) -> ModelLoadError:
    """The error for a damaged file, worded for a person."""
    if code == "truncated":
        return ModelLoadError(
            code,
            f"{name} is incomplete or damaged: {detail}. If it was downloaded, "
            "the download probably stopped early; download it again.",
        )
    return ModelLoadError(code, f"{name} is damaged or not a valid model: {detail}.")


def show(raw: bytes | str, limit: int = 60) -> str:
    """A key or tensor name as it may appear in a message: quoted, printable and short."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    text = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return f"'{text}…'" if len(raw) > limit else f"'{text}'"


def read_metadata(f: BinaryIO, size: int, name: str) -> GGUFMetadata:
    """Read everything before the tensor data of an open GGUF file of `size` bytes.

    The header's magic and version are engine.gguf_check's to judge; `name` is the file
    name used in messages. Raises ModelLoadError on damage.
    """
    return _Reader(f, size, name).read()


class _Reader:
    """One pass over the file through a bounded window; `pos` is the file offset."""

    def __init__(self, f: BinaryIO, size: int, name: str) -> None:
        self._f = f
        self._size = size
        self._name = name
        self._buf = b""
        self._base = 0  # file offset of _buf[0]
        self.pos = 0
        self._where = "the header"  # what is being read, for messages
        self._code = "corrupt_metadata"  # the code for an absurd length in this section
        self._lists: dict[str, tuple[int | float, ...]] = {}

    # -- errors -----------------------------------------------------------------------

    def _fail(self, code: str, detail: str) -> NoReturn:
        raise damaged(self._name, code, detail)

    def _past_end(self, n: int, what: str) -> NoReturn:
        """`what`, of `n` bytes, runs past the end of the file."""
        if n > _ABSURD_LENGTH:
            self._fail(self._code, f"{self._where} claims {what}, more than any model file holds")
        self._fail("truncated", f"the file ends at byte {self._size:,}, inside {self._where}")

    # -- reading ----------------------------------------------------------------------

    def _view(self, n: int) -> int:
        """Make bytes [pos, pos+n) available in the window; return their index in it."""
        if self.pos + n > self._size:
            self._past_end(n, f"{n:,} bytes")
        i = self.pos - self._base
        if i + n > len(self._buf):
            self._f.seek(self.pos)
            self._buf = self._f.read(max(n, _WINDOW))
            self._base, i = self.pos, 0
            if len(self._buf) < n:  # the file shrank since it was measured
                self._size = self.pos + len(self._buf)
                self._past_end(n, f"{n:,} bytes")
        return i

    def _unpack(self, fmt: struct.Struct) -> int:
        i = self._view(fmt.size)
        self.pos += fmt.size
        return int(fmt.unpack_from(self._buf, i)[0])

    def _bytes(self, n: int) -> bytes:
        i = self._view(n)
        self.pos += n
        return self._buf[i : i + n]

    def _length(self, limit: int, what: str) -> int:
        """A length field: fail if it is 0 or over `limit` (a name), or runs past the end."""
        n = self._unpack(_U64)
        if n > self._size - self.pos:
            self._past_end(n, f"{what} of {n:,} bytes")
        if n == 0 or n > limit:
            self._fail(self._code, f"{self._where} has {what} of {n:,} bytes")
        return n

    def _strings(self, count: int, distinct: set[bytes] | None = None) -> int:
        """Step over `count` length-prefixed strings; add the non-empty ones to `distinct`, if
        given, and return how many were added. A vocabulary is ~100,000 strings, so the loop
        works on locals and the window.
        """
        unpack = _U64.unpack_from
        size = self._size
        buf, base, pos = self._buf, self._base, self.pos
        window_end = base + len(buf)
        added = 0
        for _ in range(count):
            if pos + 8 > window_end:
                self.pos = pos
                self._view(8)
                buf, base, window_end = self._buf, self._base, self._base + len(self._buf)
            n = unpack(buf, pos - base)[0]
            nxt = pos + 8 + n
            if nxt > size:
                self.pos = pos + 8
                self._past_end(n, f"a string of {n:,} bytes")
            if distinct is not None and n:
                added += 1
                if nxt > window_end:
                    self.pos = pos
                    self._view(8 + n)
                    buf, base, window_end = self._buf, self._base, self._base + len(self._buf)
                distinct.add(buf[pos + 8 - base : nxt - base])
            pos = nxt
        self.pos = pos
        return added

    # -- sections ---------------------------------------------------------------------

    def read(self) -> GGUFMetadata:
        self._view(_HEADER_BYTES)
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", self._buf, 4)
        self.pos = _HEADER_BYTES
        scalars: dict[str, tuple[int, int | float]] = {}
        strings: dict[str, str] = {}
        arrays: dict[str, tuple[int, int]] = {}
        for index in range(n_kv):
            self._key_value(index, scalars, strings, arrays)
        tensors: list[TensorInfo] = []
        names: set[bytes] = set()
        for index in range(n_tensors):
            tensor = self._tensor_info(index)
            if tensor.name in names:
                self._fail("corrupt_tensor_info", f"tensor {show(tensor.name)} appears twice")
            names.add(tensor.name)
            tensors.append(tensor)
        return GGUFMetadata(version, scalars, strings, arrays, tensors, self.pos, self._lists)

    def _array(self, key: str) -> tuple[int, int]:
        """One array value: checked, strings skipped, short numeric lists kept; (type, count)."""
        etype, count = self._unpack(_U32), self._unpack(_U64)
        if etype == STRING:
            if count * 8 > self._size - self.pos:
                self._past_end(count * 8, f"a list of {count:,} strings")
            if key == _VOCABULARY:  # llama.cpp aborts on a repeated token (it renames empty ones)
                distinct: set[bytes] = set()
                repeats = self._strings(count, distinct) - len(distinct)
                if repeats:
                    self._fail(
                        "corrupt_metadata", f"its vocabulary ({show(key)}) lists {repeats:,} tokens more than once"
                    )
            else:
                self._strings(count)
        elif etype in _SCALAR_FORMATS:
            fmt, width = _SCALAR_FORMATS[etype]
            n = count * width
            if self.pos + n > self._size:
                self._past_end(n, f"a list of {count:,} values")
            if count <= _MAX_KEPT_LIST:
                i = self._view(n)
                self._lists[key] = struct.unpack_from(f"<{count}{fmt[1]}", self._buf, i)
            self.pos += n
        else:
            kind = "lists" if etype == ARRAY else f"values of unknown type {etype}"
            self._fail("corrupt_metadata", f"metadata key {show(key)} is a list of {kind}")
        return etype, count

    def _key_value(
        self,
        index: int,
        scalars: dict[str, tuple[int, int | float]],
        strings: dict[str, str],
        arrays: dict[str, tuple[int, int]],
    ) -> None:
        self._where = f"metadata key number {index + 1}"
        raw = self._bytes(self._length(_MAX_KEY_BYTES, "a name"))
        try:
            key = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._fail("corrupt_metadata", f"metadata key {show(raw)} is not valid UTF-8 text")
        self._where = f"metadata key {show(key)}"
        if key in scalars or key in strings or key in arrays:
            self._fail("corrupt_metadata", f"metadata key {show(key)} appears twice")
        vtype = self._unpack(_U32)
        if vtype == ARRAY:
            arrays[key] = self._array(key)
        elif vtype == STRING:
            n = self._unpack(_U64)
            if n > _MAX_KEPT_STRING:
                if n > self._size - self.pos:
                    self._past_end(n, f"a text of {n:,} bytes")
                self._fail("corrupt_metadata", f"metadata key {show(key)} holds {n:,} bytes of text")
            try:
                strings[key] = self._bytes(n).decode("utf-8")
            except UnicodeDecodeError:
                self._fail("corrupt_metadata", f"the text of metadata key {show(key)} is not valid UTF-8")
        elif vtype in _SCALAR_FORMATS:
            fmt, width = _SCALAR_FORMATS[vtype]
            i = self._view(width)
            self.pos += width
            scalars[key] = (vtype, struct.unpack_from(fmt, self._buf, i)[0])
        else:
            self._fail("corrupt_metadata", f"metadata key {show(key)} has unknown value type {vtype}")

    def _tensor_info(self, index: int) -> TensorInfo:
        self._where = f"the description of tensor number {index + 1}"
        self._code = "corrupt_tensor_info"
        raw = self._bytes(self._length(_MAX_TENSOR_NAME_BYTES, "a name"))
        n_dims = self._unpack(_U32)
        if n_dims > _MAX_DIMS:
            self._fail("corrupt_tensor_info", f"tensor {show(raw)} has {n_dims:,} dimensions (at most {_MAX_DIMS})")
        dims = [self._unpack(_U64) for _ in range(n_dims)]
        ttype = self._unpack(_U32)
        offset = self._unpack(_U64)
        elements = 1
        for d in dims:
            elements *= d
        # A zero dimension makes llama.cpp divide by zero while it checks the shape.
        if 0 in dims or elements > _INT64_MAX:
            self._fail("corrupt_tensor_info", f"tensor {show(raw)} has an impossible shape {dims}")
        if ttype not in _TENSOR_TYPES:
            self._fail("corrupt_tensor_info", f"tensor {show(raw)} has unknown data type {ttype}")
        type_name, block, block_bytes = _TENSOR_TYPES[ttype]
        row = dims[0] if dims else 1
        if row % block:
            self._fail(
                "corrupt_tensor_info",
                f"tensor {show(raw)} has rows of {row:,} values, which {type_name} "
                f"cannot hold (it packs {block} values per block)",
            )
        return TensorInfo(raw, elements // block * block_bytes, offset, elements, type_name)
