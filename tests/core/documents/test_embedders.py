"""The documents' embedding model: the built-in one by default, a catalog one when chosen (with its
task prefixes), one loader for every front-end, and every file embedded again by a new choice."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.core.documents.embedders import BUILT_IN, chosen_embedding, open_embedder, save_choice
from app.core.documents.embedding_model import EMBEDDING_MODEL_NAME, EMBEDDING_SHA256, default_embedding_model
from app.core.documents.extract import Extractor
from app.core.documents.indexer import Indexer
from app.core.documents.search import DocumentSearch
from app.core.documents.vectors import VectorIndex
from app.core.errors import InputError
from app.core.models.catalog import load_catalog
from app.core.models.library import ModelLibrary
from engine.errors import ModelLoadError
from store import Store

_ENTRY = """
[[model]]
id = "minilm-asked"
name = "MiniLM with task prefixes"
kind = "embedding"
repo = "test/minilm"
file = "minilm-asked.gguf"
sha256 = "{sha}"
size_bytes = {size}
parameters = 22700000
quantisation = "F16"
context_length = 512
dimensions = 384
license = "Apache-2.0"
recommended_memory_gb = 0.5
query_prefix = "search_query: "
document_prefix = "search_document: "
"""


def stand_in_entry() -> str:
    """A catalog entry of kind embedding whose file is the built-in model's, under its own id and
    with task prefixes: choosing a catalog model tested without the network."""
    return _ENTRY.format(sha=EMBEDDING_SHA256, size=default_embedding_model().stat().st_size)


@pytest.fixture
def library(tmp_path: Path) -> ModelLibrary:
    catalog = tmp_path / "models.toml"
    catalog.write_text(stand_in_entry(), encoding="utf-8")
    return ModelLibrary(tmp_path / "data", catalog=load_catalog(catalog))


def _install(library: ModelLibrary) -> None:
    library.models_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_embedding_model(), library.models_dir / "minilm-asked.gguf")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "data" / "hearth.db") as s:
        yield s


def test_without_a_choice_the_built_in_model_is_used(library: ModelLibrary, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert chosen_embedding(data, library).model_id is None
    with open_embedder(data, library=library) as e:
        assert e.model_name == EMBEDDING_MODEL_NAME  # as stores indexed before the choice recorded it
        assert e.embed(["otters"]).shape == (1, 384)


def test_a_chosen_model_that_is_not_downloaded_says_how_to_get_it(library: ModelLibrary, tmp_path: Path) -> None:
    data = tmp_path / "data"
    save_choice(data, "minilm-asked", library)
    with pytest.raises(ModelLoadError, match="hearth models pull minilm-asked"):
        open_embedder(data, library=library)


def test_an_unknown_model_or_a_chat_model_is_refused_naming_the_embedding_models(
    library: ModelLibrary, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with pytest.raises(InputError, match="built-in, minilm-asked"):
        save_choice(data, "qwen2.5-7b-instruct-q4_k_m", library)
    assert not (data / "documents.json").exists()  # nothing changed


def test_a_damaged_choice_file_is_a_clear_error(library: ModelLibrary, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "documents.json").write_bytes(b"\xff{not json")
    with pytest.raises(ModelLoadError, match=r"documents\.json"):
        open_embedder(data, library=library)


def test_the_catalog_prefixes_go_before_passages_and_questions(library: ModelLibrary, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _install(library)
    save_choice(data, "minilm-asked", library)
    with open_embedder(data, library=library) as e:
        assert e.model_name == "minilm-asked"
        raw = e.inner
        passage = "Sea otters hold hands while they sleep."
        assert np.allclose(e.embed([passage])[0], raw.embed(["search_document: " + passage])[0], atol=1e-5)
        assert np.allclose(e.embed_query("otters"), raw.embed(["search_query: otters"])[0], atol=1e-5)
        assert float(e.embed(["otters"])[0] @ raw.embed(["otters"])[0]) < 0.999  # the prefix changes the vector
    save_choice(data, BUILT_IN, library)
    assert chosen_embedding(data, library).model_id is None


def test_choosing_another_model_embeds_every_file_again_and_search_uses_its_vectors(
    library: ModelLibrary, store: Store, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.\n", encoding="utf-8")
    (folder / "bread.txt").write_text("Sourdough needs a starter fed every day.\n", encoding="utf-8")

    async def index() -> None:
        with Extractor() as extractor, open_embedder(data, library=library) as embedder:
            indexer = Indexer(store.documents, extractor, embedder)
            await indexer.add([folder], "notes")
            await indexer.run()

    asyncio.run(index())
    files = asyncio.run(store.documents.files(asyncio.run(store.documents.collection_named("notes")).id))
    assert {f.model for f in files} == {EMBEDDING_MODEL_NAME}
    _install(library)
    save_choice(data, "minilm-asked", library)
    asyncio.run(index())  # the same folder, unchanged: only the embedding is done again
    files = asyncio.run(store.documents.files(asyncio.run(store.documents.collection_named("notes")).id))
    assert {(f.model, f.state) for f in files} == {("minilm-asked", "indexed")}
    assert all(f.embedded == f.passages > 0 for f in files)

    async def search() -> list[str]:
        with open_embedder(data, library=library) as e:
            index = VectorIndex(e.model_name, e.dim)
            result = await DocumentSearch(store.documents, index).search(
                "which animal sleeps holding hands", query_vector=e.embed_query("which animal sleeps holding hands")
            )
        return [Path(f.path).name for f in result.hits]

    found = asyncio.run(search())
    assert found and found[0] == "otters.md"


def test_the_choice_is_written_whole(library: ModelLibrary, tmp_path: Path) -> None:
    data = tmp_path / "data"
    save_choice(data, "minilm-asked", library)
    assert (data / "documents.json").read_text(encoding="utf-8") == '{"embedding_model": "minilm-asked"}'
    assert not list(data.glob(".documents-*"))  # no temporary file left behind


def test_the_window_takes_up_a_model_chosen_in_a_terminal_at_the_next_question(
    library: ModelLibrary, store: Store, tmp_path: Path
) -> None:
    from app.core.documents.chat_documents import DocumentRetrieval
    from app.core.documents.embedders import choice_stamp

    data = tmp_path / "data"
    _install(library)
    loaded: list[str] = []

    def load() -> object:
        e = open_embedder(data, library=library)
        loaded.append(e.model_name)
        return e

    async def main() -> None:
        retrieval = DocumentRetrieval(store.documents, load_embedder=load, choice=lambda: choice_stamp(data))
        retrieval.warm()
        assert retrieval._loading is not None
        await retrieval._loading
        save_choice(data, "minilm-asked", library)  # `hearth docs model minilm-asked`, elsewhere
        await retrieval.augment([])("otters", 1000)  # this question: full text while the new one loads
        assert retrieval._loading is not None
        await retrieval._loading
        assert retrieval._index.model == "minilm-asked"
        retrieval.augment([])  # unchanged since: nothing loads again
        await retrieval.close()

    asyncio.run(main())
    assert loaded == [EMBEDDING_MODEL_NAME, "minilm-asked"]
