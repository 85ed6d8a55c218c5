"""What a person, and the memory-fit estimate, need to know about a GGUF model before it loads.

Owns `GGUFInfo`: the architecture, size, parameter count, quantisation, context length,
attention shape and per-layer byte counts, read from the header, the metadata and the
tensor table in the same single pass that engine.gguf_check validates (a damaged or
hostile file raises the same `ModelLoadError`, naming the file). It never reads the
weights and never loads native code, so it can run in the UI process to describe a model
the moment it is picked. Judging whether the model fits in memory is engine.fit's job.

Hyperparameters are reported, not judged: one that is missing or stored with an unexpected
type reads as unknown (None or 0), and llama.cpp says what is wrong at load time.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from engine.gguf_check import check_gguf_metadata
from engine.gguf_meta import GGUFMetadata

__all__ = ["FILE_TYPES", "GGUFInfo", "format_bytes", "format_params", "read_gguf_info"]

# llama.cpp's `enum llama_ftype` (include/llama.h of the vendored llama.cpp), named as
# quantised files are: LLAMA_FTYPE_MOSTLY_Q4_K_M is "Q4_K_M", LLAMA_FTYPE_ALL_F32 is "F32".
# Gaps are values llama.cpp has removed (4-6, 33-35).
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}
_INTEGER_TYPES = frozenset({0, 1, 2, 3, 4, 5, 10, 11})  # GGUF scalar types holding integers (not bool)
_MAX_LAYERS = 512  # LLAMA_MAX_LAYERS
_LAYER_TENSOR = re.compile(rb"blk\.(\d{1,4})\.")
# Markers of the common chat formats, to say in a word which one a model's template speaks.
_TEMPLATE_STYLES = (
    ("<|im_start|>", "ChatML"),
    ("<|start_header_id|>", "Llama 3"),
    ("[INST]", "Mistral/Llama 2"),
    ("<start_of_turn>", "Gemma"),
    ("<|user|>", "Zephyr/Phi"),
    ("<｜User｜>", "DeepSeek"),
)


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """A checked model file, described from its header. Unknown values are None or 0."""

    path: Path
    file_name: str
    size_bytes: int
    architecture: str
    name: str | None  # general.name
    parameters: int  # sum of the tensors' element counts
    quantisation: str  # "Q4_1", "Q4_K_M", "F16"
    context_length: int | None  # the context the model was trained for
    block_count: int  # transformer layers
    embedding_length: int
    head_count: int
    head_count_kv: int  # the largest per-layer value where the model lists one per layer
    key_length: int  # per head
    value_length: int
    layer_bytes: tuple[int, ...]  # bytes of the `blk.N.*` tensors, per layer N
    other_bytes: int  # token embedding, output and norms: tensors outside the layers
    chat_template: str | None

    def describe(self) -> list[tuple[str, str]]:
        """(label, value) pairs for showing the model to a person, in display order."""
        rows = [("Name", self.name)] if self.name else []
        context = f"{self.context_length:,} tokens" if self.context_length else "unknown"
        rows += [
            ("File", self.file_name),
            ("Architecture", self.architecture),
            ("Parameters", format_params(self.parameters)),
            ("Quantisation", self.quantisation),
            ("Context length", context),
            ("Layers", f"{self.block_count:,}" if self.block_count else "unknown"),
            (
                "Chat template",
                _describe_template(self.chat_template, self.architecture, self.name or "", self.file_name),
            ),
            ("File size", format_bytes(self.size_bytes)),
        ]
        return rows


def read_gguf_info(path: str | os.PathLike[str]) -> GGUFInfo:
    """Check `path` as engine.gguf_check does and describe it; raise ModelLoadError if unsafe."""
    summary, meta = check_gguf_metadata(path)
    arch = summary.architecture
    p = Path(path)
    embedding = _integer(meta, f"{arch}.embedding_length") or 0
    heads = _per_layer_max(meta, f"{arch}.attention.head_count") or 0
    # llama.cpp's defaults: as many KV heads as query heads (no grouped-query attention),
    # and heads that split the embedding evenly.
    heads_kv = _per_layer_max(meta, f"{arch}.attention.head_count_kv")
    head_dim = embedding // heads if heads else 0
    key_length = _integer(meta, f"{arch}.attention.key_length")
    value_length = _integer(meta, f"{arch}.attention.value_length")
    layers, other = _bytes_by_layer(meta)
    block_count = _integer(meta, f"{arch}.block_count") or 0
    if not 0 < block_count <= _MAX_LAYERS:  # gguf_check judges only a uint32 count; this one is unusable
        block_count = len(layers)
    layers += (0,) * (block_count - len(layers))
    return GGUFInfo(
        path=p,
        file_name=p.name,
        size_bytes=summary.size_bytes,
        architecture=arch,
        name=summary.name,
        parameters=sum(t.elements for t in meta.tensors),
        quantisation=_quantisation(meta),
        context_length=_integer(meta, f"{arch}.context_length") or None,
        block_count=block_count,
        embedding_length=embedding,
        head_count=heads,
        head_count_kv=heads if heads_kv is None else heads_kv,
        key_length=head_dim if key_length is None else key_length,
        value_length=head_dim if value_length is None else value_length,
        layer_bytes=layers,
        other_bytes=other,
        chat_template=summary.chat_template,
    )


def format_params(n: int) -> str:
    """A parameter count as people write it: "135M", "1.5B", "7.6B", "70B"."""
    for unit, suffix in ((10**12, "T"), (10**9, "B"), (10**6, "M"), (10**3, "K")):
        if n >= unit * 0.9995:  # so that 999.6M reads "1B", not "1000M"
            value = n / unit
            text = f"{value:.1f}" if value < 9.95 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(n)


def format_bytes(n: int) -> str:
    """A size in decimal units, as file managers show it: "98.4 MB", "4.9 GB"."""
    for unit, suffix in ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "kB")):
        if n >= unit:
            return f"{n / unit:.1f} {suffix}"
    return f"{n} bytes"


def _integer(meta: GGUFMetadata, key: str) -> int | None:
    """A non-negative integer scalar, whatever its integer width; None if absent or not one."""
    stored = meta.scalars.get(key)
    if stored is None or stored[0] not in _INTEGER_TYPES or stored[1] < 0:
        return None
    return int(stored[1])


def _per_layer_max(meta: GGUFMetadata, key: str) -> int | None:
    """A scalar, or the largest value of a per-layer list (some models vary head counts by
    layer; the largest is the safe bound for memory, and 0 marks a layer without attention)."""
    value = _integer(meta, key)
    if value is not None:
        return value
    values = meta.lists.get(key)
    if values is None or meta.arrays[key][0] not in _INTEGER_TYPES:
        return None
    return max((int(v) for v in values if v >= 0), default=None)


def _bytes_by_layer(meta: GGUFMetadata) -> tuple[tuple[int, ...], int]:
    per_layer: dict[int, int] = {}
    other = 0
    for t in meta.tensors:
        m = _LAYER_TENSOR.match(t.name)
        if m is None:
            other += t.nbytes
        else:
            n = int(m.group(1))
            per_layer[n] = per_layer.get(n, 0) + t.nbytes
    count = max(per_layer, default=-1) + 1
    return tuple(per_layer.get(i, 0) for i in range(count)), other


def _quantisation(meta: GGUFMetadata) -> str:
    """`general.file_type` by llama.cpp's name; else the data type holding most of the bytes."""
    file_type = _integer(meta, "general.file_type")
    if file_type in FILE_TYPES:
        return FILE_TYPES[file_type]
    by_type: Counter[str] = Counter()
    for t in meta.tensors:
        by_type[t.type_name] += t.nbytes
    return by_type.most_common(1)[0][0] if by_type else "unknown"


def _describe_template(template: str | None, architecture: str, name: str, file_name: str) -> str:
    if not template:
        from engine.template_choice import TEMPLATE_NAMES, choose_template, looks_like_base_model

        used = choose_template(None, architecture=architecture, chosen=None, file_name=file_name, model_name=name)
        guess = "a guess" if used.name == "chatml" else f"the usual one for {architecture}"
        base = "; looks like a base model (continues text)" if looks_like_base_model(name, file_name) else ""
        return f"none in the file: Hearth uses {TEMPLATE_NAMES[used.name]} ({guess}){base}"
    style = next((f"{name}-style, " for marker, name in _TEMPLATE_STYLES if marker in template), "")
    return f"built in ({style}{len(template):,} chars)"
