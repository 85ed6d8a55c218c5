"""The catalog parses, every entry is complete and well-formed, and the bundled model
installed at set-up is exactly the file it names."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from app.core.errors import CatalogError
from app.core.models.catalog import CATALOG_PATH, SERVER_HASH, load_catalog


def test_catalog_parses_with_unique_ids_and_files_and_one_bundled_default() -> None:
    entries = load_catalog()
    assert len(entries) >= 5
    assert len({e.id for e in entries}) == len(entries)
    assert len({e.file for e in entries}) == len(entries)
    assert [e.bundled for e in entries].count(True) == 1


@pytest.mark.parametrize("entry", load_catalog(), ids=lambda e: e.id)
def test_every_entry_has_what_a_person_and_a_download_need(entry) -> None:
    assert entry.name and entry.license and entry.quantisation and entry.notes
    assert entry.file.endswith(".gguf")
    assert entry.sha256 == SERVER_HASH or re.fullmatch(r"[0-9a-f]{64}", entry.sha256)
    assert entry.size_bytes > 10_000_000 and entry.parameters > 10_000_000
    # A chat model needs room for a conversation; an encoder sees one passage at a time.
    assert entry.context_length >= (2048 if entry.kind == "chat" else 512)
    assert (entry.dimensions is not None) == (entry.kind == "embedding")
    # The memory it asks for covers at least the weights.
    assert entry.recommended_memory_gb * 1e9 > entry.size_bytes
    assert entry.quantisation.upper() in entry.file.upper().replace("-", "_").replace(".", "_") or entry.bundled
    if not entry.bundled:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", entry.repo or "")


def test_installed_bundled_model_matches_its_catalog_entry(model_path: Path) -> None:
    (bundled,) = [e for e in load_catalog() if e.bundled]
    assert model_path.name == bundled.file
    assert model_path.stat().st_size == bundled.size_bytes
    h = hashlib.sha256()
    with model_path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    assert h.hexdigest() == bundled.sha256


GOOD = """[[model]]
id = "x-q4"
name = "X"
repo = "org/x-GGUF"
file = "x-q4.gguf"
sha256 = "server"
size_bytes = 100
parameters = 100
quantisation = "Q4_K_M"
context_length = 4096
license = "MIT"
recommended_memory_gb = 1
"""


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[[model]]\nid = "x"\nname = "X"\n', "x.*lacks file, sha256"),
        (GOOD * 2, "duplicate model id 'x-q4'"),
        (GOOD.replace('sha256 = "server"', 'sha256 = "abc"'), "x-q4.*sha256 must be 64"),
        (GOOD.replace("size_bytes = 100", 'size_bytes = "big"'), "x-q4.*size_bytes has the wrong type"),
        (GOOD.replace('repo = "org/x-GGUF"\n', ""), "x-q4.*needs repo"),
        (GOOD.replace('file = "x-q4.gguf"', 'file = "../x.gguf"'), "plain .gguf file name"),
        (GOOD + 'colour = "red"\n', "unknown field.*colour"),
        (GOOD.replace('id = "x-q4"', 'id = "X Q4"'), "id must be lowercase"),
        ("[[model]\n", "cannot be read"),
        (GOOD + 'kind = "reranker"\n', "x-q4.*kind must be one of 'chat', 'embedding'"),
        (GOOD + 'kind = "embedding"\n', "x-q4.*embedding model needs dimensions"),
        (GOOD + 'kind = "embedding"\ndimensions = 0\n', "x-q4.*dimensions must be positive"),
        (GOOD + 'query_prefix = "q: "\n', 'x-q4.*query_prefix only apply to kind = "embedding"'),
        (GOOD + "dimensions = 384\n", 'x-q4.*dimensions only apply to kind = "embedding"'),
        (
            GOOD + 'kind = "embedding"\ndimensions = 384\ndocument_prefix = 1\n',
            "x-q4.*document_prefix has the wrong type",
        ),
    ],
    ids=[
        "missing-fields",
        "duplicate-id",
        "bad-sha",
        "wrong-type",
        "no-repo",
        "path-in-file",
        "unknown-field",
        "bad-id",
        "not-toml",
        "unknown-kind",
        "embedding-without-dimensions",
        "zero-dimensions",
        "prefix-on-a-chat-model",
        "dimensions-on-a-chat-model",
        "prefix-not-text",
    ],
)
def test_catalog_errors_name_the_entry_and_the_field(tmp_path: Path, text: str, words: str) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text(text)
    with pytest.raises(CatalogError, match=words):
        load_catalog(bad)


def test_the_shipped_catalog_file_is_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_catalog() == load_catalog(CATALOG_PATH)
    own = tmp_path / "models.toml"
    own.write_text(GOOD)
    monkeypatch.setenv("HEARTH_CATALOG", str(own))  # an organisation's own catalog
    assert [e.id for e in load_catalog()] == ["x-q4"]


def test_the_catalog_is_parsed_once_per_version_of_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """display_name runs while the window paints: it must not re-read models.toml each time."""
    import tomllib

    from app.core.models.library import display_name

    catalog = tmp_path / "models.toml"
    catalog.write_text(CATALOG_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("HEARTH_CATALOG", str(catalog))
    parses: list[int] = []
    real = tomllib.loads
    monkeypatch.setattr(tomllib, "loads", lambda text: (parses.append(1), real(text))[1])
    bundled = load_catalog()[0]
    names = {display_name(f"/models/{bundled.file}") for _ in range(200)}
    assert names == {bundled.name} and len(parses) == 1
    catalog.write_text(catalog.read_text(encoding="utf-8").replace(bundled.name, "Renamed", 1), encoding="utf-8")
    assert display_name(f"/models/{bundled.file}") == "Renamed" and len(parses) == 2  # an edit is seen


def test_an_embedding_entry_carries_its_kind_dimensions_and_prefixes(tmp_path: Path) -> None:
    own = tmp_path / "models.toml"
    own.write_text(GOOD + 'kind = "embedding"\ndimensions = 384\nquery_prefix = "query: "\n')
    (entry,) = load_catalog(own)
    assert (entry.kind, entry.dimensions, entry.query_prefix, entry.document_prefix) == (
        "embedding",
        384,
        "query: ",
        "",
    )
    plain = tmp_path / "chat.toml"
    plain.write_text(GOOD)
    (chat,) = load_catalog(plain)
    assert (chat.kind, chat.dimensions, chat.query_prefix, chat.document_prefix) == ("chat", None, "", "")


def test_the_shipped_catalog_offers_two_embedding_models_after_the_chat_models() -> None:
    entries = load_catalog()
    kinds = [e.kind for e in entries]
    assert kinds == sorted(kinds, key=lambda k: k == "embedding")  # chat models first
    by_id = {e.id: e for e in entries if e.kind == "embedding"}
    assert sorted(by_id) == ["bge-small-en-v1.5-q8_0", "nomic-embed-text-v1.5-q8_0"]
    nomic, bge = by_id["nomic-embed-text-v1.5-q8_0"], by_id["bge-small-en-v1.5-q8_0"]
    assert (nomic.dimensions, nomic.context_length, nomic.size_bytes) == (768, 2048, 146146432)
    assert (nomic.query_prefix, nomic.document_prefix) == ("search_query: ", "search_document: ")
    assert (bge.dimensions, bge.context_length, bge.size_bytes) == (384, 512, 36806944)
    assert bge.query_prefix == "Represent this sentence for searching relevant passages: " and not bge.document_prefix
    assert all(e.hash_known and e.revision != "main" for e in (nomic, bge))  # pinned and verified
