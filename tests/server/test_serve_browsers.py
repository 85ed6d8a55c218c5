"""A web page must not drive `hearth serve`. Started as a person would (`--no-auth` on 127.0.0.1,
a provider configured), the server refuses what a browser sends for a page on another site (a
cross-site `text/plain` POST, the same through DNS rebinding under the page's own Host name, a
CORS preflight) before anything reaches the provider, while the origins allowed by
`--allow-origin` and HEARTH_ALLOWED_ORIGINS, the openai client and a plain HTTP client (no
Origin) are answered. Off loopback the token guards and any Host name is served; the window's
server (app.server.hosted) is guarded the same way."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_process import TOKEN, Served, free_port
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

from app.core.documents.embedding_model import EMBEDDING_MODEL_NAME

ALLOWED = "https://chat.example.com"
ATTACKER = "https://attacker.example"
ANSWER = "Hello from the lab."
BODY = json.dumps({"model": "lab/m1", "messages": [{"role": "user", "content": "Hi"}]})
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[ScriptedServer]:
    with ScriptedServer(lambda request: Script(body=openai_stream([ANSWER]))) as up:
        yield up


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, upstream: ScriptedServer) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("browsers") / "data"
    data.mkdir()
    (data / "providers.toml").write_text(
        f'[[provider]]\nname = "lab"\nkind = "openai"\nbase_url = "{upstream.base_url}/v1"\nmodel = "m1"\n'
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HEARTH_ALLOWED_ORIGINS", "http://localhost:*")
        s = Served(data, "--no-auth", "--no-local", "--allow-origin", ALLOWED)
    yield s
    s.stop()


def _send(s: Served, method: str, path: str, headers: dict[str, str], body: str | None = None) -> httpx.Response:
    return httpx.request(method, f"{s.base}{path}", headers=headers, content=body, timeout=60)


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        # The request: a page on attacker.example whose name now resolves to 127.0.0.1.
        (
            "POST",
            "/v1/chat/completions",
            {"Host": "attacker.example:{port}", "Origin": ATTACKER, "Content-Type": "text/plain;charset=UTF-8"},
            403,
            "host_not_allowed",
        ),
        # Same-origin after rebinding: a GET carries no Origin, only the page's Host.
        ("GET", "/v1/models", {"Host": "attacker.example"}, 403, "host_not_allowed"),
        ("GET", "/metrics", {"Host": "localhost.attacker.example:{port}"}, 403, "host_not_allowed"),
        # A cross-site request sent straight to 127.0.0.1 (no preflight for text/plain).
        (
            "POST",
            "/v1/chat/completions",
            {"Origin": ATTACKER, "Content-Type": "text/plain;charset=UTF-8"},
            403,
            "origin_not_allowed",
        ),
        ("POST", "/v1/chat/completions", {"Origin": ATTACKER, **JSON}, 403, "origin_not_allowed"),
        ("GET", "/v1/models", {"Origin": "null"}, 403, "origin_not_allowed"),  # a sandboxed frame, a file: page
        ("GET", "/metrics", {"Origin": "http://localhost.attacker.example:5173"}, 403, "origin_not_allowed"),
        (
            "OPTIONS",
            "/v1/chat/completions",
            {
                "Origin": ATTACKER,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
            403,
            "origin_not_allowed",
        ),
        # Bodies a page may send without asking, from anywhere.
        ("POST", "/v1/chat/completions", {"Content-Type": "text/plain;charset=UTF-8"}, 415, "unsupported_media_type"),
        (
            "POST",
            "/v1/chat/completions",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        ("POST", "/v1/chat/completions", {}, 415, "unsupported_media_type"),
    ],
    ids=[
        "rebinding-post",
        "rebinding-models",
        "rebinding-metrics",
        "cross-site-text",
        "cross-site-json",
        "null-origin",
        "lookalike-origin",
        "preflight",
        "text-plain",
        "form",
        "no-content-type",
    ],
)
def test_what_a_page_on_another_site_sends_is_refused_before_anything_runs(
    served: Served, upstream: ScriptedServer, method: str, path: str, headers: dict[str, str], status: int, code: str
) -> None:
    before = len(upstream.requests)
    sent = {k: v.format(port=served.port) for k, v in headers.items()}
    r = _send(served, method, path, sent, BODY if method == "POST" else None)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and "access-control-allow-origin" not in r.headers
    assert len(upstream.requests) == before  # the provider was never asked
    message = r.json()["error"]["message"]
    if code == "origin_not_allowed":
        assert "--allow-origin" in message and "HEARTH_ALLOWED_ORIGINS" in message
    if code == "unsupported_media_type":
        assert "Content-Type: application/json" in message


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost"])
def test_every_loopback_name_is_served(served: Served, host: str) -> None:
    r = _send(served, "GET", "/v1/models", {"Host": host.format(port=served.port)})
    assert r.status_code == 200 and [m["id"] for m in r.json()["data"]] == ["lab/m1", EMBEDDING_MODEL_NAME]


def test_an_allowed_origin_passes_its_preflight_and_reads_the_answer(served: Served) -> None:
    asked = {
        "Origin": ALLOWED,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    preflight = _send(served, "OPTIONS", "/v1/chat/completions", asked)
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"]
    r = _send(served, "POST", "/v1/chat/completions", {"Origin": ALLOWED, **JSON}, BODY)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ALLOWED
    assert r.json()["choices"][0]["message"]["content"] == ANSWER
    with httpx.stream(
        "POST",
        f"{served.base}/v1/chat/completions",
        headers={"Origin": ALLOWED},
        timeout=60,
        json={**json.loads(BODY), "stream": True},
    ) as streamed:
        assert streamed.headers["access-control-allow-origin"] == ALLOWED
        assert ANSWER in b"".join(streamed.iter_raw()).decode()
    # HEARTH_ALLOWED_ORIGINS=http://localhost:* lets a page on any local port in.
    r = _send(served, "GET", "/v1/models", {"Origin": "http://localhost:5173"})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_the_openai_client_and_a_plain_http_client_are_answered(served: Served) -> None:
    client = served.client("anything")  # --no-auth: any key
    assert [m.id for m in client.models.list()] == ["lab/m1", EMBEDDING_MODEL_NAME]
    answer = client.chat.completions.create(model="lab/m1", messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content == ANSWER
    pieces = [
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(
            model="lab/m1", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        if c.choices
    ]
    assert "".join(pieces) == ANSWER
    r = httpx.post(f"{served.base}/v1/chat/completions", json=json.loads(BODY), timeout=60)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.mark.slow
def test_off_loopback_the_token_guards_and_any_host_name_is_served(tmp_path: Path) -> None:
    s = Served(tmp_path / "data", "--host", "0.0.0.0", "--no-local")
    try:
        lan = {"Host": f"mybox.lan:{s.port}"}  # the names clients use for this machine cannot be known here
        assert _send(s, "GET", "/v1/models", {**lan, **s.auth()}).status_code == 200
        assert _send(s, "GET", "/v1/models", lan).status_code == 401
        r = _send(s, "GET", "/v1/models", {**lan, **s.auth(), "Origin": ATTACKER})
        assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
    finally:
        s.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "env"),
    [(["--allow-origin", "https://chat.example.com/app"], ""), ([], "chat.example.com")],
    ids=["option-with-path", "env-no-scheme"],
)
def test_an_allowed_origin_that_is_not_an_origin_is_refused_at_start(
    tmp_path: Path, option: list[str], env: str
) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--no-auth",
            "--no-local",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path),
            *option,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HEARTH_ALLOWED_ORIGINS": env},
    )
    assert r.returncode == 2 and "is not an origin" in r.stderr and "scheme://host[:port]" in r.stderr, r.stderr


@pytest.mark.slow
def test_the_windows_server_is_guarded_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.paths import db_path
    from app.core.providers import KeyStore, ProvidersFile
    from app.server.hosted import start_hosted
    from engine.client import AsyncEngine
    from store import Store

    monkeypatch.setenv("HEARTH_SERVE_TOKEN", TOKEN)
    monkeypatch.setenv("HEARTH_ALLOWED_ORIGINS", ALLOWED)
    port = free_port()

    async def asked() -> list[httpx.Response]:
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
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            ) as c:
                return [
                    await c.get("/v1/models", headers={"Host": "attacker.example"}),
                    await c.get("/v1/models", headers={"Origin": ATTACKER}),
                    await c.post("/v1/chat/completions", content=BODY, headers={"Content-Type": "text/plain"}),
                    await c.get("/v1/models", headers={"Origin": ALLOWED}),
                    await c.get("/v1/models"),
                ]
        finally:
            await hosted.stop()
            await engine.aclose()
            store.close()

    rebound, foreign, plain, allowed, client = asyncio.run(asked())
    assert (rebound.status_code, foreign.status_code, plain.status_code) == (403, 403, 415)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED
    # No chat model loaded; the embedding model (loaded on first use) is listed.
    assert client.status_code == 200 and [m["id"] for m in client.json()["data"]] == [EMBEDDING_MODEL_NAME]
