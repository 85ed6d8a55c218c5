"""Which of a repo's quantizations fit this machine, before any of them is downloaded.

engine.fit's estimate needs a GGUFInfo: the layer count, attention shape and per-layer sizes.
One header read (app.core.models.hub_header, about 2 MB) gives them for one quantization;
every quantization of a repo shares the architecture, so the KV cache and working memory are
the same for all of them and only the weights differ. So:

    basis "header"  the quantization whose header was read: engine.fit's estimate as it is
    basis "scaled"  the others: that header with its tensor bytes scaled to the file's size
    basis "size"    no header read: the file size plus 20% and 256 MiB (context and buffers);
                    rough, and said to be

The recommendation (`recommend`): the largest quantization that FITS (not TIGHT), F32/F16/BF16
only when no quantized file fits (they cost twice the memory for a difference few can see);
else the smallest that is TIGHT; else none. No network, no Qt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from app.core.models.hub_names import HubQuant
from engine.fit import TIGHT_SHARE, GpuMemory, Verdict, estimate_fit
from engine.gguf_info import GGUFInfo

__all__ = ["FitBasis", "QuantFit", "fit_quants", "recommend"]

FitBasis = Literal["header", "scaled", "size"]
_UNQUANTIZED = ("F32", "F16", "BF16")
_SIZE_FACTOR = 1.2
_SIZE_EXTRA = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class QuantFit:
    """One quantization and whether it fits, with how that was estimated."""

    quant: HubQuant
    verdict: Verdict
    needed_bytes: int  # RAM (the part that stays off the GPU)
    basis: FitBasis
    message: str
    gpu_layers: int = 0


def fit_quants(
    quants: list[HubQuant] | tuple[HubQuant, ...],
    *,
    n_ctx: int,
    available_bytes: int,
    header: GGUFInfo | None = None,
    header_quant: str | None = None,
    gpu: GpuMemory | None = None,
    gpu_offload_supported: bool = False,
) -> list[QuantFit]:
    """A verdict for each of `quants`, in their order (see the module for the bases)."""
    out = []
    for q in quants:
        if header is None or not header.size_bytes:
            out.append(_by_size(q, available_bytes))
            continue
        info, basis = (header, "header") if q.quant == header_quant else (_scaled(header, q.size), "scaled")
        fit = estimate_fit(
            info, n_ctx=n_ctx, available_bytes=available_bytes, gpu=gpu, gpu_offload_supported=gpu_offload_supported
        )
        message = fit.message if basis == "header" else f"{fit.message} (scaled from the {header_quant} header)"
        out.append(QuantFit(q, fit.verdict, fit.ram_bytes, basis, message, fit.gpu_layers))  # type: ignore[arg-type]
    return out


def recommend(fits: list[QuantFit]) -> QuantFit | None:
    """The quantization to suggest (the module's rule), or None when none fits."""
    fitting = [f for f in fits if f.verdict is Verdict.FITS]
    quantized = [f for f in fitting if f.quant.quant.upper() not in _UNQUANTIZED]
    pool = quantized or fitting
    if pool:
        return max(pool, key=lambda f: f.quant.size)
    tight = [f for f in fits if f.verdict is Verdict.TIGHT]
    return min(tight, key=lambda f: f.quant.size) if tight else None


def _scaled(info: GGUFInfo, size: int) -> GGUFInfo:
    ratio = size / info.size_bytes
    return dataclasses.replace(
        info,
        size_bytes=size,
        layer_bytes=tuple(int(b * ratio) for b in info.layer_bytes),
        other_bytes=int(info.other_bytes * ratio),
    )


def _by_size(q: HubQuant, available: int) -> QuantFit:
    needed = int(q.size * _SIZE_FACTOR) + _SIZE_EXTRA
    if needed > available:
        verdict = Verdict.TOO_BIG
    elif needed > TIGHT_SHARE * available:
        verdict = Verdict.TIGHT
    else:
        verdict = Verdict.FITS
    word = {Verdict.FITS: "Fits", Verdict.TIGHT: "Tight", Verdict.TOO_BIG: "Too big"}[verdict]
    text = f"{word}: about {needed / 1e9:.1f} GB of {available / 1e9:.1f} GB free (a rough guess from the file size)."
    return QuantFit(q, verdict, needed, "size", text)
