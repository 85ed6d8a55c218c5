"""Incremental, UTF-8-safe detokenization: constant work per token.

llama-cpp-python's `create_completion(stream=True)` re-detokenizes the whole reply on every
token to find complete characters, so its per-token cost grows with the reply. Here each
token's piece (bytes) is fed to an incremental UTF-8 decoder, which holds back an
incomplete multi-byte sequence until its remaining bytes arrive.
"""

from __future__ import annotations

import codecs

__all__ = ["IncrementalDetokenizer"]


class IncrementalDetokenizer:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, piece: bytes) -> str:
        """Return the text completed by `piece` (may be '' while a character is split)."""
        return self._decoder.decode(piece)

    def flush(self) -> str:
        """End of stream: an unfinished sequence becomes U+FFFD rather than vanishing."""
        return self._decoder.decode(b"", final=True)
