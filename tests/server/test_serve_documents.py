"""`hearth serve` and a person's documents (issue 25), used as clients use it: POST /v1/embeddings
through the official `openai` client (float and base64) and its errors through httpx, and chat
completions that name collections (`"hearth": {"collections": [...]}`) answered with passages
and their sources, on the local model and on a provider. The collection is built first with the
real CLI (`hearth docs add`) in the server's data dir; the vectors are checked against
engine.embedder.Embedder run here on the same model, as `hearth docs` stores them."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from serve_process import LOCAL, Served, hearth
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

from app.core.documents.embedding_model import EMBEDDING_MODEL_NAME, default_embedding_model
from engine.embedder import Embedder

pytestmark = pytest.mark.slow  # a real server, the embedding model and `hearth docs add`

MODEL = EMBEDDING_MODEL_NAME
FILES = {
    "lighthouse.md": "# Lighthouses\n\nThe Fastnet lighthouse stands on a rock off Ireland, first lit in 1854.\n",
    "bread.txt": "Sourdough needs a starter fed with flour and water every day, and a long cold proof.\n",
    "bees.md": "# Bees\n\nA honeybee colony keeps one queen and thousands of worker bees.\n",
}
QUESTION = "When was the Fastnet lighthouse first lit?"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve-docs")
    library = root / "library"
    library.mkdir()
    for name, text in FILES.items():
        (library / name).write_text(text, encoding="utf-8")
    data = root / "data"
    added = hearth(data, "docs", "add", str(library), "--collection", "home")
    assert added.returncode == 0, added.stderr
    s = Served(data, "--threads", "1")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def embedder() -> Iterator[Embedder]:
    with Embedder(default_embedding_model()) as e:
        yield e


def _post(served: Served, path: str, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{served.base}{path}", json=body, headers={**served.auth(), **headers}, timeout=120)


def _ask(**extra: object) -> dict[str, object]:
    return {
        "model": LOCAL,
        "messages": [{"role": "user", "content": QUESTION}],
        "max_tokens": 16,
        "temperature": 0,
        "seed": 7,
        **extra,
    }


# --- POST /v1/embeddings -------------------------------------------------------------------


def test_the_openai_client_gets_unit_vectors_that_match_what_hearth_docs_stores(
    served: Served, embedder: Embedder
) -> None:
    client = served.client()
    listed = {m.id: m.owned_by for m in client.models.list()}
    assert listed == {LOCAL: "hearth", MODEL: "hearth"}
    texts = [
        "The lighthouse keeper lit the lamp at dusk.",
        "At nightfall the keeper of the lighthouse switched on its light.",
        "Sourdough bread needs a long, cold proof.",
    ]
    plain = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    packed = client.embeddings.create(model=MODEL, input=texts, encoding_format="base64")  # asked for: kept as text
    assert plain.model == MODEL and [d.index for d in plain.data] == [0, 1, 2]
    assert plain.usage.prompt_tokens == plain.usage.total_tokens > len(texts) * 2  # [CLS] and [SEP] at least
    got = np.array([d.embedding for d in plain.data], dtype=np.float32)
    assert got.shape == (3, 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    decoded = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in packed.data]  # type: ignore[arg-type]
    assert np.array_equal(got, np.array(decoded))
    close, far = float(got[0] @ got[1]), float(got[0] @ got[2])
    assert close > far + 0.3, (close, far)
    assert np.allclose(got, embedder.embed(texts), atol=1e-5)  # the vectors `hearth docs add` stores
    # A lone string, and no encoding_format: the client asks for base64 and decodes it itself.
    one = client.embeddings.create(model=MODEL, input=texts[2])
    assert len(one.data) == 1 and float(np.dot(one.data[0].embedding, got[2])) > 0.9999  # alone or packed: the same


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": MODEL, "input": [101, 2054, 102]}, 400, "token ids"),
        ({"model": MODEL, "input": [[101, 102]]}, 400, "token ids"),
        ({"model": MODEL, "input": ["x"] * 257}, 400, "at most 256"),
        ({"model": MODEL, "input": ["fine", "  "]}, 400, "`input[1]` is empty"),
        ({"model": MODEL, "input": []}, 400, "non-empty list"),
        ({"model": MODEL, "input": "hi", "dimensions": 128}, 400, "384 dimensions only"),
        ({"model": MODEL, "input": "hi", "encoding_format": "int8"}, 400, "encoding_format"),
        ({"input": "hi"}, 400, "`model` is required"),
        ({"model": "text-embedding-3-small", "input": "hi"}, 404, MODEL),
        ({"model": LOCAL, "input": "hi"}, 404, "no embedding model"),
    ],
    ids=["tokens", "token-lists", "too-many", "empty", "none", "dimensions", "format", "no-model", "unknown", "chat"],
)
def test_bad_embedding_requests_are_refused_with_a_message(
    served: Served, body: dict[str, object], status: int, says: str
) -> None:
    r = _post(served, "/v1/embeddings", body)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]["message"]


def test_the_embeddings_route_has_the_other_routes_guard(served: Served) -> None:
    body = {"model": MODEL, "input": "hi"}
    assert httpx.post(f"{served.base}/v1/embeddings", json=body, timeout=10).status_code == 401
    r = _post(served, "/v1/embeddings", body, Origin="https://evil.example")
    assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
    r = _post(served, "/v1/embeddings", body, Host="evil.example")
    assert r.status_code == 403 and r.json()["error"]["code"] == "host_not_allowed"
    r = httpx.post(
        f"{served.base}/v1/embeddings",
        content=json.dumps(body),
        headers={**served.auth(), "Content-Type": "text/plain"},
        timeout=10,
    )
    assert r.status_code == 415
    r = httpx.post(
        f"{served.base}/v1/embeddings",
        content=b'{"model": "x", "input": "' + b"a" * (5 * 1024 * 1024) + b'"}',
        headers={**served.auth(), "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 413 and "over 4 MB" in r.text


def test_a_long_embedding_leaves_the_server_free_for_a_chat_stream(served: Served) -> None:
    texts = [
        f"Passage {i}: " + "the keeper climbed the stairs of the tower to wind the clock. " * 20 for i in range(32)
    ]
    result: dict[str, object] = {}

    def embed() -> None:
        began = time.perf_counter()
        result["response"] = _post(served, "/v1/embeddings", {"model": MODEL, "input": texts})
        result["seconds"] = time.perf_counter() - began
        result["ended"] = time.perf_counter()

    worker = threading.Thread(target=embed)
    worker.start()
    time.sleep(0.3)  # the embedding is under way
    gaps = []
    for _ in range(5):
        began = time.perf_counter()
        assert httpx.get(f"{served.base}/v1/models", headers=served.auth(), timeout=10).status_code == 200
        gaps.append(time.perf_counter() - began)
    pieces = [
        c.choices[0].delta.content or ""
        for c in served.client().chat.completions.create(**_ask(stream=True))
        if c.choices
    ]
    streamed_at = time.perf_counter()
    worker.join(120)
    response = result["response"]
    assert isinstance(response, httpx.Response) and response.status_code == 200, response
    assert len(response.json()["data"]) == 32
    assert "".join(pieces).strip()
    assert max(gaps) < 0.5, gaps  # the event loop answered while the model embedded
    # The chat did not wait for the whole embedding (it took seconds: batch by batch, it is shared).
    assert streamed_at < result["ended"] or result["seconds"] < 2, result  # type: ignore[operator]
    counted = served.metrics()["embeddings"]
    assert counted["by_state"]["completed"] >= 1 and counted["inputs"] >= 32
    assert counted["latency_ms"]["p50"] is not None


def test_a_client_that_gives_up_stops_its_embedding(served: Served) -> None:
    texts = [f"Note {i}: " + "the tide came in over the causeway and the keeper waited. " * 24 for i in range(40)]
    before = served.metrics()["embeddings"]["by_state"].get("cancelled", 0)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{served.base}/v1/embeddings", json={"model": MODEL, "input": texts}, headers=served.auth(), timeout=1
        )
    deadline = time.monotonic() + 10
    while served.metrics()["embeddings"]["by_state"].get("cancelled", 0) == before:
        assert time.monotonic() < deadline, served.metrics()["embeddings"]
        time.sleep(0.05)
    began = time.perf_counter()  # the model is free again within a batch, not after 40 texts (~10 s here)
    assert _post(served, "/v1/embeddings", {"model": MODEL, "input": "the keeper"}).status_code == 200
    assert time.perf_counter() - began < 3


# --- chat completions with collections -----------------------------------------------------


def _sources_are_the_lighthouse(extension: dict) -> None:  # type: ignore[type-arg]
    sources = extension["sources"]
    assert sources and sources[0]["n"] == 1 and Path(sources[0]["path"]).name == "lighthouse.md", extension
    assert sources[0]["heading"] == "Lighthouses" and sources[0]["page"] is None
    assert 0 <= sources[0]["start"] < sources[0]["end"] and sources[0]["score"] > 0
    assert extension["retrieval_ms"] > 0
    assert all(Path(s["path"]).name != "bread.txt" for s in sources)


def test_a_chat_that_names_a_collection_is_answered_with_its_passages_and_sources(served: Served) -> None:
    client = served.client()
    plain = client.chat.completions.create(**_ask())
    assert "hearth" not in (plain.model_extra or {})  # without collections: the plain OpenAI answer
    answer = client.chat.completions.create(**_ask(), extra_body={"hearth": {"collections": ["home"]}})
    assert answer.choices[0].message.content
    _sources_are_the_lighthouse((answer.model_extra or {})["hearth"])
    # The model read the passage: the prompt grew by it.
    assert answer.usage is not None and plain.usage is not None
    assert answer.usage.prompt_tokens > plain.usage.prompt_tokens + 20
    retrieval = served.metrics()["retrieval_ms"]
    assert retrieval["count"] >= 1 and retrieval["p50"] is not None and retrieval["p95"] is not None


def test_a_saved_conversation_keeps_the_persons_words_and_the_answers_sources(served: Served) -> None:
    answer = served.client().chat.completions.create(
        **_ask(), extra_body={"hearth": {"collections": ["home"]}}, extra_headers={"X-Hearth-Conversation": "new"}
    )
    assert answer.choices[0].message.content
    listed = hearth(served.data_dir, "list").stdout.splitlines()
    newest = max(int(line.split("\t")[0]) for line in listed)
    shown = hearth(served.data_dir, "show", str(newest))
    assert shown.returncode == 0, shown.stderr
    assert "Passages from my documents" not in shown.stdout  # the person's words, as they were sent
    assert "Sources:" in shown.stdout and "lighthouse" in shown.stdout.split("Sources:")[1]


def test_a_streamed_answer_carries_its_sources_in_its_first_chunk_and_still_parses(served: Served) -> None:
    client = served.client()
    stream = client.chat.completions.create(
        **_ask(stream=True, stream_options={"include_usage": True}), extra_body={"hearth": {"collections": ["HOME"]}}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and chunks[-1].usage is not None
    _sources_are_the_lighthouse((chunks[0].model_extra or {})["hearth"])
    assert all("hearth" not in (c.model_extra or {}) for c in chunks[1:])
    with httpx.stream(
        "POST",
        f"{served.base}/v1/chat/completions",
        headers=served.auth(),
        timeout=60,
        json=_ask(stream=True, hearth={"collections": ["home"]}),
    ) as r:
        first = json.loads(next(r.iter_lines()).removeprefix("data: "))
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    _sources_are_the_lighthouse(first["hearth"])


@pytest.mark.parametrize(
    ("hearth_field", "says"),
    [
        ({"collections": ["home", "Recipes"]}, "no collection 'Recipes'"),
        ({"collections": "home"}, "must be a list"),
        ({"collections": [""]}, "must be a list"),
        ({"collection": ["home"]}, "`hearth.collection` is not a Hearth extension"),
        (["home"], "`hearth` must be an object"),
    ],
    ids=["unknown", "not-a-list", "empty-name", "misspelt", "not-an-object"],
)
def test_a_bad_collections_field_is_a_400_that_says_what_is_wrong(
    served: Served, hearth_field: object, says: str
) -> None:
    r = _post(served, "/v1/chat/completions", _ask(hearth=hearth_field))
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text
    with pytest.raises(openai.BadRequestError, match="Recipes"):
        served.client().chat.completions.create(**_ask(), extra_body={"hearth": {"collections": ["Recipes"]}})


def test_a_provider_gets_the_passages_quoted_after_the_question(served: Served) -> None:
    with ScriptedServer([Script(body=openai_stream(["It was first lit in 1854 [1]."]))] * 2) as up:
        (served.data_dir / "providers.toml").write_text(
            f'[[provider]]\nname = "lab"\nkind = "openai"\nbase_url = "{up.base_url}/v1"\nmodel = "m1"\n'
        )
        try:
            answer = served.client().chat.completions.create(
                model="lab/m1",
                messages=[{"role": "user", "content": QUESTION}],
                extra_body={"hearth": {"collections": ["home"]}},
            )
        finally:
            (served.data_dir / "providers.toml").unlink()
        sent = up.requests[0].json["messages"][-1]["content"]
    assert answer.choices[0].message.content == "It was first lit in 1854 [1]."
    _sources_are_the_lighthouse((answer.model_extra or {})["hearth"])
    assert sent.startswith(QUESTION) and "[1] lighthouse.md, § Lighthouses" in sent
    assert "> The Fastnet lighthouse stands on a rock off Ireland" in sent and "Sourdough" not in sent


def test_without_the_embedding_model_embeddings_get_503_saying_why(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "Hearth").mkdir(parents=True)
    (cache / "Hearth" / "embedding").write_text("a file where the model's folder would be")
    s = Served(tmp_path / "data", "--no-local", env={"XDG_CACHE_HOME": str(cache)})
    try:
        r = _post(s, "/v1/embeddings", {"model": MODEL, "input": "hi"})
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "embedding_model_unavailable" and f"{MODEL} is not available" in error["message"]
        assert "embedding" in error["message"] and s.metrics()["embeddings"]["by_state"] == {"failed": 1}
    finally:
        s.stop()


@pytest.mark.slow
def test_the_windows_own_server_embeds_through_a_child_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The window runs no llama.cpp code itself: its server's /v1/embeddings uses the embedding
    # model in a child process, and gives what `hearth serve` gives.
    import asyncio

    from serve_process import TOKEN, free_port

    from app.core.paths import db_path
    from app.core.providers import KeyStore, ProvidersFile
    from app.server.hosted import start_hosted
    from engine.client import AsyncEngine
    from store import Store

    monkeypatch.setenv("HEARTH_SERVE_TOKEN", TOKEN)
    port = free_port()
    texts = ["Sea otters hold hands while they sleep.", "Sourdough needs a starter."]

    async def asked() -> httpx.Response:
        store, engine = Store.open(db_path(tmp_path)), AsyncEngine()
        hosted = await start_hosted(
            engine=engine,
            local=lambda: None,
            store=store,
            data_dir=tmp_path,
            providers=ProvidersFile(tmp_path),
            keys=KeyStore(),
            host="127.0.0.1",
            port=port,
        )
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
            ) as c:
                return await c.post("/v1/embeddings", json={"model": MODEL, "input": texts})
        finally:
            await hosted.stop()
            await engine.aclose()
            store.close()

    r = asyncio.run(asked())
    assert r.status_code == 200, r.text
    body = r.json()
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    with Embedder(default_embedding_model(), n_threads=1) as e:
        want = e.embed(texts)
    assert got.shape == (2, 384) and np.allclose(got, want, atol=1e-4)
    assert body["model"] == MODEL and body["usage"]["prompt_tokens"] > 10
