"""The model library: which models this person has, where their files are, and changing that.

Owns `<data dir>/models/`: downloaded catalog models live there as `<file>`, partial
downloads under `.partial/`, and `library.json` records models added by path (their files
stay where they are), models pulled from the Hub by name (`hub`: their files under
`hf/OWNER/REPO/`, app.core.models.hub_pull writes them) and the hashes Hearth has checked. A catalog model counts as
installed when its file is in the folder: downloads are moved in only after their sha256
is verified. No Qt; the CLI and the window both use this.

Must not: load models (the engine does), or delete a file Hearth did not download.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from app.core.errors import CatalogError, LibraryError
from app.core.models.catalog import CatalogEntry, ModelKind, load_catalog
from app.core.models.download import Download, DownloadProgress, sha256_of

__all__ = ["LibraryModel", "ModelLibrary", "VerifyResult", "display_name"]


@dataclass(frozen=True, slots=True)
class LibraryModel:
    """A model as the manager lists it: from the catalog (installed or not) or added by path."""

    id: str
    name: str
    source: str  # "bundled" | "catalog" | "added" | "hub" (pulled by name: hf.co/OWNER/REPO:QUANT)
    path: Path | None  # where the file is (or will be, for a catalog model not yet downloaded)
    installed: bool
    size_bytes: int
    entry: CatalogEntry | None = None
    partial_bytes: int = 0  # a paused or interrupted download's bytes on disk
    kind: ModelKind = "chat"  # the catalog's; a model added by path is taken to be a chat model


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    sha256: str
    expected: str | None  # None: nothing to compare with yet (an added model checked for the first time)
    message: str


class ModelLibrary:
    def __init__(
        self, data_dir: Path, *, catalog: list[CatalogEntry] | None = None, bundled_path: Path | None = None
    ) -> None:
        self.models_dir = Path(data_dir) / "models"
        self._catalog = catalog if catalog is not None else load_catalog()
        self._bundled_path = bundled_path
        self._index_path = self.models_dir / "library.json"

    # -- reading -------------------------------------------------------------------------
    @property
    def catalog(self) -> list[CatalogEntry]:
        return list(self._catalog)

    def models(self) -> list[LibraryModel]:
        """The catalog in its order, then models added by path, then pulled from the Hub, oldest first."""
        out = [self._from_entry(e) for e in self._catalog]
        index = self._read_index()
        for rec in index.get("added", []):
            path = Path(rec["path"])
            size = path.stat().st_size if path.is_file() else 0
            out.append(LibraryModel(rec["id"], rec.get("name") or path.stem, "added", path, path.is_file(), size))
        for rec in index.get("hub", []):
            parts = [self.models_dir / f["name"] for f in rec["files"]]
            size = sum(int(f["size"]) for f in rec["files"])
            out.append(LibraryModel(rec["id"], rec["name"], "hub", parts[0], all(p.is_file() for p in parts), size))
        return out

    def hub_files(self, model_id: str) -> list[dict[str, Any]]:
        """A Hub model's files as recorded ({name: relative to models_dir, sha256, size}), first part first."""
        rec = next((r for r in self._read_index().get("hub", []) if r["id"] == model_id), None)
        return list(rec["files"]) if rec is not None else []

    def record_hub(self, record: dict[str, Any]) -> LibraryModel:
        """Remember a model pulled from the Hub (all its files verified and in place)."""

        def change(index: dict[str, Any]) -> None:
            index["hub"] = [r for r in index.get("hub", []) if r["id"] != record["id"]] + [record]
            first = record["files"][0]
            index.setdefault("verified", {})[record["id"]] = {"sha256": first["sha256"], "at": time.time()}

        self._update(change)
        return self.get(record["id"])

    def embedding_models(self) -> list[LibraryModel]:
        """The catalog's embedding models (for a person's documents), installed or not, in its order."""
        return [self._from_entry(e) for e in self._catalog if e.kind == "embedding"]

    def get(self, model_id: str) -> LibraryModel:
        for m in self.models():
            if m.id == model_id:
                return m
        known = ", ".join(m.id for m in self.models())
        raise LibraryError("unknown_model", f"There is no model {model_id!r}. Known models: {known}.")

    def resolve(self, id_or_path: str, *, kind: ModelKind | None = "chat") -> Path:
        """A model id (installed) or a path to a GGUF file, as given on the command line.

        `kind` "chat" (the default: every caller but a few wants a model to chat with) refuses an
        embedding model, named by id or by its downloaded file; None takes any model.
        """
        if any(m.id == id_or_path for m in self.models()):
            model = self.get(id_or_path)
            if kind is not None and model.kind != kind:
                raise _wrong_kind(model)
            if model.source == "added" and not model.installed:
                raise LibraryError(
                    "file_missing",
                    f"The file of {model.name} is gone ({model.path}). Add it again "
                    f"(`hearth models add PATH`) or forget it (`hearth models rm "
                    f"{model.id}`).",
                )
            if not model.installed or model.path is None:
                raise LibraryError(
                    "not_installed",
                    f"{model.name} is not downloaded yet: run "
                    f"`hearth models pull {model.id}` or use the model manager.",
                )
            return model.path
        path = Path(id_or_path).expanduser()
        looks_like_an_id = not path.suffix and len(path.parts) == 1
        if looks_like_an_id and not path.exists():  # a typo of an id, not a file someone meant
            known = ", ".join(m.id for m in self.models() if m.installed and kind in (None, m.kind))
            raise LibraryError(
                "unknown_model",
                f"There is no model {id_or_path!r}. Installed models: {known}. "
                "Give a GGUF file's path to use another file.",
            )
        same = self.by_path(path) if kind is not None and path.is_file() else None
        if same is not None and same.kind != kind:  # a downloaded embedding model's file, named by path
            raise _wrong_kind(same)
        return path

    def template_for(self, path: str | os.PathLike[str]) -> str | None:
        """The chat template a person chose for this model file (`set_template`), or None."""
        try:
            chosen = self._read_index().get("templates", {}).get(str(_same(Path(path))))
        except LibraryError:
            return None  # an unreadable list is reported where it is listed; loading goes on
        return chosen if isinstance(chosen, str) else None

    def set_template(self, id_or_path: str, name: str | None) -> Path:
        """Remember a chat template for a model (None: the file's own again); returns the file."""
        from engine.template_choice import KNOWN_TEMPLATES

        if name is not None and name not in KNOWN_TEMPLATES:
            raise LibraryError(
                "unknown_template",
                f"There is no chat template {name!r}. Known: {', '.join(KNOWN_TEMPLATES)}, or auto (the file's own).",
            )
        path = _same(self.resolve(id_or_path))
        if not path.is_file():
            raise LibraryError("file_missing", f"There is no model file at {path}.")

        def change(index: dict[str, Any]) -> None:
            templates = index.setdefault("templates", {})
            if name is None:
                templates.pop(str(path), None)
            else:
                templates[str(path)] = name

        self._update(change)
        return path

    def by_path(self, path: str | os.PathLike[str]) -> LibraryModel | None:
        target = _same(Path(path))
        return next((m for m in self.models() if m.path is not None and _same(m.path) == target), None)

    # -- downloading ---------------------------------------------------------------------
    def download(
        self, model_id: str, on_progress: Callable[[DownloadProgress], None] | None = None, endpoint: str | None = None
    ) -> Download:
        """A Download for a catalog model, ready to `run()` (in a worker thread for the window)."""
        model = self.get(model_id)
        entry = model.entry
        if entry is None or entry.repo is None:
            raise LibraryError("not_downloadable", f"{model.name} was added from a file; there is nothing to download.")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        return Download(
            repo=entry.repo,
            filename=entry.file,
            dest=self.models_dir / entry.file,
            revision=entry.revision,
            expected_sha256=entry.sha256 if entry.hash_known else None,
            expected_size=entry.size_bytes,
            on_progress=on_progress,
            endpoint=endpoint,
            label=entry.name,
        )

    def record_download(self, model_id: str, download: Download) -> None:
        """Remember the verified hash (it matters for catalog entries whose hash the server gave)."""
        if download.sha256:
            self._update(
                lambda idx: idx.setdefault("verified", {}).__setitem__(
                    model_id, {"sha256": download.sha256, "at": time.time()}
                )
            )

    # -- checking ------------------------------------------------------------------------
    def verify(
        self, model_id: str, on_bytes: Callable[[int], None] | None = None, cancelled: Callable[[], bool] | None = None
    ) -> VerifyResult:
        """Re-hash an installed model. `cancelled()` is polled per MiB (DownloadError("cancelled"))."""
        model = self.get(model_id)
        if not model.installed or model.path is None:
            raise LibraryError("not_installed", f"{model.name} is not installed, so there is nothing to verify.")
        actual = sha256_of(model.path, on_bytes, cancelled)
        recorded = self._read_index().get("verified", {}).get(model_id, {}).get("sha256")
        expected = model.entry.sha256 if model.entry is not None and model.entry.hash_known else recorded
        if expected is None:
            self._update(
                lambda idx: idx.setdefault("verified", {}).__setitem__(model_id, {"sha256": actual, "at": time.time()})
            )
            return VerifyResult(
                True, actual, None, f"{model.name}: sha256 {actual} recorded; later checks compare against it."
            )
        if actual == expected:
            return VerifyResult(True, actual, expected, f"{model.name}: OK (sha256 {actual}).")
        what = "re-download it: `hearth models rm` then `pull`" if model.source == "catalog" else "the file changed"
        return VerifyResult(
            False,
            actual,
            expected,
            f"{model.name} is damaged or changed: sha256 {actual}, expected {expected}. {what[0].upper()}{what[1:]}.",
        )

    # -- adding and removing -------------------------------------------------------------
    def add(self, path: str | os.PathLike[str]) -> tuple[LibraryModel, Any]:
        """Add a GGUF file by path (it stays where it is). Returns the model and its GGUFInfo.

        The header is checked and read first (no weights): a file that is not a usable GGUF
        model raises engine.ModelLoadError with a message naming the file.
        """
        from engine.gguf_info import read_gguf_info

        try:
            p = Path(path).expanduser().resolve()
        except (OSError, RuntimeError) as e:  # a symlink loop, a name too long
            raise LibraryError("unreadable", f"{path} cannot be used as a model file: {e}.") from e
        info = read_gguf_info(p)
        existing = self.by_path(p)
        if existing is not None:
            return existing, info
        taken = {m.id for m in self.models()}
        base = "local-" + (re.sub(r"[^a-z0-9._-]+", "-", p.stem.lower()).strip("-.") or "model")
        model_id, n = base, 2
        while model_id in taken:
            model_id, n = f"{base}-{n}", n + 1
        rec = {"id": model_id, "name": p.stem, "path": str(p), "added_at": time.time()}
        self._update(lambda idx: idx.setdefault("added", []).append(rec))
        return self.get(model_id), info

    def remove(self, model_id: str) -> int:
        """Remove a model; returns the bytes freed on disk (0 for a model added by path)."""
        model = self.get(model_id)
        if model.source == "bundled":
            raise LibraryError("bundled", f"{model.name} comes with Hearth and cannot be removed.")
        if model.source == "added":
            self._update(lambda idx: idx.__setitem__("added", [r for r in idx.get("added", []) if r["id"] != model_id]))
            return 0
        freed = 0
        if model.source == "hub":
            for f in self.hub_files(model_id):
                part = self.models_dir / f["name"]
                freed += part.stat().st_size if part.is_file() else 0
                part.unlink(missing_ok=True)
            self._update(lambda idx: idx.__setitem__("hub", [r for r in idx.get("hub", []) if r["id"] != model_id]))
            self._update(lambda idx: idx.get("verified", {}).pop(model_id, None))
            return freed
        if model.path is not None and model.path.is_file():
            freed += model.path.stat().st_size
            model.path.unlink()
        for part in self._partials(model.entry):
            freed += part.stat().st_size if part.exists() else 0
            part.unlink(missing_ok=True)
            part.with_suffix(".json").unlink(missing_ok=True)
        if not model.installed and freed == 0:
            raise LibraryError("not_installed", f"{model.name} is not downloaded, so there is nothing to remove.")
        self._update(lambda idx: idx.get("verified", {}).pop(model_id, None))
        return freed

    # -- internals -------------------------------------------------------------------------
    def _from_entry(self, e: CatalogEntry) -> LibraryModel:
        if e.bundled:
            path = self._bundled_path
            installed = path is not None and path.is_file()
            return LibraryModel(e.id, e.name, "bundled", path, installed, e.size_bytes, e, kind=e.kind)
        path = self.models_dir / e.file
        partial = sum(p.stat().st_size for p in self._partials(e) if p.exists())
        return LibraryModel(e.id, e.name, "catalog", path, path.is_file(), e.size_bytes, e, partial, e.kind)

    def _partials(self, entry: CatalogEntry | None) -> list[Path]:
        """Partial files of this entry's download, found through their sidecar records."""
        folder = self.models_dir / ".partial"
        if entry is None or not folder.is_dir():
            return []
        found = []
        for sidecar in folder.glob("*.json"):
            try:
                rec = json.loads(sidecar.read_text())
            except (OSError, ValueError):
                continue
            if rec.get("repo") == entry.repo and rec.get("file") == entry.file:
                found.append(sidecar.with_suffix(".part"))
        return found

    def _read_index(self) -> dict[str, Any]:
        try:
            data = json.loads(self._index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except OSError as e:  # not a damaged file: one that cannot be reached (a file where a folder should be)
            raise LibraryError(
                "unreadable_index",
                f"{self._index_path} cannot be read ({e.strerror or e}); check the data folder (--data-dir).",
            ) from e
        except ValueError as e:
            # Never lose it silently: keep the damaged file beside, start a fresh list.
            aside = self._index_path.with_name(f"library.json.damaged-{int(time.time())}")
            try:
                os.replace(self._index_path, aside)
            except OSError as moved:
                raise LibraryError(
                    "damaged_index",
                    f"{self._index_path} is damaged ({e}) and could not be moved "
                    f"aside ({moved.strerror or moved}); it was left as it is.",
                ) from e
            raise LibraryError(
                "damaged_index",
                f"{self._index_path} was damaged ({e}); it was moved to {aside.name}. "
                "Models added by path must be added again; downloaded models are unaffected.",
            ) from e
        return data if isinstance(data, dict) else {}

    def _update(self, change: Callable[[dict[str, Any]], object]) -> None:
        """Read-modify-write library.json under a lock (the CLI and the window may both write)."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self._index_path) + ".lock", timeout=10):
            index = self._read_index()
            change(index)
            tmp = self._index_path.with_suffix(".json.tmp")
            with tmp.open("w", encoding="utf-8") as f:
                json.dump(index, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._index_path)


def _wrong_kind(model: LibraryModel) -> LibraryError:
    """Naming an embedding model where a chat model is wanted: say what it is for instead."""
    if model.kind == "embedding":
        return LibraryError(
            "embedding_model",
            f"{model.id} is an embedding model, for your documents (hearth docs model {model.id}); "
            "choose a chat model: hearth models list",
        )
    return LibraryError(
        "chat_model", f"{model.id} is a chat model, not an embedding model; embedding models: hearth models list"
    )


def _same(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python 3.12)
        return path


def display_name(model_path: str | Path, catalog: list[CatalogEntry] | None = None) -> str:
    """The catalog's name for a model file, else the file name without .gguf.

    GGUF `general.name` values are often training-run labels ("Smollm2 135M 8k Lc100K Mix1
    Ep2"), so they are not shown to people.
    """
    name = Path(model_path).name
    try:
        for entry in catalog if catalog is not None else load_catalog():
            if entry.file == name:
                return entry.name
    except CatalogError:  # a broken catalog is reported where it is loaded; a name still shows
        pass
    return Path(model_path).stem
