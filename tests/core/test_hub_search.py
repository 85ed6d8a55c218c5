"""Searching the Hub and listing one repo's quantizations, against a local fake Hub
(tests/hf_server.py), including every way the Hub can fail: each a clear HubError, in bounded time."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hf_server import HubFile, HubRepo, HubServer

from app.core.models.hub_client import HubClient, HubError
from app.core.models.hub_fit import fit_quants, recommend
from app.core.models.hub_names import HubFileEntry, group_quants, parse_ref, quant_of
from engine.fit import Verdict

GGUF = b"GGUF" + bytes(1000)


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    files = [
        HubFile("bartowski/Qwen2.5-7B-Instruct-GGUF", "Qwen2.5-7B-Instruct-Q4_K_M.gguf", GGUF + b"a"),
        HubFile("bartowski/Qwen2.5-7B-Instruct-GGUF", "Qwen2.5-7B-Instruct-Q8_0-00001-of-00002.gguf", GGUF + b"bb"),
        HubFile("bartowski/Qwen2.5-7B-Instruct-GGUF", "Qwen2.5-7B-Instruct-Q8_0-00002-of-00002.gguf", GGUF + b"ccc"),
        HubFile("bartowski/Qwen2.5-7B-Instruct-GGUF", "README.md", b"# card"),
        HubFile("someone/qwen-tiny-GGUF", "qwen-tiny.q4_0.gguf", GGUF),
        HubFile("someone/qwen-safetensors", "model.safetensors", b"weights"),
        HubFile("meta/Llama-Gated-GGUF", "llama-Q4_K_M.gguf", GGUF, gated=True),
    ]
    repos = [
        HubRepo("bartowski/Qwen2.5-7B-Instruct-GGUF", downloads=90_000, likes=40, last_modified="2025-06-01T00:00:00Z"),
        HubRepo("someone/qwen-tiny-GGUF", downloads=10, likes=400, license=None, last_modified="2026-02-01T00:00:00Z"),
        HubRepo("someone/qwen-safetensors", downloads=10**7),
    ]
    with HubServer(files, repos) as server:
        yield server


@pytest.fixture(autouse=True)
def healthy(hub: HubServer) -> Iterator[None]:
    yield
    hub.api_faults.status, hub.api_faults.delay_s, hub.api_faults.bad_json = None, 0.0, False


def test_search_finds_gguf_repos_sorted_as_asked(hub: HubServer) -> None:
    client = HubClient(endpoint=hub.endpoint)
    by_downloads = client.search("qwen")
    assert [r.repo for r in by_downloads] == ["bartowski/Qwen2.5-7B-Instruct-GGUF", "someone/qwen-tiny-GGUF"]
    top = by_downloads[0]
    assert (top.author, top.downloads, top.likes, top.license) == ("bartowski", 90_000, 40, "apache-2.0")
    assert top.last_modified is not None and top.last_modified.startswith("2025-06-01")
    assert client.search("qwen", sort="likes")[0].repo == "someone/qwen-tiny-GGUF"
    assert client.search("qwen", sort="recent")[0].repo == "someone/qwen-tiny-GGUF"
    assert client.search("qwen", limit=1) == by_downloads[:1]
    assert client.search("no such words") == []


def test_search_answers_within_300_ms_of_the_hub(hub: HubServer) -> None:
    client = HubClient(endpoint=hub.endpoint)
    client.search("qwen")  # the session's first connection
    started = time.perf_counter()
    client.search("qwen 7b")
    elapsed = time.perf_counter() - started
    print(f"search round trip against the local Hub: {elapsed * 1000:.1f} ms")
    assert elapsed < 0.3


def test_a_repos_files_are_grouped_by_quantization_with_split_parts_as_one(hub: HubServer) -> None:
    listing = HubClient(endpoint=hub.endpoint).repo_files("bartowski/Qwen2.5-7B-Instruct-GGUF")
    assert [q.quant for q in listing.quants] == ["Q4_K_M", "Q8_0"]
    q8 = listing.quants[1]
    assert q8.split and q8.size == 2 * len(GGUF) + 5 and q8.first.name.endswith("-00001-of-00002.gguf")
    assert all(f.sha256 is not None and len(f.sha256) == 64 for f in q8.files)
    assert listing.other_files == 1 and listing.commit is not None


@pytest.mark.parametrize(
    ("name", "quant"),
    [
        ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("llama-2-7b.q8_0.gguf", "Q8_0"),
        ("Q5_K_S/model-Q5_K_S-00001-of-00003.gguf", "Q5_K_S"),
        ("phi-3-mini-IQ4_XS.gguf", "IQ4_XS"),
        ("gemma-2b-f16.gguf", "F16"),
        ("model-BF16.gguf", "BF16"),
        ("model.gguf", None),
    ],
)
def test_quantizations_are_read_from_file_names(name: str, quant: str | None) -> None:
    assert quant_of(name) == quant


def test_hub_names_are_parsed_and_bad_ones_refused() -> None:
    ref = parse_ref("hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M")
    assert ref is not None and (ref.repo, ref.selector, ref.is_file) == (
        "bartowski/Qwen2.5-7B-Instruct-GGUF",
        "Q4_K_M",
        False,
    )
    file_ref = parse_ref("huggingface.co/o/r:r-Q8_0.gguf")
    assert file_ref is not None and file_ref.is_file
    for bad in ("o/r", "hf.co/o", "hf.co/o/r/x", "hf.co/../r", "hf.co/o/r:", "hf.co/o/r:a b"):
        assert parse_ref(bad) is None, bad


def test_incomplete_split_models_and_projectors_are_left_out() -> None:
    files = [
        HubFileEntry("m-Q4_0-00001-of-00003.gguf", 10, "a" * 64),
        HubFileEntry("m-Q4_0-00003-of-00003.gguf", 10, "b" * 64),
        HubFileEntry("mmproj-m-f16.gguf", 10, "c" * 64),
        HubFileEntry("m-Q6_K.gguf", 30, "d" * 64),
    ]
    assert [q.quant for q in group_quants(files)] == ["Q6_K"]


def test_the_largest_quantization_that_fits_comfortably_is_recommended() -> None:
    gb = 10**9
    quants = group_quants(
        [
            HubFileEntry(f"m-{q}.gguf", int(s * gb), "0" * 64)
            for q, s in (("Q2_K", 1), ("Q4_K_M", 2), ("Q8_0", 4), ("F16", 5))
        ]
    )
    fits = fit_quants(quants, n_ctx=4096, available_bytes=8 * gb)
    assert {f.quant.quant: f.verdict for f in fits} == {
        "Q2_K": Verdict.FITS, "Q4_K_M": Verdict.FITS, "Q8_0": Verdict.FITS, "F16": Verdict.FITS,
    }  # fmt: skip
    assert all(f.basis == "size" and "rough guess" in f.message for f in fits)
    best = recommend(fits)
    assert best is not None and best.quant.quant == "Q8_0"  # F16 fits too, at twice the memory for little
    assert recommend(fit_quants(quants, n_ctx=4096, available_bytes=gb // 2)) is None


def test_a_gated_repo_says_where_to_accept_its_terms_and_how_to_log_in(hub: HubServer) -> None:
    with pytest.raises(HubError) as e:
        HubClient(endpoint=hub.endpoint).repo_files("meta/Llama-Gated-GGUF")
    assert e.value.code == "gated"
    assert "accept its terms at https://huggingface.co/meta/Llama-Gated-GGUF" in e.value.message
    assert "`hearth models login`" in e.value.message
    listing = HubClient(endpoint=hub.endpoint, token="hf_secret_token").repo_files("meta/Llama-Gated-GGUF")
    assert [q.quant for q in listing.quants] == ["Q4_K_M"]
    assert "Bearer hf_secret_token" in hub.authorizations


def test_a_missing_repo_is_named(hub: HubServer) -> None:
    with pytest.raises(HubError) as e:
        HubClient(endpoint=hub.endpoint).repo_files("nobody/nothing-GGUF")
    assert e.value.code == "not_found" and "nobody/nothing-GGUF" in e.value.message


def test_429_says_when_to_try_again(hub: HubServer) -> None:
    hub.api_faults.status = 429
    with pytest.raises(HubError) as e:
        HubClient(endpoint=hub.endpoint).search("qwen")
    assert e.value.code == "rate_limited" and e.value.retry_after_s == 2 and "in 2 s" in e.value.message


def test_an_answer_that_is_not_json_is_said_so(hub: HubServer) -> None:
    hub.api_faults.bad_json = True
    with pytest.raises(HubError) as e:
        HubClient(endpoint=hub.endpoint).search("qwen")
    assert e.value.code == "bad_answer" and "not JSON" in e.value.message


def test_a_hub_that_does_not_answer_is_given_up_on_in_bounded_time(hub: HubServer) -> None:
    hub.api_faults.delay_s = 5.0
    started = time.monotonic()
    with pytest.raises(HubError) as e:
        HubClient(endpoint=hub.endpoint, read_timeout_s=0.3).search("qwen")
    assert e.value.code == "slow" and time.monotonic() - started < 1.5


def test_no_network_is_said_plainly_and_fast() -> None:
    started = time.monotonic()
    with pytest.raises(HubError) as e:
        HubClient(endpoint="http://127.0.0.1:9").search("qwen")  # nothing listens on the discard port
    assert e.value.code == "network" and "needs the network" in e.value.message
    assert time.monotonic() - started < 2


def test_the_token_never_shows_in_a_message_or_a_repr(hub: HubServer) -> None:
    client = HubClient(endpoint=hub.endpoint, token="hf_do_not_show_me")
    assert "hf_do_not_show_me" not in repr(client)
    hub.api_faults.status = 403
    with pytest.raises(HubError) as e:
        client.repo_files("bartowski/Qwen2.5-7B-Instruct-GGUF")
    assert e.value.code == "unauthorized" and "hf_do_not_show_me" not in str(e.value)
