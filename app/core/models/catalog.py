"""The model catalog (`app/core/models/models.toml`, package data; `models.toml` at the repository
root links to it): the models Hearth offers.

Owns parsing and checking the catalog. Read-only; no Qt, no network. Downloading is
app.models.download's job, what is installed is app.models.library's.
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from app.core.errors import CatalogError

__all__ = ["CATALOG_PATH", "SERVER_HASH", "CatalogEntry", "ModelKind", "find_entry", "load_catalog"]

# What a model is for: "chat" answers in conversations; "embedding" turns passages and questions
# into vectors for a person's documents, and is never loaded as a chat model.
ModelKind = Literal["chat", "embedding"]

# Beside this module, so an installed wheel or a bundle finds it as well as a checkout does.
CATALOG_PATH = Path(__file__).resolve().with_name("models.toml")
# An entry whose sha256 we could not look up says so; the download then takes the hash
# from the Hub's LFS metadata (X-Linked-Etag) and still verifies the file against it.
SERVER_HASH = "server"

_REQUIRED = (
    "id",
    "name",
    "file",
    "sha256",
    "size_bytes",
    "parameters",
    "quantisation",
    "context_length",
    "license",
    "recommended_memory_gb",
)
_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "name": str,
    "file": str,
    "sha256": str,
    "size_bytes": int,
    "parameters": int,
    "quantisation": str,
    "context_length": int,
    "license": str,
    "recommended_memory_gb": (int, float),
    "repo": str,
    "revision": str,
    "notes": str,
    "chat_template_note": str,
    "bundled": bool,
    "wheel": str,
    "package": str,
    "upstream_repo": str,
    "stop": list,
    "kind": str,
    "dimensions": int,
    "query_prefix": str,
    "document_prefix": str,
}
# Only an embedding model has vectors, and the prefixes its card asks for before a search
# question or a passage.
_EMBEDDING_ONLY = ("dimensions", "query_prefix", "document_prefix")
_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """One GGUF file Hearth knows how to get: bundled with the app, or downloadable."""

    id: str
    name: str
    file: str
    sha256: str  # 64 hex digits, or SERVER_HASH
    size_bytes: int
    parameters: int
    quantisation: str
    context_length: int
    license: str
    recommended_memory_gb: float
    repo: str | None = None  # Hugging Face repo id; None only for the bundled model
    revision: str = "main"
    notes: str = ""
    chat_template_note: str = ""
    stop: tuple[str, ...] = ()
    bundled: bool = False
    package: str | None = None  # the Python package that carries a bundled model
    upstream_repo: str | None = None
    kind: ModelKind = "chat"
    dimensions: int | None = None  # the length of an embedding model's vectors; None for chat models
    query_prefix: str = ""  # put before a search question, as an embedding model's card asks
    document_prefix: str = ""  # put before each passage embedded

    @property
    def hash_known(self) -> bool:
        return self.sha256 != SERVER_HASH


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    """Parse and check the catalog; any problem raises CatalogError naming the entry.

    HEARTH_CATALOG names another catalog file (an organisation's own list of models).
    Parsed once per version of the file (its size and modification time), so the window
    may ask for names as often as it paints.
    """
    path = path or Path(os.environ.get("HEARTH_CATALOG") or CATALOG_PATH)
    try:
        stat = path.stat()
    except OSError as e:
        raise CatalogError("bad_catalog", f"{path.name}: cannot be read: {e}") from e
    return list(_parsed(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed(where: str, _mtime_ns: int, _size: int) -> tuple[CatalogEntry, ...]:
    path = Path(where)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CatalogError("bad_catalog", f"{path.name}: cannot be read: {e}") from e
    entries: list[CatalogEntry] = []
    seen_ids: set[str] = set()
    seen_files: set[str] = set()
    for i, raw in enumerate(data.get("model", [])):
        entry = _entry(path.name, i, raw)
        if entry.id in seen_ids:
            raise CatalogError("bad_catalog", f"{path.name}: duplicate model id {entry.id!r}")
        if entry.file in seen_files:  # installed files are named by `file` in one folder
            raise CatalogError("bad_catalog", f"{path.name}: two models share the file name {entry.file!r}")
        seen_ids.add(entry.id)
        seen_files.add(entry.file)
        entries.append(entry)
    return tuple(entries)


def find_entry(model_id: str, entries: list[CatalogEntry]) -> CatalogEntry | None:
    return next((e for e in entries if e.id == model_id), None)


def _entry(source: str, index: int, raw: dict[str, object]) -> CatalogEntry:
    label = f"{source}: model #{index + 1} ({raw.get('id', '?')})"
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise CatalogError("bad_catalog", f"{label} lacks {', '.join(missing)}")
    unknown = sorted(set(raw) - set(_TYPES))
    if unknown:
        raise CatalogError("bad_catalog", f"{label} has unknown field(s) {', '.join(unknown)}")
    for key, value in raw.items():
        want = _TYPES[key]
        if (isinstance(value, bool) and want is not bool) or not isinstance(value, want):
            raise CatalogError("bad_catalog", f"{label}: {key} has the wrong type ({type(value).__name__})")
    if not _ID.fullmatch(str(raw["id"])):
        raise CatalogError("bad_catalog", f"{label}: id must be lowercase letters, digits, '.', '-' or '_'")
    sha = str(raw["sha256"])
    if sha != SERVER_HASH and not _SHA256.fullmatch(sha):
        raise CatalogError("bad_catalog", f"{label}: sha256 must be 64 lowercase hex digits or {SERVER_HASH!r}")
    bundled = bool(raw.get("bundled", False))
    repo = raw.get("repo")
    if not bundled and not (isinstance(repo, str) and _REPO.fullmatch(repo)):
        raise CatalogError("bad_catalog", f'{label}: a downloadable model needs repo = "owner/name"')
    if bundled and not raw.get("package"):
        raise CatalogError("bad_catalog", f"{label}: a bundled model needs the package that carries it")
    if not str(raw["file"]).endswith(".gguf") or "/" in str(raw["file"]) or "\\" in str(raw["file"]):
        raise CatalogError("bad_catalog", f"{label}: file must be a plain .gguf file name")
    for key in ("size_bytes", "parameters", "context_length"):
        if int(raw[key]) <= 0:  # type: ignore[call-overload]
            raise CatalogError("bad_catalog", f"{label}: {key} must be positive")
    if bundled and sha == SERVER_HASH:
        raise CatalogError("bad_catalog", f"{label}: the bundled model's sha256 must be known")
    stop = raw.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise CatalogError("bad_catalog", f"{label}: stop must be a list of non-empty strings")
    kind = _kind(label, raw)
    return CatalogEntry(
        id=str(raw["id"]),
        name=str(raw["name"]),
        file=str(raw["file"]),
        sha256=sha,
        size_bytes=int(raw["size_bytes"]),  # type: ignore[call-overload]
        parameters=int(raw["parameters"]),  # type: ignore[call-overload]
        quantisation=str(raw["quantisation"]),
        context_length=int(raw["context_length"]),  # type: ignore[call-overload]
        license=str(raw["license"]),
        recommended_memory_gb=float(raw["recommended_memory_gb"]),  # type: ignore[arg-type]
        repo=repo if isinstance(repo, str) else None,
        revision=str(raw.get("revision", "main")),
        notes=str(raw.get("notes", "")),
        chat_template_note=str(raw.get("chat_template_note", "")),
        stop=tuple(stop),
        bundled=bundled,
        package=raw.get("package") if isinstance(raw.get("package"), str) else None,  # type: ignore[arg-type]
        upstream_repo=raw.get("upstream_repo") if isinstance(raw.get("upstream_repo"), str) else None,  # type: ignore[arg-type]
        kind=kind,
        dimensions=int(raw["dimensions"]) if "dimensions" in raw else None,  # type: ignore[call-overload]
        query_prefix=str(raw.get("query_prefix", "")),
        document_prefix=str(raw.get("document_prefix", "")),
    )


def _kind(label: str, raw: dict[str, object]) -> ModelKind:
    """The entry's kind, with the fields only an embedding model may have checked against it."""
    kind = raw.get("kind", "chat")
    if kind == "embedding":
        dimensions = raw.get("dimensions")
        if dimensions is None:
            raise CatalogError("bad_catalog", f"{label}: an embedding model needs dimensions (its vectors' length)")
        if int(dimensions) <= 0:  # type: ignore[call-overload]
            raise CatalogError("bad_catalog", f"{label}: dimensions must be positive")
        if raw.get("bundled"):  # the bundled model is what a first run chats with
            raise CatalogError("bad_catalog", f"{label}: the bundled model must be a chat model")
        return "embedding"
    if kind == "chat":
        misplaced = [k for k in _EMBEDDING_ONLY if k in raw]
        if misplaced:
            raise CatalogError(
                "bad_catalog", f'{label}: {", ".join(misplaced)} only apply to kind = "embedding" entries'
            )
        return "chat"
    raise CatalogError("bad_catalog", f"{label}: kind must be one of {', '.join(map(repr, get_args(ModelKind)))}")
