"""Incremental, UTF-8-safe detokenization: constant work per token.

llama-cpp-python's `create_completion(stream=True)` re-detokenizes the whole reply on every
token to find complete characters, so its per-token cost grows with the reply. Here each
token's piece (bytes) is fed to an incremental UTF-8 decoder, which holds back an
incomplete multi-byte sequence until its remaining bytes arrive.

A token's piece never changes for a loaded model, so `TokenPieces` asks llama.cpp for each token
id once: llama-cpp-python's `detokenize([tok])` costs ~30 µs a call (a ctypes buffer, a call, two
copies), a dictionary lookup well under 1 µs (issue 30: the engine's own time per token).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable

__all__ = ["IncrementalDetokenizer", "TokenPieces"]


class IncrementalDetokenizer:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, piece: bytes) -> str:
        """Return the text completed by `piece` (may be '' while a character is split)."""
        return self._decoder.decode(piece)

    def flush(self) -> str:
        """End of stream: an unfinished sequence becomes U+FFFD rather than vanishing."""
        return self._decoder.decode(b"", final=True)


class TokenPieces:
    """Each token's bytes, as `detokenize([tok])` gives them, asked once per token id (at most the
    vocabulary's size: a few MB for 262,144 tokens, and only the tokens answers actually use)."""

    def __init__(self, detokenize: Callable[[list[int]], bytes]) -> None:
        self._detokenize = detokenize
        self._pieces: dict[int, bytes] = {}

    def __call__(self, tok: int) -> bytes:
        piece = self._pieces.get(tok)
        if piece is None:
            piece = self._pieces[tok] = self._detokenize([tok])
        return piece
