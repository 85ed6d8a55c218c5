"""Pulling by name through the core (app.core.models.hub_pull), in-process against the fake Hub:
a split model's parts download, verify and list as one model; the token goes to the Hub, never
to its CDN."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hf_server import HubFile, HubServer

from app.core.models import ModelLibrary
from app.core.models.catalog import load_catalog
from app.core.models.hub_client import HubClient
from app.core.models.hub_names import parse_ref
from app.core.models.hub_pull import discover, downloads, find_installed, record

pytestmark = pytest.mark.slow  # a 98 MB model crosses the loopback twice

REPO = "hearth-test/Split-GGUF"
PART1 = "Q4_1/tiny-Q4_1-00001-of-00002.gguf"
PART2 = "Q4_1/tiny-Q4_1-00002-of-00002.gguf"
TAIL = b"GGUF" + bytes(range(256)) * 64  # the second part: pulled and verified, never loaded here


@pytest.fixture(scope="module")
def hub(model_path: Path) -> Iterator[HubServer]:
    data = model_path.read_bytes()
    with HubServer([HubFile(REPO, PART1, data), HubFile(REPO, PART2, TAIL)]) as server:
        yield server


def test_a_split_model_pulls_all_its_parts_and_lists_as_one(hub: HubServer, data_dir: Path, model_path: Path) -> None:
    library = ModelLibrary(data_dir, catalog=load_catalog(), bundled_path=model_path)
    client = HubClient(endpoint=hub.endpoint, token="hf_never_to_the_cdn")
    plan = discover(client, f"hf.co/{REPO}:Q4_1", n_ctx=4096, available_bytes=16 * 10**9)
    assert plan.chosen.split and [f.name for f in plan.chosen.files] == [PART1, PART2]
    assert plan.chosen_fit.basis == "scaled"  # the first part's header holds only its own tensors
    for download in downloads(library, plan, token=client.token):
        download.run()
    model = record(library, plan)
    folder = data_dir / "models" / "hf" / REPO
    assert (folder / PART1.rsplit("/", 1)[1]).read_bytes() == model_path.read_bytes()
    assert (folder / PART2.rsplit("/", 1)[1]).read_bytes() == TAIL
    assert model.id == f"hf.co/{REPO}:Q4_1" and model.installed and model.source == "hub"
    assert model.size_bytes == model_path.stat().st_size + len(TAIL)
    assert model.path == folder / PART1.rsplit("/", 1)[1]  # llama.cpp is given the first part
    assert library.resolve(model.id) == model.path
    ref = parse_ref(f"hf.co/{REPO}")
    assert ref is not None and find_installed(library, ref) == model
    assert library.verify(model.id).ok
    assert "Bearer hf_never_to_the_cdn" in hub.authorizations and hub.cdn_authorizations == []
    assert library.remove(model.id) == model.size_bytes
    assert not any(folder.glob("*.gguf")) and all(m.id != model.id for m in library.models())
