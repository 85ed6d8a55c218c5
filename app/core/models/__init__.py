"""Models: the catalog (`models.toml`), the library of installed models, verified downloads.

No Qt here: the CLI (`hearth models ...`) and the window's model manager both use it.
"""

from app.core.models.catalog import CATALOG_PATH, SERVER_HASH, CatalogEntry, ModelKind, find_entry, load_catalog
from app.core.models.download import Download, DownloadProgress, Phase
from app.core.models.library import LibraryModel, ModelLibrary, VerifyResult, display_name

__all__ = [
    "CATALOG_PATH",
    "SERVER_HASH",
    "CatalogEntry",
    "Download",
    "DownloadProgress",
    "LibraryModel",
    "ModelKind",
    "ModelLibrary",
    "Phase",
    "VerifyResult",
    "display_name",
    "find_entry",
    "load_catalog",
]
