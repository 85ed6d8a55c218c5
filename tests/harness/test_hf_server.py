"""The local Hub server (tests/hf_server.py) answers huggingface-hub's own client functions
the way the real Hub does, and each fault does what it says. No network."""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hf_server import HubFile, HubServer

REPO = "hearth-test/tiny-model"
NAME = "model.Q4.gguf"
DATA = random.Random(7).randbytes(3 * 1024 * 1024)
SMALL = random.Random(8).randbytes(100_000)


@pytest.fixture
def hub() -> Iterator[HubServer]:
    files = [
        HubFile(REPO, NAME, DATA),
        HubFile(REPO, "small.bin", SMALL),
        HubFile("hearth-test/gated", NAME, SMALL, gated=True),
    ]
    with HubServer(files) as server:
        yield server


def cdn_get(hub: HubServer, data: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A raw GET of a file body from the CDN: status, headers, body (whole or cut short)."""
    file = next(f for f in hub.files if f.data == data)
    conn = http.client.HTTPConnection(urlsplit(hub.cdn_endpoint).netloc, timeout=10)
    try:
        conn.request("GET", f"/cdn/{file.sha256}", headers=headers or {})
        resp = conn.getresponse()
        try:
            body = resp.read()
        except http.client.IncompleteRead as cut:
            body = cut.partial
        return resp.status, dict(resp.headers), body
    finally:
        conn.close()


def test_hf_hub_download_gives_identical_bytes(hub: HubServer, tmp_path: Path) -> None:
    path = hf_hub_download(REPO, NAME, endpoint=hub.endpoint, local_dir=tmp_path / "out", cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == DATA
    # One HEAD answered by the redirect (not followed: the CDN is another origin), one GET of the body.
    assert [(r.method, r.status) for r in hub.requests] == [("HEAD", 302), ("GET", 200)]
    assert hub.bytes_served() == len(DATA)


def test_metadata_names_size_sha256_commit_and_cdn_location(hub: HubServer) -> None:
    file = hub.files[0]
    meta = get_hf_file_metadata(hf_hub_url(REPO, NAME, revision="main", endpoint=hub.endpoint))
    assert (meta.size, meta.etag, meta.commit_hash) == (len(DATA), file.sha256, file.commit)
    assert meta.location == f"{hub.cdn_endpoint}/cdn/{file.sha256}"
    # The commit id works as a revision too.
    by_commit = get_hf_file_metadata(hf_hub_url(REPO, NAME, revision=file.commit, endpoint=hub.endpoint))
    assert by_commit.etag == file.sha256


@pytest.mark.parametrize(
    ("range_", "status", "expected", "content_range"),
    [
        (None, 200, SMALL, None),
        ("bytes=1000-", 206, SMALL[1000:], "bytes 1000-99999/100000"),
        ("bytes=10-19", 206, SMALL[10:20], "bytes 10-19/100000"),
        ("bytes=-50", 206, SMALL[-50:], "bytes 99950-99999/100000"),
        ("bytes=99999-", 206, SMALL[-1:], "bytes 99999-99999/100000"),
        ("bytes=100000-", 416, None, "bytes */100000"),
        ("bytes=20-10", 200, SMALL, None),
    ],
    ids=["no-range", "open-ended", "closed", "suffix", "last-byte", "past-end", "reversed-ignored"],
)
def test_range(
    hub: HubServer, range_: str | None, status: int, expected: bytes | None, content_range: str | None
) -> None:
    got_status, headers, body = cdn_get(hub, SMALL, {"Range": range_} if range_ else None)
    assert got_status == status
    assert headers.get("Content-Range") == content_range
    if expected is not None:
        assert body == expected
        assert headers["Accept-Ranges"] == "bytes"
        assert int(headers["Content-Length"]) == len(expected)


def test_ignore_range_answers_200_with_the_whole_file(hub: HubServer) -> None:
    hub.faults.ignore_range = True
    status, headers, body = cdn_get(hub, SMALL, {"Range": "bytes=1000-"})
    assert (status, body, headers.get("Content-Range")) == (200, SMALL, None)


@pytest.mark.parametrize("range_", [None, "bytes=40000-"], ids=["whole", "ranged"])
def test_corrupt_at_flips_exactly_one_byte(hub: HubServer, range_: str | None) -> None:
    hub.faults.corrupt_at = 50_000
    _, _, body = cdn_get(hub, SMALL, {"Range": range_} if range_ else None)
    start = 40_000 if range_ else 0
    diffs = [i + start for i, (a, b) in enumerate(zip(body, SMALL[start:], strict=True)) if a != b]
    assert diffs == [50_000]
    assert body[50_000 - start] == SMALL[50_000] ^ 0xFF


def test_drop_after_cuts_the_connection_then_serves_normally(hub: HubServer) -> None:
    hub.faults.drop_after = 30_000
    assert cdn_get(hub, SMALL)[2] == SMALL[:30_000]  # Content-Length promised more: IncompleteRead
    assert hub.faults.drop_times == 0
    assert cdn_get(hub, SMALL)[2] == SMALL
    assert [r.body_bytes for r in hub.requests] == [30_000, len(SMALL)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("chunk_size", "resume_at"),
    [(constants.DOWNLOAD_CHUNK_SIZE, 0), (64 * 1024, 15 * 64 * 1024)],
    ids=["default-10MiB-chunks-restart", "64KiB-chunks-resume"],
)
def test_hf_retries_a_dropped_download(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_size: int, resume_at: int
) -> None:
    """hf resumes from the bytes it has handed out, and it hands them out in DOWNLOAD_CHUNK_SIZE
    pieces: a drop inside the first 10 MiB loses everything and the retry asks for the whole file."""
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", chunk_size)
    hub.faults.drop_after = 1_000_000
    path = hf_hub_download(REPO, NAME, endpoint=hub.endpoint, local_dir=tmp_path / "out", cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == DATA
    gets = [(r.range, r.status, r.body_bytes) for r in hub.requests if r.method == "GET"]
    retry = (f"bytes={resume_at}-", 206) if resume_at else (None, 200)
    assert gets == [(None, 200, 1_000_000), (*retry, len(DATA) - resume_at)]


@pytest.mark.parametrize("status", [500, 429], ids=["server-error", "rate-limited"])
def test_status_fault_answers_body_gets_only(hub: HubServer, status: int) -> None:
    hub.faults.status = status
    got, headers, _ = cdn_get(hub, SMALL)
    assert got == status
    assert headers.get("Retry-After") == ("1" if status == 429 else None)
    assert get_hf_file_metadata(hf_hub_url(REPO, NAME, endpoint=hub.endpoint)).size == len(DATA)


def test_stall_holds_the_body_until_release(hub: HubServer) -> None:
    hub.faults.stall_after = 20_000
    result: list[bytes] = []
    reader = threading.Thread(target=lambda: result.append(cdn_get(hub, SMALL)[2]))
    reader.start()
    deadline = time.monotonic() + 5
    while hub.bytes_served() < 20_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert hub.bytes_served() == 20_000 and reader.is_alive()
    hub.release()
    reader.join(5)
    assert result == [SMALL]


def test_exit_is_prompt_with_a_stalled_connection_open(tmp_path: Path) -> None:
    with HubServer([HubFile(REPO, NAME, SMALL)]) as hub:
        hub.faults.stall_after = 10
        conn = http.client.HTTPConnection(urlsplit(hub.cdn_endpoint).netloc, timeout=10)
        conn.request("GET", f"/cdn/{hub.files[0].sha256}")
        resp = conn.getresponse()
        assert resp.read(10) == SMALL[:10]
        started = time.monotonic()
    try:
        assert time.monotonic() - started < 1.0
        # Leaving released the stall; the body then ends short of its length.
        with pytest.raises(http.client.IncompleteRead):
            resp.read()
    finally:
        conn.close()


@pytest.mark.slow
def test_throttle_paces_the_body_and_a_cancel_is_quiet(hub: HubServer, capfd: pytest.CaptureFixture[str]) -> None:
    hub.faults.rate_bytes_per_s = 200_000  # SMALL takes ~0.5 s
    started = time.monotonic()
    assert cdn_get(hub, SMALL)[2] == SMALL
    assert 0.4 < time.monotonic() - started < 3

    conn = http.client.HTTPConnection(urlsplit(hub.cdn_endpoint).netloc, timeout=10)
    conn.request("GET", f"/cdn/{hub.files[1].sha256}")
    conn.getresponse().read(5_000)
    conn.close()  # cancel mid-body
    time.sleep(0.6)  # long enough for the whole body, had the server not seen the cancel
    assert hub.requests[-1].body_bytes < len(SMALL) // 2
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("repo", "filename", "revision", "error"),
    [
        ("nobody/nothing", NAME, "main", RepositoryNotFoundError),
        (REPO, "missing.gguf", "main", EntryNotFoundError),
        (REPO, NAME, "no-such-branch", RevisionNotFoundError),
        ("hearth-test/gated", NAME, "main", GatedRepoError),
    ],
    ids=["unknown-repo", "unknown-file", "unknown-revision", "gated"],
)
def test_errors_map_to_huggingface_hub_exceptions(
    hub: HubServer, tmp_path: Path, repo: str, filename: str, revision: str, error: type[Exception]
) -> None:
    with pytest.raises(error) as raised:
        get_hf_file_metadata(hf_hub_url(repo, filename, revision=revision, endpoint=hub.endpoint))
    assert error is GatedRepoError or not isinstance(raised.value, GatedRepoError)
    with pytest.raises(error):
        hf_hub_download(
            repo, filename, revision=revision, endpoint=hub.endpoint, local_dir=tmp_path / "o", cache_dir=tmp_path / "c"
        )
    assert hub.bytes_served() == 0
