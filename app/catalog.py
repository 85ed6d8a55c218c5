"""The model catalog (`models.toml` at the repository root): what models Hearth knows about.

Read-only here; no Qt. Downloads and the manager window come with the model manager.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CatalogEntry", "CATALOG_PATH", "display_name", "load_catalog"]

CATALOG_PATH = Path(__file__).resolve().parent.parent / "models.toml"
REQUIRED = ("id", "name", "file", "sha256", "size_bytes", "context_length", "license", "quantisation")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    id: str
    name: str
    file: str
    sha256: str
    size_bytes: int
    context_length: int
    license: str
    quantisation: str
    bundled: bool = False
    package: str | None = None


def load_catalog(path: Path = CATALOG_PATH) -> list[CatalogEntry]:
    """Parse the catalog; a missing field or a duplicate id is an error that names the entry."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    entries: list[CatalogEntry] = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("model", [])):
        missing = [k for k in REQUIRED if k not in raw]
        if missing:
            raise ValueError(f"{path.name}: model #{i + 1} ({raw.get('id', '?')}) lacks {', '.join(missing)}")
        if raw["id"] in seen:
            raise ValueError(f"{path.name}: duplicate model id {raw['id']!r}")
        seen.add(raw["id"])
        entries.append(CatalogEntry(**{k: raw[k] for k in REQUIRED}, bundled=bool(raw.get("bundled")),
                                    package=raw.get("package")))
    return entries


def display_name(model_path: str | Path) -> str:
    """The catalog's name for a model file, else the file name without .gguf.

    GGUF `general.name` values are often training-run labels ("Smollm2 135M 8k Lc100K Mix1
    Ep2"), so they are not shown to people.
    """
    name = Path(model_path).name
    try:
        for entry in load_catalog():
            if entry.file == name:
                return entry.name
    except (OSError, ValueError):
        pass
    return Path(model_path).stem
