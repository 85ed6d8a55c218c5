"""Will a model fit in memory? Answered before loading, from its header (engine.gguf_info).

Owns the memory estimate (weights, KV cache, working buffers), the verdict shown to a
person, how many layers to offload to a GPU, and the two probes of the machine it needs
(free RAM through psutil, free VRAM through `nvidia-smi`). It never loads a model or
native code and never imports llama_cpp: it must answer in milliseconds, in any process.

Measured on the bundled model (SmolLM2-135M Q4_1, 98.4 MB, 30 layers, 3 KV heads of 64)
with the llama.cpp Hearth ships (llama-cpp-python 0.3.36, CPU, flash attention off):
  n_ctx   KV cache (llama.cpp's log)   engine RSS growth after filling the context
  2,048    45.00 MiB                   194 MiB  (weights 94 + KV 45 + other  55)
  4,096    90.00 MiB                   268 MiB  (weights 94 + KV 90 + other  84)
  8,192   180.00 MiB                   416 MiB  (weights 94 + KV 180 + other 142)
`kv_cache_bytes` gives exactly llama.cpp's numbers; the "other" column is what
`overhead_bytes` must cover (see there).
"""

from __future__ import annotations

import enum
import math
import shutil
import subprocess
from dataclasses import dataclass, replace

import psutil

from engine.gguf_info import GGUFInfo

__all__ = [
    "Fit",
    "GpuMemory",
    "Verdict",
    "available_memory",
    "estimate_fit",
    "gpu_memory",
    "kv_cache_bytes",
    "overhead_bytes",
    "parse_nvidia_smi",
]

_MIB = 1 << 20
# llama.cpp rounds the context up to a multiple of 256 cells (llama-context.cpp, GGML_PAD).
_CTX_PAD = 256
# TIGHT above this share of the free memory: the estimate is good to about 10-20%, and
# the window, the OS and the page cache need room too. Past it, mmapped weights get
# evicted and re-read from disk, and replies crawl long before anything fails.
TIGHT_SHARE = 0.8
# Left free on the GPU when choosing layers: the CUDA context alone takes 300-500 MiB,
# and other programs (the desktop compositor, a browser) allocate VRAM while the model runs.
GPU_RESERVE = 512 * _MIB
_OVERHEAD_FLOOR = 256 * _MIB
_OVERHEAD_PER_CTX_EMBD = 32  # bytes per (context token x embedding value); see overhead_bytes
_SMI_QUERY = ["--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"]
_SMI_TIMEOUT_S = 2.0


class Verdict(enum.Enum):
    """How a model's memory need compares with what the machine has free."""

    FITS = "fits"
    """Needs at most TIGHT_SHARE of the free memory."""
    TIGHT = "tight"
    """Fits, with little room left: it may be slow, or fail if other programs grow."""
    TOO_BIG = "too_big"
    """Needs more than is free: loading would fail or swap."""


@dataclass(frozen=True, slots=True)
class GpuMemory:
    """The first NVIDIA GPU, as nvidia-smi reports it."""

    name: str
    total_bytes: int
    free_bytes: int


@dataclass(frozen=True, slots=True)
class Fit:
    """The memory estimate for one model at one context size, and what it means for a person."""

    n_ctx: int
    weights_bytes: int  # the file size: llama.cpp maps the whole file
    kv_bytes: int
    overhead_bytes: int  # compute buffers, logits, tokenizer, runtime
    needed_bytes: int  # weights + KV + overhead, wherever they live
    available_bytes: int  # free RAM
    verdict: Verdict
    gpu_layers: int  # llama.cpp's n_gpu_layers: 1 is the output layer alone, block_count + 1 is all
    ram_bytes: int  # the part of needed_bytes that stays in RAM
    vram_bytes: int  # what the GPU must hold (including its own compute buffers)
    message: str


def kv_cache_bytes(info: GGUFInfo, n_ctx: int, *, bytes_per_value: float = 2) -> int:
    """The KV cache llama.cpp allocates for `n_ctx` tokens; f16 (2 bytes) is its default type."""
    cells = -(-n_ctx // _CTX_PAD) * _CTX_PAD
    per_cell = info.block_count * info.head_count_kv * (info.key_length + info.value_length)
    return int(cells * per_cell * bytes_per_value)


def overhead_bytes(info: GGUFInfo, n_ctx: int) -> int:
    """Memory beyond weights and KV cache: max(256 MiB, 32 bytes x n_ctx x embedding_length).

    Without flash attention, llama.cpp's compute buffer holds one batch's attention scores
    (n_ubatch 512 x n_ctx x heads x 4 bytes: 32 bytes per token x embedding value for heads
    of 64, 16 for heads of 128) or one batch's logits, whichever is larger. Measured on the
    bundled model (module docstring): 55, 84 and 142 MiB at 2,048, 4,096 and 8,192 tokens;
    the formula gives 36, 72 and 144 MiB, and the floor covers the fixed part (tokenizer,
    logits of a 49k vocabulary, Python) with room for bigger vocabularies.
    """
    return max(_OVERHEAD_FLOOR, _OVERHEAD_PER_CTX_EMBD * n_ctx * info.embedding_length)


def available_memory() -> int:
    """RAM that can be used without swapping (free plus reclaimable cache)."""
    return int(psutil.virtual_memory().available)


def gpu_memory() -> GpuMemory | None:
    """The first NVIDIA GPU's memory, or None without nvidia-smi or when it fails or hangs.

    Only the first GPU: Hearth does not split a model across GPUs.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        done = subprocess.run(
            [exe, *_SMI_QUERY],
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):  # a hung driver times out; a broken one fails to start
        return None
    return parse_nvidia_smi(done.stdout) if done.returncode == 0 else None


def parse_nvidia_smi(text: str) -> GpuMemory | None:
    """The first well-formed "name, total MiB, free MiB" line; lines of "[N/A]" and the like are skipped."""
    for line in text.splitlines():
        parts = [p.strip() for p in line.rsplit(",", 2)]  # a GPU's name may itself hold a comma
        if len(parts) != 3 or not parts[0]:
            continue
        try:
            total, free = float(parts[1]), float(parts[2])
        except ValueError:
            continue
        if not (math.isfinite(total) and math.isfinite(free) and total > 0 and free >= 0):
            continue
        name = "".join(c for c in parts[0][:80] if c.isprintable())
        return GpuMemory(name, int(total * _MIB), int(min(free, total) * _MIB))
    return None


def estimate_fit(
    info: GGUFInfo,
    *,
    n_ctx: int,
    available_bytes: int,
    gpu: GpuMemory | None = None,
    gpu_offload_supported: bool = False,
    n_gpu_layers: int | None = None,
) -> Fit:
    """Estimate the memory `info` needs at `n_ctx` tokens against what is free.

    `n_gpu_layers` None chooses automatically (as many whole layers as fit in the GPU's free
    memory); a number is clamped to 0..block_count + 1, and a negative one means all, as in
    llama-cpp-python. Without GPU support in the llama.cpp build, no layer is offloaded.
    """
    if n_ctx < 1:
        raise ValueError(f"n_ctx must be positive, not {n_ctx}")
    weights = info.size_bytes
    kv = kv_cache_bytes(info, n_ctx)
    overhead = overhead_bytes(info, n_ctx)
    needed = weights + kv + overhead
    kv_per_layer = kv // info.block_count if info.block_count else 0
    layers = _gpu_layers(info, kv_per_layer, overhead, gpu, gpu_offload_supported, n_gpu_layers)
    # llama.cpp puts layers n_layer + 1 - n_gpu_layers .. n_layer on the GPU, where layer
    # n_layer is the output: the output goes first, then the blocks from the last one down.
    blocks = max(0, layers - 1)
    moved = sum(info.layer_bytes[info.block_count - blocks : info.block_count]) + blocks * kv_per_layer
    # The output layer is costed as all the non-layer tensors (exact when it shares the
    # token embedding, generous otherwise), and stays counted in RAM too: the token
    # embedding never leaves the CPU. The GPU gets its own compute buffers.
    vram = moved + (info.other_bytes + overhead if layers else 0)
    ram = needed - moved
    if ram > available_bytes or (gpu is not None and vram > gpu.free_bytes):
        verdict = Verdict.TOO_BIG
    elif ram > TIGHT_SHARE * available_bytes:
        verdict = Verdict.TIGHT
    else:
        verdict = Verdict.FITS
    fit = Fit(
        n_ctx=n_ctx,
        weights_bytes=weights,
        kv_bytes=kv,
        overhead_bytes=overhead,
        needed_bytes=needed,
        available_bytes=available_bytes,
        verdict=verdict,
        gpu_layers=layers,
        ram_bytes=ram,
        vram_bytes=vram,
        message="",
    )
    return _with_message(fit, info, gpu, gpu_offload_supported)


def _gpu_layers(
    info: GGUFInfo, kv_per_layer: int, overhead: int, gpu: GpuMemory | None, supported: bool, requested: int | None
) -> int:
    all_layers = info.block_count + 1
    if not supported:
        return 0
    if requested is not None:
        return all_layers if requested < 0 else min(requested, all_layers)
    if gpu is None or not info.block_count:
        return 0
    # Whole layers, in llama.cpp's order (estimate_fit): the output layer, then the blocks
    # from the last one down, each with its share of the KV cache. The GPU also holds its
    # compute buffers once anything runs there.
    budget = gpu.free_bytes - GPU_RESERVE - overhead - info.other_bytes
    if budget < 0:
        return 0
    count = 1
    for layer in reversed(info.layer_bytes[: info.block_count]):
        budget -= layer + kv_per_layer
        if budget < 0:
            break
        count += 1
    return count


def _gb(n: int) -> str:
    return "under 0.1 GB" if 0 < n < 50_000_000 else f"{n / 1e9:.1f} GB"


def _with_message(fit: Fit, info: GGUFInfo, gpu: GpuMemory | None, supported: bool) -> Fit:
    parts = (
        f"weights {_gb(fit.weights_bytes)} + context {_gb(fit.kv_bytes)} for {fit.n_ctx:,} tokens"
        f" + working memory {_gb(fit.overhead_bytes)}"
    )
    where = ""
    if fit.gpu_layers:
        name = f"{gpu.name}: " if gpu is not None else ""
        where = f", with {fit.gpu_layers} of {info.block_count + 1} layers on the GPU ({name}{_gb(fit.vram_bytes)})"
    ram, free = _gb(fit.ram_bytes), _gb(fit.available_bytes)
    if fit.verdict is Verdict.TOO_BIG and gpu is not None and fit.vram_bytes > gpu.free_bytes:
        text = (
            f"Too big for the GPU: {fit.gpu_layers} layers need about {_gb(fit.vram_bytes)} but only "
            f"{_gb(gpu.free_bytes)} is free on {gpu.name}. Offload fewer layers or choose a smaller context."
        )
    elif fit.verdict is Verdict.TOO_BIG:
        text = (
            f"Too big: needs about {ram} but only {free} is free ({parts}){where}. "
            "Choose a smaller context or a smaller quantisation."
        )
    elif fit.verdict is Verdict.TIGHT:
        text = (
            f"Tight: needs about {ram} of {free} free ({parts}){where}. It may run slowly while other "
            "programs need memory; a smaller context leaves more room."
        )
    else:
        text = f"Fits: needs about {ram} of {free} free ({parts}){where}."
    if gpu is not None and not supported:
        text += f" The GPU ({gpu.name}) is not used: this build of llama.cpp runs on the CPU only."
    return replace(fit, message=text)
