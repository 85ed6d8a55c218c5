"""Which embedding model a data folder's documents use, and the one place every front-end loads it.

Owns: the choice, kept in `<data dir>/documents.json` (`{"embedding_model": ID}`: a catalog entry
of kind "embedding", downloaded like any model; no file or no key: the built-in all-MiniLM-L6-v2,
which works offline), resolving it to a file, and `DocumentEmbedder`: the loaded model with the
catalog's task prefixes put before passages and questions (nomic-embed-text wants "search_document:
" and "search_query: ", BGE an instruction before a question; without them its retrieval is worse).

Every vector in the store names the model that made it (doc_file.model), and search uses only the
chosen model's vectors: `choose` queues every file embedded by another model to be embedded again
(its passages and full text stay: search by words goes on meanwhile).

Must not: import Qt or llama.cpp itself (engine.embedder and engine.embed_process run the model),
or download anything (a chosen model that is not downloaded is an error that says how to get it).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.core.errors import InputError
from engine.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from app.core.models.library import ModelLibrary
    from engine.embedder import EmbeddedBatch

__all__ = [
    "BUILT_IN",
    "DocumentEmbedder",
    "EmbeddingChoice",
    "catalog_choice",
    "choice_stamp",
    "chosen_embedding",
    "open_embedder",
    "save_choice",
]

BUILT_IN = "built-in"  # what `hearth docs model` calls the default
_FILE = "documents.json"


@dataclass(frozen=True, slots=True)
class EmbeddingChoice:
    """The embedding model of a data folder's documents. `model_id` None: the built-in one."""

    model_id: str | None
    label: str
    path: Path | None  # None until resolved (the built-in file is made on first use)
    query_prefix: str = ""
    document_prefix: str = ""


class _Loaded(Protocol):
    model_name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...

    def embed_batches(self, texts: Sequence[str]) -> Iterator[EmbeddedBatch]: ...

    def close(self) -> None: ...


class DocumentEmbedder:
    """A loaded embedding model as the documents use it: `embed` for passages, `embed_query` for a
    question, each with the model's own prefix; `embed_batches` as given (the server's
    /v1/embeddings: a client adds its own prefixes). `model_name` is what the store records with
    each vector: the catalog id (one file with one pair of prefixes), or for the built-in model
    its own name, as stores indexed before there was a choice recorded it."""

    def __init__(self, inner: _Loaded, choice: EmbeddingChoice) -> None:
        self.inner = inner
        self.choice = choice
        self.model_name = choice.model_id or inner.model_name
        self.dim = inner.dim

    def embed_batches(self, texts: Sequence[str]) -> Iterator[EmbeddedBatch]:
        return self.inner.embed_batches(texts)

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        prefix = self.choice.document_prefix
        return self.inner.embed([prefix + t for t in texts] if prefix else texts)

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.inner.embed([self.choice.query_prefix + text])[0]
        return vector

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> DocumentEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(data_dir: Path) -> str | None:
    try:
        raw = json.loads((data_dir / _FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ModelLoadError(
            "bad_settings",
            f"{data_dir / _FILE} cannot be read ({e}): choose the embedding model again with "
            "`hearth docs model ID` (or delete the file to use the built-in one).",
        ) from e
    model = raw.get("embedding_model") if isinstance(raw, dict) else None
    return model if isinstance(model, str) and model else None


def catalog_choice(model_id: str, library: ModelLibrary) -> EmbeddingChoice:
    """The catalog's embedding model `model_id` (path None: not downloaded); InputError naming
    the embedding models when it is not one."""
    models = {m.id: m for m in library.embedding_models()}
    model = models.get(model_id)
    if model is None or model.entry is None:
        known = ", ".join(sorted(models)) or "none"
        raise InputError(
            "unknown_model",
            f"There is no embedding model {model_id!r}. Embedding models: {BUILT_IN}, {known}.",
        )
    return EmbeddingChoice(
        model.id,
        model.name,
        model.path if model.installed else None,
        model.entry.query_prefix,
        model.entry.document_prefix,
    )


def _built_in() -> EmbeddingChoice:
    from app.core.documents.embedding_model import EMBEDDING_MODEL_NAME

    return EmbeddingChoice(None, f"{EMBEDDING_MODEL_NAME} (built in)", None)


def choice_stamp(data_dir: Path) -> object:
    """Changes when the data folder's choice does (another process ran `hearth docs model`)."""
    try:
        st = (data_dir / _FILE).stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def chosen_embedding(data_dir: Path, library: ModelLibrary | None = None) -> EmbeddingChoice:
    """The data folder's embedding model (path None: the built-in one, or a chosen one that is not
    downloaded; `open_embedder` says which)."""
    model_id = _read(data_dir)
    if model_id is None:
        return _built_in()
    if library is None:
        from app.core.models.library import ModelLibrary

        library = ModelLibrary(data_dir)
    return catalog_choice(model_id, library)


def save_choice(data_dir: Path, model_id: str | None, library: ModelLibrary) -> EmbeddingChoice:
    """Make `model_id` (None or BUILT_IN: the built-in one) the data folder's embedding model;
    InputError for an id that is not an embedding model in the catalog. Written atomically."""
    model_id = None if model_id in (None, BUILT_IN) else model_id
    choice = _built_in() if model_id is None else catalog_choice(model_id, library)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".documents-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"embedding_model": model_id} if model_id else {}, f)
        os.replace(tmp, data_dir / _FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return choice


def open_embedder(
    data_dir: Path, *, in_child: bool = False, n_threads: int | None = None, library: ModelLibrary | None = None
) -> DocumentEmbedder:
    """Load the data folder's embedding model: in this process (the CLI, the server's embedding
    thread, the indexer), or in a child process (`in_child`: the window loads no native code).
    Raises a HearthError a person can act on when it cannot load."""
    from app.core.documents.embedding_model import default_embedding_model

    choice = chosen_embedding(data_dir, library)
    path = choice.path
    if choice.model_id is None:
        path = default_embedding_model()
        choice = EmbeddingChoice(None, choice.label, path)
    elif path is None:
        raise ModelLoadError(
            "not_installed",
            f"The documents' embedding model {choice.label} is not downloaded: run "
            f"`hearth models pull {choice.model_id}`, or go back to the built-in one with "
            f"`hearth docs model {BUILT_IN}`.",
        )
    inner: Any
    if in_child:
        from engine.embed_process import EmbedderProcess

        inner = EmbedderProcess(path, n_threads=n_threads)
    else:
        from engine.embedder import Embedder

        inner = Embedder(path, n_threads=n_threads)
    return DocumentEmbedder(inner, choice)
