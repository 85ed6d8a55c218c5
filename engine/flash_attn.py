"""Flash attention "automatic", which llama-cpp-python cannot ask for.

llama.cpp's own default is automatic: on where every layer's attention can run fused on the
device that holds it (so on the CPU and on most GPUs), off where it cannot. It saves
working memory and, on this CPU, about 10% of the time per decoded token of SmolLM2 and 6% of
Gemma 3 270M's (thread CPU time per token at 128 tokens of depth; llama-bench measures with it).
Hearth's default is off (app/core/settings.py says why); a person may choose automatic.
llama-cpp-python's `Llama(flash_attn=...)` maps only True to on and False to off, so
"automatic" is asked for by having its off mean automatic for the one constructor call.

Owns: that mapping. Must not: be used outside the engine process's model load (it changes a
llama-cpp-python constant for the duration of the call, and loads run one at a time there).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

__all__ = ["flash_attention"]


@contextmanager
def flash_attention(llama_cpp: ModuleType, choice: bool | None) -> Iterator[bool]:
    """Yields the `flash_attn` argument for `Llama()`; with `choice` None, llama.cpp decides."""
    if choice is not None:
        yield choice
        return
    module = llama_cpp.llama_cpp  # the module llama_cpp.Llama reads the constant from
    off = module.LLAMA_FLASH_ATTN_TYPE_DISABLED
    module.LLAMA_FLASH_ATTN_TYPE_DISABLED = module.LLAMA_FLASH_ATTN_TYPE_AUTO
    try:
        yield False
    finally:
        module.LLAMA_FLASH_ATTN_TYPE_DISABLED = off
