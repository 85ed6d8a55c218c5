"""Resumable, verified downloads of one model file from the Hugging Face Hub.

huggingface-hub does the Hub's part: the file URL (`hf_hub_url`), the file's metadata
(`get_hf_file_metadata`: size, the LFS sha256, the commit), auth (HF_TOKEN or a login),
its configured HTTP session, and its typed errors. The byte transfer loop is ours, because
huggingface-hub 2.x downloads into a per-process temporary file that it deletes when the
download fails or is interrupted (so nothing resumes after a cancel or a crash), and it
reports progress only every 10 MB, too coarse to cancel promptly on a slow link.

What this module guarantees:
- One partial file per expected hash, `<models>/.partial/<sha256>.part`, held under an
  exclusive lock while it is written: two downloads of the same file (two windows, the
  window and the CLI) never write the same partial file; the second is told so.
- Resume after a cancel, a dropped connection or a crash: the next download sends
  `Range: bytes=N-` and appends. A server that ignores Range (200) restarts from zero
  instead of appending the whole file again.
- The commit is pinned from the metadata, so a repo updated mid-download cannot mix two
  versions of a file.
- Nothing is offered before it is verified: the finished file is read back and hashed; a
  mismatch deletes it and says so. Only then is it moved into place (atomically).
- Cancel is seen between chunks of at most 64 KiB, and `cancel()` also closes the
  connection, so a stalled server cannot hold it up.

Must not: touch Qt, decide where models live (the library passes the folder), or retry
forever (bounded, with backoff that honours Retry-After).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from app.core.errors import DownloadError, mapped, network_errors

__all__ = ["Download", "DownloadProgress", "Phase", "hub_endpoint", "sha256_of"]

CHUNK = 64 * 1024
_PROGRESS_EVERY_S = 0.1
_MAX_ATTEMPTS_WITHOUT_PROGRESS = 5
_RETRY_STATUSES = (408, 429, 500, 502, 503, 504)
_CONNECT_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 30.0  # between bytes; a stall longer than this counts as a dropped connection


class Phase(Enum):
    """Where a download is. Only DONE means a verified file is in place."""

    CONNECTING = "connecting"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    phase: Phase
    done_bytes: int
    total_bytes: int
    bytes_per_s: float  # over the last few seconds; 0 until measured
    resumed_from: int = 0  # bytes already on disk when this download started
    note: str = ""  # e.g. "the server does not support resuming: starting over"

    @property
    def eta_s(self) -> float | None:
        if self.bytes_per_s <= 0 or self.phase is not Phase.DOWNLOADING:
            return None
        return max(0.0, (self.total_bytes - self.done_bytes) / self.bytes_per_s)


def hub_endpoint() -> str:
    """HF_ENDPOINT at call time (huggingface-hub reads it once, at import)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def sha256_of(
    path: Path, on_bytes: Callable[[int], None] | None = None, cancelled: Callable[[], bool] | None = None
) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            if on_bytes is not None:
                on_bytes(len(block))
            if cancelled is not None and cancelled():
                raise DownloadError("cancelled", "Stopped while checking the file.")
    return h.hexdigest()


class Download:
    """One file from one repo into `dest`. `run()` blocks; `cancel()` may come from any thread."""

    def __init__(
        self,
        *,
        repo: str,
        filename: str,
        dest: Path,
        revision: str = "main",
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        on_progress: Callable[[DownloadProgress], None] | None = None,
        endpoint: str | None = None,
        label: str | None = None,
        token: str | None = None,
    ) -> None:
        self.repo, self.filename, self.dest, self.revision = repo, filename, dest, revision
        self.expected_sha256 = expected_sha256
        self.expected_size = expected_size
        self.label = label or filename
        self._token = token  # a Hub token for this download only (None: huggingface-hub's own)
        self._on_progress = on_progress or (lambda _p: None)
        self._endpoint = endpoint
        self._cancel = threading.Event()
        self._response: Any = None
        self._response_lock = threading.Lock()
        self._last_report = 0.0
        self._rate = _Rate()
        self.sha256: str | None = None  # set once verified
        self.resumed_from = 0
        self.restarts = 0  # times a server ignored Range and the download started over

    # -- control -----------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()
        with self._response_lock:
            response = self._response
        if response is None:
            return
        # Closing the response does not wake a read blocked on a stalled server; shutting
        # the socket down does (recv returns at once), so Cancel never waits for a timeout.
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already closed: the reader stops anyway
            pass

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- the work ----------------------------------------------------------------------
    def run(self) -> Path:
        """Download, verify and move into place; returns the final path. Raises DownloadError."""
        self._report(Phase.CONNECTING, 0, self.expected_size or 0, force=True)
        meta = self._metadata()
        size, sha = meta["size"], meta["sha256"]
        partial_dir = self.dest.parent / ".partial"
        partial_dir.mkdir(parents=True, exist_ok=True)
        part = partial_dir / f"{sha}.part"
        lock = FileLock(str(part) + ".lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise DownloadError(
                "busy",
                f"{self.label} is already being downloaded (by another Hearth window or "
                "command). Wait for it to finish.",
            ) from None
        try:
            (partial_dir / f"{sha}.json").write_text(
                json.dumps({"repo": self.repo, "file": self.filename, "commit": meta["commit"], "size": size})
            )
            self._transfer(meta["url"], part, size)
            self._verify(part, sha, size)
            os.replace(part, self.dest)
            (partial_dir / f"{sha}.json").unlink(missing_ok=True)
        finally:
            lock.release()
            Path(str(part) + ".lock").unlink(missing_ok=True)
        self.sha256 = sha
        self._report(Phase.DONE, size, size, force=True)
        return self.dest

    def _metadata(self) -> dict[str, Any]:
        from huggingface_hub import hf_hub_url

        endpoint = self._endpoint or hub_endpoint()
        url = hf_hub_url(self.repo, self.filename, revision=self.revision, endpoint=endpoint)
        where = f"{self.repo}/{self.filename}"

        def unreachable(e: BaseException) -> DownloadError:  # DNS, refused connection, TLS, timeout
            return DownloadError(
                "network",
                f"Could not reach {endpoint} to fetch {where}: {_short(e)}. "
                "Check the network connection and try again.",
            )

        with mapped({network_errors(): unreachable}):
            meta = self._hub_metadata(url, endpoint, where)
        size = meta.size
        etag = (meta.etag or "").strip('"').lower()
        if size is None:
            raise DownloadError(
                "server", f"{endpoint} did not say how big {where} is; Hearth will not download a file it cannot check."
            )
        if self.expected_size is not None and size != self.expected_size:
            raise DownloadError(
                "catalog_mismatch",
                f"{where} on the server is {size:,} bytes, but the catalog "
                f"expects {self.expected_size:,}. The file was changed upstream; "
                "Hearth will not download a file it cannot verify.",
            )
        server_sha = etag if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag) else None
        sha = self.expected_sha256
        if sha is None:
            if server_sha is None:
                raise DownloadError(
                    "unverifiable",
                    f"{endpoint} gave no sha256 for {where} (it is not an LFS file), "
                    "so Hearth cannot verify it and will not download it.",
                )
            sha = server_sha
        elif server_sha is not None and server_sha != sha:
            raise DownloadError(
                "catalog_mismatch",
                f"{where} on the server has sha256 {server_sha[:12]}…, but the "
                f"catalog expects {sha[:12]}…. The file was changed upstream; "
                "Hearth will not download a file it cannot verify.",
            )
        commit = meta.commit_hash or self.revision
        # Pin the commit: a repo updated during a long download must not mix two versions.
        pinned = hf_hub_url(self.repo, self.filename, revision=commit, endpoint=endpoint)
        return {"size": size, "sha256": sha, "commit": commit, "url": pinned}

    def _hub_metadata(self, url: str, endpoint: str, where: str) -> Any:
        """The file's metadata from the Hub, its errors turned into DownloadErrors a person can act on."""
        from huggingface_hub import get_hf_file_metadata
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            try:
                # No retries first: a refused connection or a bad name should fail in
                # seconds, not after huggingface-hub's backoff schedule (~20 s).
                meta = get_hf_file_metadata(url, token=self._token, endpoint=endpoint, retry_on_errors=False)
            except HfHubHTTPError as e:
                if getattr(getattr(e, "response", None), "status_code", None) not in _RETRY_STATUSES:
                    raise
                meta = get_hf_file_metadata(
                    url, token=self._token, endpoint=endpoint, retry_on_errors=True
                )  # busy: back off
        except GatedRepoError:
            raise DownloadError(
                "gated",
                f"{self.repo} is gated: accept its licence at https://huggingface.co/{self.repo}, "
                "then `hearth models login` (or set HF_TOKEN), and try again.",
            ) from None
        except RevisionNotFoundError:
            raise DownloadError("not_found", f"{self.repo} has no revision {self.revision!r}.") from None
        except RepositoryNotFoundError:
            raise DownloadError(
                "not_found",
                f"The repository {self.repo} was not found on {endpoint} (it may have been renamed or made private).",
            ) from None
        except EntryNotFoundError:
            raise DownloadError("not_found", f"{where} was not found on {endpoint}.") from None
        except HfHubHTTPError as e:
            status = getattr(getattr(e, "response", None), "status_code", None)
            if status in (401, 403):
                raise DownloadError(
                    "unauthorized",
                    f"{endpoint} refused access to {where} ({status}). Log in (`hearth models login`) or set HF_TOKEN.",
                ) from None
            raise DownloadError("server", f"{endpoint} answered with an error for {where}: {e}") from None
        return meta

    def _transfer(self, url: str, part: Path, size: int) -> None:
        from huggingface_hub import get_session
        from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined,unused-ignore]  # public, not in __all__ (strict mode refuses the re-export)

        done = part.stat().st_size if part.exists() else 0
        if done > size:  # not a prefix of this file: start over
            part.unlink()
            done = 0
        self.resumed_from = done
        self._rate.reset(done)
        fails = 0  # consecutive attempts that added nothing
        while done < size:
            self._check_cancel()
            before = done
            headers = build_hf_headers(token=self._token)
            headers["Accept-Encoding"] = "identity"  # byte offsets must be offsets in the file
            if done:
                headers["Range"] = f"bytes={done}-"
            try:
                with get_session().stream(
                    "GET", url, headers=headers, follow_redirects=True, timeout=_timeout()
                ) as response:
                    with self._response_lock:
                        self._response = response
                    done = self._receive(response, part, done, size)
            except _retryable() as e:  # dropped, stalled, 429/5xx: resume from what is on disk
                # (a bug is neither: it propagates, never retried or called "network")
                self._check_cancel()
                done = part.stat().st_size if part.exists() else 0
                fails = 1 if done > before else fails + 1
                if fails >= _MAX_ATTEMPTS_WITHOUT_PROGRESS:
                    raise DownloadError(
                        "network",
                        f"The download of {self.label} keeps failing ({_short(e)}). "
                        f"{done:,} of {size:,} bytes are kept; try again to resume.",
                    ) from None
                wait = e.wait if isinstance(e, _Retry) and e.wait is not None else 0.5 * 2 ** (fails - 1)
                self._sleep(min(8.0, wait))
            finally:
                with self._response_lock:
                    self._response = None

    def _receive(self, response: Any, part: Path, done: int, size: int) -> int:
        """Append the body to `part`; returns the bytes now on disk."""
        status = response.status_code
        if status in _RETRY_STATUSES:
            wait = _retry_after(response.headers.get("Retry-After"))
            raise _Retry(f"the server answered {status}", wait)
        if status == 416 and done == size:
            return done
        if status not in (200, 206):
            raise DownloadError("server", f"The server answered {status} while downloading {self.label}.")
        if status == 206 and not response.headers.get("Content-Range", "").startswith(f"bytes {done}-"):
            raise DownloadError("server", f"The server sent the wrong part of {self.label}.")
        note = ""
        if status == 200 and done:
            # The server ignored Range: appending would corrupt the file, so start over.
            done = 0
            self.restarts += 1
            note = "the server does not support resuming: starting over"
        mode = "r+b" if done else "wb"
        if not part.exists():
            mode = "wb"
        with part.open(mode) as f:
            f.seek(done)
            f.truncate()
            self._report(Phase.DOWNLOADING, done, size, force=True, note=note)
            for chunk in response.iter_bytes(CHUNK):
                self._check_cancel()
                if done + len(chunk) > size:
                    raise DownloadError(
                        "size_mismatch", f"The server sent more than the {size:,} bytes of {self.label}."
                    )
                try:
                    f.write(chunk)
                except OSError as e:
                    raise DownloadError(
                        "disk",
                        f"Could not write {part}: {e.strerror or e}. Free some disk space "
                        "and try again; the part already downloaded is kept.",
                    ) from None
                done += len(chunk)
                self._report(Phase.DOWNLOADING, done, size, note=note)
            f.flush()
            os.fsync(f.fileno())
        self._check_cancel()
        return done

    def _verify(self, part: Path, sha: str, size: int) -> None:
        checked = 0
        self._report(Phase.VERIFYING, 0, size, force=True)

        def on_bytes(n: int) -> None:
            nonlocal checked
            checked += n
            self._report(Phase.VERIFYING, checked, size)

        actual = sha256_of(part, on_bytes, lambda: self._cancel.is_set())
        if actual != sha:
            part.unlink(missing_ok=True)
            raise DownloadError(
                "hash_mismatch",
                f"{self.label} failed verification: its sha256 is {actual[:16]}…, "
                f"expected {sha[:16]}…. The damaged file was deleted; download it "
                "again.",
            )

    # -- helpers -----------------------------------------------------------------------
    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise DownloadError(
                "cancelled", f"Download of {self.label} stopped. What was downloaded is kept; download again to resume."
            )

    def _sleep(self, seconds: float) -> None:
        if self._cancel.wait(seconds):
            self._check_cancel()

    def _report(self, phase: Phase, done: int, total: int, *, force: bool = False, note: str = "") -> None:
        now = time.monotonic()
        if not force and now - self._last_report < _PROGRESS_EVERY_S and done < total:
            return
        self._last_report = now
        rate = self._rate.update(done, now) if phase is Phase.DOWNLOADING else 0.0
        self._on_progress(DownloadProgress(phase, done, total, rate, self.resumed_from, note))


class _Retry(Exception):
    """A retryable answer (429, 5xx); `wait` comes from Retry-After when the server gave one."""

    def __init__(self, why: str, wait: float | None) -> None:
        super().__init__(why)
        self.wait = wait


class _Rate:
    """Bytes per second over a sliding window of about three seconds."""

    def __init__(self) -> None:
        self._samples: list[tuple[float, int]] = []

    def reset(self, done: int) -> None:
        self._samples = [(time.monotonic(), done)]

    def update(self, done: int, now: float) -> float:
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[0][0] > 3.0:
            self._samples.pop(0)
        t0, d0 = self._samples[0]
        return (done - d0) / (now - t0) if now > t0 else 0.0


def _retryable() -> tuple[type[BaseException], ...]:
    """What a transfer attempt may fail with and still be worth retrying."""
    return (*network_errors(), _Retry)


def _timeout() -> Any:
    from huggingface_hub import get_session

    timeout_type = type(get_session().timeout)
    return timeout_type(_READ_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, min(60.0, float(value))) if value else None
    except ValueError:
        return None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]
