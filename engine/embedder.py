"""The embedding model, run by llama.cpp: texts in, unit vectors out.

`Embedder` loads a GGUF embedding model (one with pooling: MEAN, CLS or LAST; the offline
default is all-MiniLM-L6-v2, app.core.documents.embedding_model) in embedding mode and turns
texts into L2-normalized float32 vectors. Like llama-cpp-python's own `Llama.embed`, it packs
several texts into each llama_decode, one sequence id per text, until the batch (the context)
is full; unlike it, the batch is filled with NumPy instead of a Python loop per token, vectors
are read without going through Python lists, and a text longer than the model's context is
cut and keeps its closing token ([SEP]), as sentence-transformers truncates.

Interruptible: `embed_batches` yields after each llama_decode, so the caller (the indexing job)
decides between batches whether to go on or to let a person's message have the CPU; a batch of
512 tokens takes tens of milliseconds with MiniLM on one core. `set_threads` changes the thread
count between batches.

Must not: import app or store (engine layer), or be used from more than one thread at a time.
Imported only where native code may be loaded (an engine or an indexing process).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from engine.errors import EngineError, ModelLoadError
from engine.gguf_info import read_gguf_info
from engine.threads import default_threads

__all__ = ["EmbeddedBatch", "Embedder"]

Vectors = npt.NDArray[np.float32]

# A text is cut to this many characters per context token before it is tokenized: a WordPiece
# or BPE token covers at least one character, so nothing within the context is lost unless the
# text is mostly spaces, and a huge text is never tokenized whole.
_CHARS_PER_TOKEN_BOUND = 32
# Tokens per llama_decode unless asked: a whole MiniLM context, two ~1,000-character passages.
# More costs, since attention spans the whole batch (masked per text): 1,024 embedded 4.3
# passages/s against 6.4 for 512 (MiniLM, one thread, 1,000-character passages).
_DEFAULT_BATCH = 512
# llama.cpp's pooling types (llama.h): the ones that give one vector per sequence.
_POOLING_NAMES = {1: "mean", 2: "cls", 3: "last"}


@dataclass(frozen=True, slots=True)
class EmbeddedBatch:
    """The vectors of texts[first : first + len(vectors)], from one llama_decode."""

    first: int
    vectors: Vectors  # (n, dim), float32, each of length 1
    tokens: int  # tokens decoded, [CLS] and [SEP] included
    truncated: int  # texts of this batch cut to the model's context


class _Batch:
    """A llama_batch whose arrays NumPy owns, so that a text's tokens go in with one slice
    assignment (llama-cpp-python's LlamaBatch sets five fields per token in Python)."""

    def __init__(self, llama_cpp: Any, capacity: int) -> None:
        self.token = np.zeros(capacity, dtype=np.int32)
        self.pos = np.zeros(capacity, dtype=np.int32)
        self.seq = np.zeros(capacity, dtype=np.int32)
        self.n_seq_id = np.ones(capacity, dtype=np.int32)
        self.logits = np.ones(capacity, dtype=np.int8)  # embeddings need every token as an output
        i32 = ctypes.POINTER(ctypes.c_int32)
        base = self.seq.ctypes.data
        self._seq_ptrs = (i32 * capacity)(*(ctypes.cast(base + 4 * i, i32) for i in range(capacity)))
        self.batch = llama_cpp.llama_batch(
            n_tokens=0,
            token=self.token.ctypes.data_as(i32),
            embd=None,
            pos=self.pos.ctypes.data_as(i32),
            n_seq_id=self.n_seq_id.ctypes.data_as(i32),
            seq_id=ctypes.cast(self._seq_ptrs, ctypes.POINTER(i32)),
            logits=self.logits.ctypes.data_as(ctypes.POINTER(ctypes.c_int8)),
        )

    def fill(self, texts: Sequence[Sequence[int]]) -> int:
        at = 0
        for seq_id, tokens in enumerate(texts):
            n = len(tokens)
            self.token[at : at + n] = tokens
            self.pos[at : at + n] = np.arange(n, dtype=np.int32)
            self.seq[at : at + n] = seq_id
            at += n
        self.batch.n_tokens = at
        return at


class Embedder:
    """One GGUF embedding model, loaded in this process. Not thread-safe.

    `n_threads`: llama.cpp's threads (default: physical cores less one, for the UI).
    `n_batch`: tokens per llama_decode (default 512, or the training context if smaller).
    A text longer than the training context or n_batch (`max_tokens`) is cut: an encoder sees
    each text whole in one decode."""

    def __init__(self, path: str | Path, *, n_threads: int | None = None, n_batch: int | None = None) -> None:
        self.path = Path(path)
        name = self.path.name
        info = read_gguf_info(self.path)  # untrusted file: header and metadata checked before llama.cpp
        import llama_cpp

        from engine.backends import load_backends
        from engine.llama_templates import disable_llama_cpp_templates

        load_backends(llama_cpp)  # Hearth's llama.cpp has no CPU code until its modules are loaded
        disable_llama_cpp_templates(llama_cpp)
        self._lib: Any = llama_cpp
        threads = n_threads or default_threads()
        trained = info.context_length or _DEFAULT_BATCH
        size = max(1, n_batch or min(trained, _DEFAULT_BATCH))
        try:
            self._llm: Any = llama_cpp.Llama(
                str(self.path),
                embedding=True,
                n_ctx=size,
                n_batch=size,
                n_ubatch=size,  # a non-causal model must see each text whole in one micro-batch
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=0,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelLoadError("load_failed", f"llama.cpp could not load {name}: {e}") from e
        llm = self._llm
        pooling = int(llm.pooling_type())
        if pooling not in _POOLING_NAMES:
            llm.close()
            raise ModelLoadError(
                "not_embedding_model",
                f"{name} is not an embedding model (it pools no vector per text); choose an embedding "
                f"model such as all-MiniLM-L6-v2.",
            )
        self.pooling = _POOLING_NAMES[pooling]
        self.dim = int(llm.n_embd())
        self.model_name = str(llm.metadata.get("general.name") or info.name or self.path.stem)
        self.n_batch = int(llm.n_batch)
        self.max_tokens = min(self.n_batch, trained)  # positions past training are meaningless
        self._max_seqs = int(llm.context_params.n_seq_max)
        # What the tokenizer puts around every text ([CLS] … [SEP] for BERT): a cut text keeps its tail.
        around = self._tokenize("")
        head = 1 if around and around[0] == llm.token_bos() else 0
        self._tail = list(around[head:])
        self._batch = _Batch(llama_cpp, self.n_batch)
        self._threads = threads
        self.last_truncated = 0  # texts cut to max_tokens in the last embed() call

    # -- public -------------------------------------------------------------------------

    def set_threads(self, n_threads: int) -> None:
        """Threads for the next batches (the caller yields cores to a chat by lowering it)."""
        self._threads = max(1, n_threads)
        self._lib.llama_set_n_threads(self._llm.ctx, self._threads, self._threads)

    def tokens(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's tokens as they will be decoded: with [CLS]/[SEP], cut to max_tokens."""
        return [self._fit(self._tokenize(t))[0] for t in texts]

    def embed_batches(self, texts: Sequence[str]) -> Iterator[EmbeddedBatch]:
        """The texts' vectors, one llama_decode at a time, in order. Stop iterating to stop."""
        pending: list[list[int]] = []
        first = cut = used = 0
        for i, text in enumerate(texts):
            tokens, was_cut = self._fit(self._tokenize(text))
            if pending and (used + len(tokens) > self.n_batch or len(pending) >= self._max_seqs):
                yield self._decode(first, pending, cut)
                pending, first, cut, used = [], i, 0, 0
            pending.append(tokens)
            used += len(tokens)
            cut += was_cut
        if pending:
            yield self._decode(first, pending, cut)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dim) float32, each row of length 1; `last_truncated` says how many were cut."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        self.last_truncated = 0
        for b in self.embed_batches(texts):
            out[b.first : b.first + len(b.vectors)] = b.vectors
            self.last_truncated += b.truncated
        return out

    def close(self) -> None:
        self._llm.close()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- inside -------------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[int]:
        data = text[: self.max_tokens * _CHARS_PER_TOKEN_BOUND].encode("utf-8", "replace")
        # special=False: a document's "[SEP]" or "<|im_start|>" is text, never a control token.
        return list(self._llm.tokenize(data, add_bos=True, special=False))

    def _fit(self, tokens: list[int]) -> tuple[list[int], bool]:
        if len(tokens) <= self.max_tokens:
            return tokens, False
        keep = self.max_tokens - len(self._tail)
        return tokens[:keep] + self._tail, True

    def _decode(self, first: int, texts: list[list[int]], cut: int) -> EmbeddedBatch:
        lib, ctx = self._lib, self._llm.ctx
        n = self._batch.fill(texts)
        memory = lib.llama_get_memory(ctx)
        if memory:  # an encoder has no KV cache; a causal embedding model (LAST pooling) has one
            lib.llama_memory_clear(memory, True)
        rc = lib.llama_decode(ctx, self._batch.batch)
        if rc != 0:
            raise EngineError("embed_failed", f"llama.cpp could not embed with {self.path.name} (llama_decode: {rc})")
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        for seq_id in range(len(texts)):
            ptr = lib.llama_get_embeddings_seq(ctx, seq_id)
            if not ptr:
                raise EngineError("embed_failed", f"llama.cpp gave no vector for a text with {self.path.name}")
            vectors[seq_id] = np.ctypeslib.as_array(ptr, shape=(self.dim,))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.maximum(norms, 1e-12)
        return EmbeddedBatch(first=first, vectors=vectors, tokens=n, truncated=cut)
