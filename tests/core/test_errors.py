"""One error tree: every error shown to a person is a HearthError with a stable code and a
message, built the same way and drawn in app.core.errors; `mapped` turns named low-level
exceptions into it; bugs pass through untouched."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
import pytest

from app.core.errors import (
    CatalogError,
    DownloadError,
    InputError,
    KeychainUnavailable,
    LibraryError,
    ProviderError,
    describe,
    mapped,
    network_errors,
)
from app.core.providers import ProviderConfig, ProvidersFile
from engine.errors import EngineUnavailable, HearthError, ModelLoadError
from engine.wire import WireFormatError
from store.errors import StoreError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "error",
    [
        InputError("bad_input", "Type a message first."),
        ProviderError("bad_provider", "bad url", field="base_url"),
        KeychainUnavailable("no_keychain", "no keychain"),
        CatalogError("bad_catalog", "models.toml: bad"),
        LibraryError("gone", "It is gone."),
        DownloadError("network", "No network."),
        StoreError("read_only", "Read-only disk."),
        ModelLoadError("not_gguf", "Not a model."),
        EngineUnavailable("engine_died", "It died."),
        WireFormatError("bad_wire_format", "bad format", format_name="x", key="y"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_user_facing_error_is_a_hearth_error_with_code_and_message(error: HearthError) -> None:
    assert isinstance(error, HearthError)
    assert error.code and error.message
    assert str(error) == error.message == describe(error)


@pytest.mark.slow
def test_no_other_exception_class_is_shown_to_people() -> None:
    """Every Exception subclass in engine/, store/ and app/ derives from HearthError, or is
    private (a leading underscore: control flow inside one module)."""
    roots = {"Exception", "ValueError", "RuntimeError", "OSError"}
    loose = []
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("store/**/*.py"), *ROOT.glob("app/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if bases & roots:
                    loose.append(f"{path.relative_to(ROOT)}: {node.name}({', '.join(sorted(bases))})")
    # IllegalTransition is a programming error (a caller broke the state machine), on purpose.
    assert sorted(loose) == [
        "engine/errors.py: HearthError(Exception)",
        "engine/states.py: IllegalTransition(ValueError)",
    ]


def _hearth_error_classes() -> set[str]:
    """Every class in engine/, store/ and app/ that derives from HearthError, read from the source."""
    bases: dict[str, set[str]] = {}
    for path in [*ROOT.glob("engine/**/*.py"), *ROOT.glob("store/**/*.py"), *ROOT.glob("app/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(b.id for b in node.bases if isinstance(b, ast.Name))
    found = {"HearthError"}
    while grown := {name for name, of in bases.items() if of & found} - found:
        found |= grown
    return found


def test_the_drawing_of_the_tree_names_every_class() -> None:
    import app.core.errors

    drawing = app.core.errors.__doc__ or ""
    missing = sorted(name for name in _hearth_error_classes() if f" {name} " not in drawing)
    assert len(_hearth_error_classes()) > 15 and missing == []


def test_every_class_takes_code_then_message() -> None:
    """The tree's one constructor convention: `SomeError(code, message, *, context)`."""
    import inspect

    import app.core.errors
    import app.core.models.hub_client
    import app.core.tools.errors
    import app.server.wire
    import engine.errors
    import engine.template_limits
    import engine.tool_calls
    import engine.tool_grammar
    import engine.wire
    import store.errors

    classes = {
        name: obj
        for module in (
            app.core.errors,
            app.core.models.hub_client,
            app.core.tools.errors,
            app.server.wire,
            engine.errors,
            engine.template_limits,
            engine.tool_calls,
            engine.tool_grammar,
            engine.wire,
            store.errors,
        )
        for name, obj in vars(module).items()
        if isinstance(obj, type) and issubclass(obj, HearthError)
    }
    assert set(classes) == _hearth_error_classes()
    for name, cls in classes.items():
        params = list(inspect.signature(cls).parameters.values())
        assert [p.name for p in params[:2]] == ["code", "message"], name
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params[:2]), name
        assert all(p.kind is p.KEYWORD_ONLY for p in params[2:]), name


def test_the_failing_provider_field_is_structured_not_parsed_from_text(tmp_path: Path) -> None:
    file = ProvidersFile(tmp_path, formats={"openai"})
    with pytest.raises(ProviderError) as bad:
        file.check(ProviderConfig(name="lan", kind="openai", base_url="ftp://box"))
    assert (bad.value.provider, bad.value.field) == ("lan", "base_url")
    assert bad.value.hint.startswith("The base URL must start with http://")
    assert "providers.toml" in bad.value.message  # the CLI's words name the file
    with pytest.raises(ProviderError) as missing:
        file.check(ProviderConfig(name="lan", kind="openai", base_url=""))
    assert (missing.value.field, missing.value.hint) == ("base_url", "Fill in the base URL.")


def test_mapped_turns_named_exceptions_into_hearth_errors_and_lets_bugs_through() -> None:
    def network(e: BaseException) -> HearthError:
        return DownloadError("network", f"No network: {e}")

    with pytest.raises(DownloadError) as failed, mapped({network_errors(): network}):
        raise httpx.ConnectError("refused")
    assert failed.value.code == "network" and isinstance(failed.value.__cause__, httpx.ConnectError)
    with pytest.raises(KeyError), mapped({network_errors(): network}):
        raise KeyError("a bug")
    with pytest.raises(StoreError), mapped({Exception: network}):  # a HearthError is never relabelled
        raise StoreError("disk_full", "The disk is full.")


def test_a_bug_is_described_as_one() -> None:
    text = describe(KeyError("conversation"))
    assert text.startswith("Something went wrong (KeyError") and "log" in text
