"""Model downloads against a real local Hugging Face Hub server (tests/hf_server.py).

Every test runs app.models.download through huggingface-hub's real client code (URL,
metadata HEAD, session) and checks what a person would notice: the file arrives intact
and verified, progress is reported, Cancel stops at once, the next try resumes where the
last stopped, and damage or a misbehaving server never leaves an unverified model behind.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
from hf_server import HubFile, HubServer

from app.core.errors import DownloadError
from app.core.models.download import Download, DownloadProgress, Phase

SIZE = 3_000_000
DATA = os.urandom(SIZE)
REPO, FILE = "hearth-test/tiny-GGUF", "tiny-q4.gguf"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def hub() -> HubServer:
    with HubServer([HubFile(REPO, FILE, DATA), HubFile("hearth-test/gated", FILE, DATA, gated=True)]) as server:
        yield server


def make(
    hub: HubServer,
    dest_dir: Path,
    progress: list[DownloadProgress] | None = None,
    *,
    sha: str | None = SHA,
    size: int | None = SIZE,
    repo: str = REPO,
    filename: str = FILE,
) -> Download:
    return Download(
        repo=repo,
        filename=filename,
        dest=dest_dir / filename,
        expected_sha256=sha,
        expected_size=size,
        endpoint=hub.endpoint,
        on_progress=progress.append if progress is not None else None,
    )


def partial_files(dest_dir: Path) -> list[Path]:
    folder = dest_dir / ".partial"
    return sorted(folder.glob("*.part")) if folder.is_dir() else []


def ranges(hub: HubServer) -> list[str | None]:
    return [r.range for r in hub.requests if r.method == "GET" and r.path.startswith("/cdn/")]


def cancel_when(dl: Download, bytes_on_disk: int, dest_dir: Path) -> threading.Thread:
    """Cancel `dl` once its partial file holds at least `bytes_on_disk` bytes."""

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            parts = partial_files(dest_dir)
            if parts and parts[0].stat().st_size >= bytes_on_disk:
                dl.cancel()
                return
            time.sleep(0.005)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


@pytest.mark.slow
def test_a_full_download_reports_progress_and_ends_verified_in_place(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.rate_bytes_per_s = 6_000_000  # about half a second: several progress reports
    progress: list[DownloadProgress] = []
    path = make(hub, tmp_path, progress).run()
    assert path == tmp_path / FILE and path.read_bytes() == DATA
    phases = [p.phase for p in progress]
    assert phases[0] is Phase.CONNECTING and phases[-1] is Phase.DONE
    assert Phase.VERIFYING in phases and phases.index(Phase.VERIFYING) > phases.index(Phase.DOWNLOADING)
    downloading = [p for p in progress if p.phase is Phase.DOWNLOADING]
    assert len(downloading) >= 3
    assert [p.done_bytes for p in downloading] == sorted(p.done_bytes for p in downloading)
    assert all(p.total_bytes == SIZE for p in downloading)
    assert any(p.bytes_per_s > 0 and p.eta_s is not None for p in downloading)
    assert partial_files(tmp_path) == []  # nothing half-done left behind
    assert ranges(hub) == [None]


@pytest.mark.slow
def test_cancel_then_resume_fetches_only_the_rest_and_verifies(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.rate_bytes_per_s = 2_000_000
    first = make(hub, tmp_path)
    cancel_when(first, SIZE // 3, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as stopped:
        first.run()
    assert stopped.value.code == "cancelled" and "resume" in stopped.value.message
    assert time.monotonic() - t0 < 5
    assert not (tmp_path / FILE).exists()  # nothing unverified is offered
    (part,) = partial_files(tmp_path)
    kept = part.stat().st_size
    assert SIZE // 3 <= kept < SIZE
    assert DATA.startswith(part.read_bytes())

    hub.faults.rate_bytes_per_s = None
    progress: list[DownloadProgress] = []
    second = make(hub, tmp_path, progress)
    assert second.run().read_bytes() == DATA
    assert second.resumed_from == kept
    assert ranges(hub)[-1] == f"bytes={kept}-"
    assert hub.requests[-1].body_bytes == SIZE - kept  # only the rest crossed the wire
    assert progress[1].phase is Phase.DOWNLOADING and progress[1].done_bytes == kept


def test_cancel_is_prompt_even_when_the_server_stalls(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.stall_after = 500_000
    dl = make(hub, tmp_path)
    cancel_when(dl, 400_000, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="stopped"):
        dl.run()
    assert time.monotonic() - t0 < 3  # not the 30 s read timeout


@pytest.mark.slow
def test_a_server_that_ignores_range_restarts_cleanly_instead_of_appending(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.rate_bytes_per_s = 2_000_000
    first = make(hub, tmp_path)
    cancel_when(first, SIZE // 2, tmp_path)
    with pytest.raises(DownloadError):
        first.run()
    hub.faults.rate_bytes_per_s = None
    hub.faults.ignore_range = True
    progress: list[DownloadProgress] = []
    second = make(hub, tmp_path, progress)
    assert second.run().read_bytes() == DATA  # a naive append would be 1.5x the size
    assert second.restarts == 1
    assert any("starting over" in p.note for p in progress)


def test_a_corrupted_byte_is_caught_and_the_file_deleted(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.corrupt_at = 1_234_567
    with pytest.raises(DownloadError) as failed:
        make(hub, tmp_path).run()
    assert failed.value.code == "hash_mismatch"
    assert "deleted" in failed.value.message and "failed verification" in failed.value.message
    assert not (tmp_path / FILE).exists() and partial_files(tmp_path) == []
    hub.faults.corrupt_at = None
    assert make(hub, tmp_path).run().read_bytes() == DATA  # and the next try starts clean


@pytest.mark.slow
def test_a_dropped_connection_resumes_by_itself(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.drop_after, hub.faults.drop_times = 1_000_000, 2
    dl = make(hub, tmp_path)
    assert dl.run().read_bytes() == DATA
    assert ranges(hub)[0] is None and ranges(hub)[1].startswith("bytes=")
    assert len(ranges(hub)) == 3


@pytest.mark.slow
def test_a_connection_that_keeps_dropping_gives_up_and_keeps_what_arrived(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.drop_after, hub.faults.drop_times = 1_000_000, 10**6
    with pytest.raises(DownloadError) as failed:
        make(hub, tmp_path).run()
    assert failed.value.code == "network" and "try again to resume" in failed.value.message
    (part,) = partial_files(tmp_path)
    assert part.stat().st_size >= 900_000
    hub.faults.drop_after = None
    assert make(hub, tmp_path).run().read_bytes() == DATA


@pytest.mark.slow
def test_429_with_retry_after_is_waited_out(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.status = 429

    def clear() -> None:
        time.sleep(0.3)
        hub.faults.status = None

    threading.Thread(target=clear, daemon=True).start()
    t0 = time.monotonic()
    assert make(hub, tmp_path).run().read_bytes() == DATA
    assert time.monotonic() - t0 >= 0.9  # Retry-After: 1 was honoured


@pytest.mark.slow
def test_two_downloads_of_one_file_never_share_the_partial_file(hub: HubServer, tmp_path: Path) -> None:
    hub.faults.rate_bytes_per_s = 3_000_000
    first = make(hub, tmp_path)
    result: dict[str, object] = {}
    worker = threading.Thread(target=lambda: result.setdefault("path", first.run()), daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not partial_files(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(DownloadError) as busy:
        make(hub, tmp_path).run()
    assert busy.value.code == "busy" and "already being downloaded" in busy.value.message
    worker.join(20)
    assert result["path"] == tmp_path / FILE and (tmp_path / FILE).read_bytes() == DATA


def test_a_file_changed_upstream_is_refused_before_any_byte_is_fetched(hub: HubServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as refused:
        make(hub, tmp_path, sha="0" * 64).run()
    assert refused.value.code == "catalog_mismatch" and "changed upstream" in refused.value.message
    with pytest.raises(DownloadError, match="expects 2,999,999"):
        make(hub, tmp_path, size=SIZE - 1).run()
    assert hub.bytes_served() == 0


def test_the_servers_hash_is_used_when_the_catalog_has_none(hub: HubServer, tmp_path: Path) -> None:
    dl = make(hub, tmp_path, sha=None, size=None)
    assert dl.run().read_bytes() == DATA
    assert dl.sha256 == SHA
    hub.faults.corrupt_at = 10
    (tmp_path / FILE).unlink()
    with pytest.raises(DownloadError, match="failed verification"):
        make(hub, tmp_path, sha=None, size=None).run()


@pytest.mark.parametrize(
    ("repo", "filename", "code", "words"),
    [
        ("hearth-test/nope", FILE, "not_found", "repository hearth-test/nope was not found"),
        (REPO, "missing.gguf", "not_found", "missing.gguf was not found"),
        ("hearth-test/gated", FILE, "gated", "accept its licence"),
    ],
    ids=["unknown-repo", "unknown-file", "gated"],
)
def test_hub_errors_become_messages_a_person_can_act_on(
    hub: HubServer, tmp_path: Path, repo: str, filename: str, code: str, words: str
) -> None:
    with pytest.raises(DownloadError) as failed:
        make(hub, tmp_path, repo=repo, filename=filename).run()
    assert failed.value.code == code
    assert words in failed.value.message


def test_an_unreachable_hub_says_so(tmp_path: Path) -> None:
    dl = Download(repo=REPO, filename=FILE, dest=tmp_path / FILE, expected_sha256=SHA, endpoint="http://127.0.0.1:9")
    with pytest.raises(DownloadError) as failed:
        dl.run()
    assert failed.value.code == "network" and "Could not reach http://127.0.0.1:9" in failed.value.message


def test_a_bug_is_never_retried_or_called_a_network_problem(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A programming error while receiving propagates as itself after one request; before
    the error tree, any exception was retried four times and reported as "network"."""

    def broken(self: Download, *args: object) -> int:
        raise TypeError("a bug in the receiving code")

    monkeypatch.setattr(Download, "_receive", broken)
    with pytest.raises(TypeError, match="a bug"):
        make(hub, tmp_path).run()
    assert len(ranges(hub)) == 1
