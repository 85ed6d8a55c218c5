"""Embedding models in the library: listed and downloadable like any model, marked as embedding
models, and never taken where a chat model is wanted (by id or by their file's path)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import LibraryError
from app.core.models import ModelLibrary, load_catalog
from app.core.models.rows import ModelStatus, details_for, row_for

CATALOG = """[[model]]
id = "chat-q4"
name = "Chat (Q4)"
repo = "org/chat-GGUF"
file = "chat-q4.gguf"
sha256 = "server"
size_bytes = 100
parameters = 100
quantisation = "Q4_K_M"
context_length = 4096
license = "MIT"
recommended_memory_gb = 1

[[model]]
id = "embed-q8"
name = "Embed (Q8_0)"
kind = "embedding"
repo = "org/embed-GGUF"
file = "embed-q8.gguf"
sha256 = "server"
size_bytes = 100
parameters = 100
quantisation = "Q8_0"
context_length = 512
dimensions = 384
license = "MIT"
recommended_memory_gb = 0.5
query_prefix = "query: "
notes = "Finds passages."
"""


@pytest.fixture
def library(tmp_path: Path) -> ModelLibrary:
    toml = tmp_path / "models.toml"
    toml.write_text(CATALOG, encoding="utf-8")
    return ModelLibrary(tmp_path / "data", catalog=load_catalog(toml))


def install(library: ModelLibrary, file: str) -> Path:
    library.models_dir.mkdir(parents=True, exist_ok=True)
    path = library.models_dir / file
    path.write_bytes(b"GGUF")
    return path


def test_embedding_models_are_the_catalogs_embedding_entries_installed_or_not(library: ModelLibrary) -> None:
    assert [(m.id, m.kind) for m in library.models()] == [("chat-q4", "chat"), ("embed-q8", "embedding")]
    (embed,) = library.embedding_models()
    assert (embed.id, embed.installed, embed.entry and embed.entry.query_prefix) == ("embed-q8", False, "query: ")
    install(library, "embed-q8.gguf")
    assert [m.installed for m in library.embedding_models()] == [True]


def test_an_embedding_model_is_refused_as_a_chat_model_by_id_or_by_path(library: ModelLibrary) -> None:
    with pytest.raises(LibraryError) as by_id:  # not even downloaded: what it is comes first
        library.resolve("embed-q8")
    assert by_id.value.code == "embedding_model"
    assert by_id.value.message == (
        "embed-q8 is an embedding model, for your documents (hearth docs model embed-q8); "
        "choose a chat model: hearth models list"
    )
    path = install(library, "embed-q8.gguf")
    with pytest.raises(LibraryError, match="embed-q8 is an embedding model"):
        library.resolve(str(path))
    assert library.resolve("embed-q8", kind=None) == path  # `hearth models info` takes any model
    assert library.resolve("embed-q8", kind="embedding") == path
    chat = install(library, "chat-q4.gguf")
    assert library.resolve("chat-q4") == chat and library.resolve(str(chat)) == chat


def test_a_typo_lists_only_the_installed_chat_models(library: ModelLibrary) -> None:
    install(library, "chat-q4.gguf")
    install(library, "embed-q8.gguf")
    with pytest.raises(LibraryError, match=r"Installed models: chat-q4\. Give"):
        library.resolve("chat-q5")


def test_the_model_manager_marks_an_embedding_model_and_offers_no_use(library: ModelLibrary) -> None:
    install(library, "embed-q8.gguf")
    embed = library.get("embed-q8")
    status = ModelStatus(free_bytes=8 * 10**9)
    row = row_for(embed, status)
    assert row.kind == "embedding" and row.facts.startswith("embedding model · ")
    details = details_for(embed, status)
    assert not details.use.enabled and "is an embedding model, for your documents" in details.use.why
    assert "384-dimensional vectors" in details.notes and "hearth docs model embed-q8" in details.notes
    assert details.download.shown is False and details.remove.enabled  # downloaded: removable like any
    chat = library.get("chat-q4")
    assert row_for(chat, status).kind == "chat" and "embedding" not in row_for(chat, status).facts
