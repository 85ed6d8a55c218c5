"""The catalog parses, and the bundled model installed at set-up is exactly the file it names."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from app.models.catalog import CATALOG_PATH, CatalogError, load_catalog


def test_catalog_parses_with_unique_ids_and_one_bundled_default() -> None:
    entries = load_catalog()
    assert len({e.id for e in entries}) == len(entries)
    assert [e.bundled for e in entries].count(True) == 1


def test_installed_bundled_model_matches_its_catalog_entry(model_path: Path) -> None:
    (bundled,) = [e for e in load_catalog() if e.bundled]
    assert model_path.name == bundled.file
    assert model_path.stat().st_size == bundled.size_bytes
    h = hashlib.sha256()
    with model_path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    assert h.hexdigest() == bundled.sha256


def test_catalog_errors_name_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "models.toml"
    bad.write_text('[[model]]\nid = "x"\nname = "X"\n')
    with pytest.raises(ValueError, match="x.*lacks"):
        load_catalog(bad)
    bad.write_text(CATALOG_PATH.read_text() * 2)
    with pytest.raises(ValueError, match="duplicate"):
        load_catalog(bad)
