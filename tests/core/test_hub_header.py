"""The GGUF header read over HTTP Range before any download, against a local fake Hub serving
the bundled model's real bytes (and a rebuilt copy that claims an architecture llama.cpp lacks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf_corpus import STRING, enc_kv, enc_str, layout_of, rebuild
from hf_server import HubFile, HubServer

from app.core.models.hub_client import HubClient
from app.core.models.hub_fit import fit_quants
from app.core.models.hub_header import read_remote_header
from app.core.models.hub_pull import discover
from engine.errors import ModelLoadError
from engine.fit import Verdict

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ODD = "hearth-test/Unknown-Arch-GGUF"
ODD_FILE = "odd-Q4_1.gguf"


@pytest.fixture(scope="module")
def hub(model_path: Path) -> Iterator[HubServer]:
    data = model_path.read_bytes()
    lay = layout_of(model_path)
    head, total = rebuild(
        lay, replace={"general.architecture": enc_kv("general.architecture", STRING, enc_str("mamba9000"))}
    )
    odd = head + bytes(total - len(head))  # the weights' length of zeros: only the header is ever read
    with HubServer([HubFile(REPO, FILE, data), HubFile(ODD, ODD_FILE, odd)]) as server:
        yield server


def test_the_bundled_models_header_is_read_in_under_2_mb_of_its_98(hub: HubServer) -> None:
    before = hub.bytes_served()
    header = read_remote_header(HubClient(endpoint=hub.endpoint), REPO, FILE)
    served = hub.bytes_served() - before
    print(f"header read: {served:,} bytes of {header.info.size_bytes:,} in {header.requests} Range requests")
    assert served == header.bytes_downloaded < 2_000_000
    info = header.info
    assert (info.architecture, info.context_length, info.quantisation) == ("llama", 8192, "Q4_1")
    assert info.size_bytes == 98_362_432 and info.block_count == 30
    assert info.chat_template is not None and "<|im_start|>" in info.chat_template
    assert header.support == "supported" and header.runnable
    # Every request asked for a part, none of it past the header's first 2 MB.
    cdn = [r for r in hub.requests if r.path.startswith("/cdn/") and r.method == "GET"]
    assert cdn and all(r.range is not None and int(r.range.split("-")[1]) < 2_000_000 for r in cdn)


def test_the_fit_of_every_quantization_comes_from_the_one_header(hub: HubServer) -> None:
    plan = discover(HubClient(endpoint=hub.endpoint), f"hf.co/{REPO}", n_ctx=4096, available_bytes=16 * 10**9)
    assert plan.chosen.quant == "Q4_1" and plan.model_id == f"hf.co/{REPO}:Q4_1"
    assert plan.chosen_fit.basis == "header" and plan.chosen_fit.verdict is Verdict.FITS
    assert plan.recommended is not None and plan.recommended.quant == plan.chosen
    # Too little memory: the same header says so.
    tight = fit_quants(plan.listing.quants, n_ctx=4096, available_bytes=300 * 10**6, header=plan.header.info,
                       header_quant="Q4_1")  # fmt: skip
    assert tight[0].verdict is Verdict.TOO_BIG and "Too big" in tight[0].message


def test_an_architecture_this_build_cannot_run_is_said_before_any_download(hub: HubServer) -> None:
    header = read_remote_header(HubClient(endpoint=hub.endpoint), ODD, ODD_FILE)
    assert header.info.architecture == "mamba9000"
    assert header.support == "unsupported" and not header.runnable
    assert "cannot run it" in header.support_message()
    assert header.bytes_downloaded < 2_000_000


def test_a_header_past_the_cap_is_refused_not_fetched(hub: HubServer) -> None:
    before = hub.bytes_served()
    with pytest.raises(ModelLoadError) as e:
        read_remote_header(HubClient(endpoint=hub.endpoint), REPO, FILE, cap=1 << 20)
    assert e.value.code == "header_too_big" and "1 MB" in e.value.message
    assert hub.bytes_served() - before <= 1 << 20
