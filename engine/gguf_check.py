"""Check that a file looks like a GGUF model before handing it to llama.cpp.

A model file is untrusted input. llama.cpp's own loader reports most problems only as
"failed to load model" on stderr; this check gives a person an actionable message that
names the file and the problem. It reads the fixed header only (24 bytes), never weights.
Deeper metadata validation is the loader's job (and a later issue's).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from engine.errors import ModelLoadError

__all__ = ["check_gguf_header"]

_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
# Far above any real model (a 405B model has ~1,100 tensors and a few dozen keys);
# a header claiming more is corrupt or hostile.
_MAX_TENSORS = 1_000_000
_MAX_KV = 100_000


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
            f"{p.name} has an implausible GGUF header ({n_tensors} tensors, {n_kv} metadata keys).",
        )
    return size
