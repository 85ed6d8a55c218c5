"""Types of the native module engine/_pick.c (built by `pip install`; engine/sampler.py falls back
to NumPy where it was not)."""

from collections.abc import Buffer

def candidates(logits: Buffer, m: int, ring: Buffer, ring_n: int, out: Buffer, extra: Buffer, scratch: Buffer) -> int:
    """See engine/_pick.c: the candidate count written to `out`, -1 for a NaN, -2 for nothing to pick."""
