"""Read a GGUF file's header on the Hub without downloading the model: HTTP Range requests only.

The header, metadata and tensor table come first in a GGUF file (1.8 MB of the bundled 98 MB
model); the weights follow. This reads ranges that grow as engine.gguf_meta's reader asks for
bytes (64 KiB, then the size read so far, at most 128 KiB a request: on the bundled model
1,877,682 bytes in 14 requests), stops at the tensor table's
end, and never goes past a hard cap (32 MB: no real header is a tenth of that; a hostile file
claiming a 4 GB chat template is refused, not fetched). Then the same checks and description as
for a file on disk (engine.gguf_info) run on a sparse stand-in file: the real header bytes,
extended to the real length with nothing written (so the tensor layout is checked against the
true size, at no disk cost on Linux and macOS).

What comes out: `RemoteHeader` with the GGUFInfo (architecture, context length, chat template,
per-layer sizes for the memory fit), whether this llama.cpp runs the architecture, and the
bytes it took.

Must not: read past the cap, follow the weights, or leave the stand-in file behind.
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.core.models.architectures import ArchSupport, architecture_support
from app.core.models.hub_client import HubClient, HubError
from engine.errors import ModelLoadError
from engine.gguf_info import GGUFInfo

__all__ = ["HEADER_CAP", "RemoteHeader", "read_remote_header"]

HEADER_CAP = 32 * 1024 * 1024
_FIRST = 64 * 1024
_MAX_STEP = 128 * 1024
_READER_WINDOW = 1 << 20  # engine.gguf_meta asks for max(needed, 1 MiB): a bigger ask is all needed


@dataclass(frozen=True, slots=True)
class RemoteHeader:
    """A GGUF file on the Hub, described from its header alone."""

    repo: str
    file_name: str
    info: GGUFInfo  # path and file_name name the Hub file; its size is the real file's
    support: ArchSupport
    bytes_downloaded: int
    requests: int

    @property
    def runnable(self) -> bool:
        return self.support != "unsupported"

    def support_message(self) -> str:
        arch = self.info.architecture
        if self.support == "supported":
            return f"{arch}: this version of Hearth runs it"
        if self.support == "unknown":
            return f"{arch}: not known to this version's llama.cpp list; it may fail to load"
        return (
            f"{arch}: this version of Hearth's llama.cpp cannot run it (unknown model architecture); "
            "do not download it for Hearth yet"
        )


def read_remote_header(
    client: HubClient, repo: str, file_name: str, *, revision: str = "main", cap: int = HEADER_CAP
) -> RemoteHeader:
    """Fetch and check `file_name`'s header; HubError for the Hub, ModelLoadError for a bad file."""
    from huggingface_hub import hf_hub_url

    url = hf_hub_url(repo, file_name, revision=revision, endpoint=client.endpoint)
    remote = _RangeFile(client, url, f"{repo}/{file_name}", cap)
    base = file_name.rsplit("/", 1)[-1]
    from engine.gguf_meta import read_metadata

    with client.mapped(f"{repo}/{file_name}", repo=repo):
        remote.open()
        head = remote.read(24)  # engine.gguf_check judges the magic and version on the stand-in
        if head[:4] != b"GGUF":
            raise ModelLoadError("not_gguf", f"{base} on the Hub is not a GGUF model file.")
        try:
            remote.seek(0)
            meta = read_metadata(remote, remote.size, base)  # type: ignore[arg-type]
        except ModelLoadError as e:
            if e.code != "truncated" or remote.fetched >= min(remote.size, cap):
                raise
            remote.min_step = _READER_WINDOW  # one value larger than a step: read again, in bigger steps
            remote.seek(0)
            meta = read_metadata(remote, remote.size, base)  # type: ignore[arg-type]
    info = _describe(remote.prefix(meta.table_end), remote.size, base)
    info = dataclasses.replace(info, path=Path(f"hf.co/{repo}/{file_name}"), file_name=base)
    return RemoteHeader(
        repo, file_name, info, architecture_support(info.architecture), remote.fetched_bytes, remote.requests
    )


def _describe(head: bytes, size: int, name: str) -> GGUFInfo:
    """engine.gguf_info on a sparse stand-in: the header's real bytes, the rest a hole."""
    from engine.gguf_info import read_gguf_info

    with tempfile.TemporaryDirectory(prefix="hearth-header-") as folder:
        stand_in = Path(folder) / name
        with stand_in.open("wb") as f:
            f.write(head)
            try:
                f.truncate(size)
            except OSError as e:  # a file system without holes and without room
                raise ModelLoadError(
                    "unreadable", f"Could not check {name}'s header here ({e.strerror or e})."
                ) from None
        return read_gguf_info(stand_in)


class _RangeFile:
    """A read-only file over a URL that fetches growing ranges as they are read (see module)."""

    def __init__(self, client: HubClient, url: str, what: str, cap: int) -> None:
        self._client, self._url, self._what, self._cap = client, url, what, cap
        self._buf = bytearray()
        self._pos = 0
        self.size = 0
        self.requests = 0
        self.fetched_bytes = 0
        self.min_step = 0

    @property
    def fetched(self) -> int:
        return len(self._buf)

    def prefix(self, n: int) -> bytes:
        return bytes(self._buf[:n])

    def open(self) -> None:
        self._fetch(_FIRST)

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else self._pos + pos if whence == 1 else self.size + pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = self.size - self._pos
        want = min(n, self.size - self._pos)
        # A short read is fine for the reader while it holds what it needed; it asks for at
        # least a 1 MiB window, so only an ask above that must be met in full.
        need = want if n > _READER_WINDOW else min(want, max(self.min_step, _MAX_STEP))
        if self._pos + need > len(self._buf):
            self._fetch(self._pos + need - len(self._buf))
        out = bytes(self._buf[self._pos : self._pos + want])
        self._pos += len(out)
        return out

    def _fetch(self, at_least: int) -> None:
        start = len(self._buf)
        step = max(at_least, min(max(start, _FIRST), max(_MAX_STEP, self.min_step)))
        stop = start + step
        if self.size:
            stop = min(stop, self.size)
        if stop > self._cap:
            if start + at_least > self._cap:
                raise ModelLoadError(
                    "header_too_big",
                    f"{self._what}'s header runs past {self._cap // (1024 * 1024)} MB; Hearth does not read "
                    "further (no real model's header is that big).",
                )
            stop = self._cap
        if stop <= start:
            return
        self._buf += self._get(start, stop)

    def _get(self, start: int, stop: int) -> bytes:
        from huggingface_hub import get_session

        headers = self._client.headers()
        if not self._url.startswith(self._client.endpoint + "/"):  # the CDN: the token is the Hub's alone
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        headers["Range"] = f"bytes={start}-{stop - 1}"
        headers["Accept-Encoding"] = "identity"
        self.requests += 1
        with get_session().stream(
            "GET", self._url, headers=headers, timeout=self._client.timeout(), follow_redirects=True
        ) as response:
            if response.status_code >= 400:
                response.read()
                self._client.raise_for_status(response, self._what)
            self._url = str(response.url)  # the CDN's address: later parts skip the Hub's redirect
            if response.status_code != 206:
                raise HubError(
                    "server",
                    f"{self._client.endpoint} does not serve parts of files (Range), so "
                    f"{self._what}'s header cannot be read without downloading it all.",
                )
            total = _total(response.headers.get("Content-Range", ""))
            if total is None:
                raise HubError("bad_answer", f"{self._client.endpoint} sent a part of {self._what} without its size.")
            self.size = total
            body = bytearray()
            for chunk in response.iter_bytes(64 * 1024):
                body += chunk
                self.fetched_bytes += len(chunk)
                if len(body) > stop - start:
                    raise HubError("bad_answer", f"{self._client.endpoint} sent more of {self._what} than asked.")
        if not body:
            raise HubError("bad_answer", f"{self._client.endpoint} sent an empty part of {self._what}.")
        return bytes(body)


def _total(content_range: str) -> int | None:
    _, _, total = content_range.partition("/")
    return int(total) if total.strip().isdigit() else None
