"""Secrets never leak through error text: an API key (one with a line break from a .env file
too), the values of extra headers, and a user and password written into a provider's URL.

Everything is real: the remote provider over httpx to a scripted server on 127.0.0.1
(tests/sse_server.py), `hearth providers`, `hearth ask` and `hearth serve` as child processes
sharing a keychain kept in a file (tests/file_keychain.py), the SQLite store. Each secret
carries a marker that any spelling of it keeps (repr, bytes, percent-encoded, JSON, cut at a
line break), and no marker may appear in an event, the store, a terminal, a response or
providers.toml.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from keychains import MemoryKeyring
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

from app.core.providers import KeyStore, ProviderConfig, ProvidersFile
from engine.commands import ChatMessage, Generate, RemoteSpec, Sampling
from engine.events import Failed, Final
from engine.remote import RemoteProvider
from engine.scrub import SecretScrubber
from engine.wire import load_formats

FORMATS = set(load_formats())
# The markers: a secret in any spelling still holds them (bar base64, checked apart).
KEY = "sk-leak-7f3a91-c2e8b4-0d6f"
HEADER_VALUE = 'hdr-5d1b0e9a"77c1'  # a quote: JSON and repr spell it otherwise
USER, PASSWORD = "alice-u8w2q", "pw-3h6j9k 2m/4x"  # a space and a slash: percent-encoding spells them otherwise
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
MARKERS = ("7f3a91", "c2e8b4", "5d1b0e9a", "u8w2q", "3h6j9k", BASIC)


def leaks(*texts: object) -> list[str]:
    """The markers found in any of `texts` (str, bytes or anything with a repr)."""
    joined = " ".join(t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t) for t in texts)
    return [m for m in MARKERS if m in joined]


def run(spec: RemoteSpec) -> list[object]:
    provider = RemoteProvider(spec)
    events: list[object] = []
    try:
        provider.generate(
            Generate(1, (ChatMessage("user", "Hi"),), Sampling(max_tokens=8), remote=spec),
            threading.Event(),
            events.append,
            time.perf_counter(),
        )
    finally:
        provider.close()
    return events


def spec(server: ScriptedServer, **kw: object) -> RemoteSpec:
    values: dict[str, object] = {
        "name": "box",
        "wire": "openai",
        "base_url": server.base_url + "/v1",
        "model": "m",
        "max_retries": 0,
    }
    return RemoteSpec(**{**values, **kw})  # type: ignore[arg-type]


# -- the engine: refused by name, never quoted ----------------------------------------------------
@pytest.mark.parametrize(
    "key",
    [
        "sk-leak-7f3a91\nc2e8b4-0d6f",  # two lines pasted as one
        "sk-leak-7f3a91-c2e8b4\r\n0d6f",
        "sk-leak-7f3a91\x00c2e8b4-0d6f",
        "sk-leak-7f3a91\u00a0c2e8b4-0d6f",  # a non-breaking space from a document
    ],
    ids=["newline", "crlf-inside", "nul", "not-ascii"],
)
def test_a_key_http_cannot_carry_is_refused_by_name_and_never_sent(key: str) -> None:
    with ScriptedServer([Script(body=openai_stream(["Hello"]))]) as server:
        events = run(spec(server, api_key=key, max_retries=2))
        asked = len(server.requests)
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.code == "bad_credential"
    assert failed.message.startswith("The API key for box contains")
    assert leaks(*events) == [] and asked == 0  # at once: no retries of a request that cannot go


def test_a_header_value_with_a_line_break_is_refused_by_its_name() -> None:
    with ScriptedServer([Script(body=openai_stream(["Hello"]))]) as server:
        events = run(spec(server, headers=(("X-Api-Key", "hdr-5d1b0e9a\n-77c1"),)))
    failed = events[-1]
    assert isinstance(failed, Failed) and failed.code == "bad_credential"
    assert "The value of the header X-Api-Key for box" in failed.message and leaks(*events) == []


def test_a_key_ending_in_the_carriage_return_of_a_crlf_env_file_is_sent_without_it() -> None:
    with ScriptedServer([Script(body=openai_stream(["Hello"]))]) as server:
        events = run(spec(server, api_key=KEY + "\r", headers=(("X-Api-Key", HEADER_VALUE + "\r\n"),)))
        request = server.requests[0]
    assert isinstance(events[-1], Final), events[-1]
    assert request.headers["authorization"] == f"Bearer {KEY}" and request.headers["x-api-key"] == HEADER_VALUE


# A server that quotes what it was sent, in the shapes error text takes.
ECHOES = {
    "raw": f"invalid key {KEY}",
    "repr": f"Illegal header value {('Bearer ' + KEY + chr(13))!r}",
    "bytes-repr": f"Illegal header value {('Bearer ' + KEY + chr(13)).encode()!r}",
    "percent-encoded": f"bad url /login?user={USER}&pw={quote(PASSWORD, safe='')}",
    "form-encoded": f"bad form pw={quote_plus(PASSWORD)}",
    "json-escaped": 'not json { "X-Api-Key": ' + json.dumps(HEADER_VALUE) + " }",
    "header-value": f"X-Api-Key {HEADER_VALUE} is not known here",
    "basic-auth": f"user {USER} with Authorization: Basic {BASIC} refused",
    "cut-at-300": "x" * 282 + KEY,  # the message is shortened to 300: no start of the key may stay behind
}


@pytest.mark.parametrize("status", [401, 500])
@pytest.mark.parametrize("echo", list(ECHOES.values()), ids=list(ECHOES))
def test_a_server_that_quotes_the_credentials_has_them_scrubbed_in_every_form(echo: str, status: int) -> None:
    body = json.dumps({"error": {"message": echo}}).encode() if not echo.startswith("not json") else echo.encode()
    with ScriptedServer([Script(status=status, body=[body], content_type="application/json", chunked=False)]) as server:
        host = server.base_url.removeprefix("http://")
        config = ProviderConfig(
            "box",
            "openai",
            f"http://{USER}:{quote(PASSWORD, safe='')}@{host}/v1",
            headers={"X-Api-Key": HEADER_VALUE},
            max_retries=0,
        )
        events = run(config.spec(KEY))
        sent = server.requests[0].headers
    failed = events[-1]
    assert isinstance(failed, Failed) and str(status) in failed.message
    assert leaks(failed.message) == [], failed.message
    assert sent["x-api-key"] == HEADER_VALUE and sent["authorization"] == f"Basic {BASIC}"  # what the URL gave


@pytest.mark.parametrize("key", [KEY + "\r", "sk-leak-7f3a91\nc2e8b4-0d6f"], ids=["crlf-env", "two-lines"])
def test_httpxs_own_words_about_a_bad_header_are_scrubbed_of_the_key(key: str) -> None:
    """What h11 said before Hearth looked first; any such text is scrubbed before it is cut."""
    said = f"Illegal header value {('Bearer ' + key).encode()!r}"
    scrubber = SecretScrubber.for_request(key, (), None)
    assert leaks(said) != [] and leaks(scrubber.scrub(said)) == [], scrubber.scrub(said)
    assert leaks(scrubber.scrub(repr(said)), scrubber.scrub(" ".join(said.split()))) == []


def test_credentials_in_a_url_are_taken_out_of_it_and_never_shown() -> None:
    config = ProviderConfig("box", "openai", f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:9/v1")
    assert config.base_url == "http://127.0.0.1:9/v1" and config.url_auth == (USER, PASSWORD)
    assert leaks(repr(config), repr(config.spec(KEY)), config.to_toml()) == []
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = ProviderConfig(
        "box", "openai", f"http://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{port}/v1", max_retries=0
    )
    failed = run(down.spec(KEY))[-1]
    assert isinstance(failed, Failed) and failed.code == "unreachable" and leaks(failed.message) == []


# -- providers.toml and the keychain --------------------------------------------------------------
def test_header_values_and_url_credentials_go_to_the_keychain_not_the_file(
    tmp_path: Path, memory_keychain: MemoryKeyring
) -> None:
    f = ProvidersFile(tmp_path, FORMATS)
    f.upsert(
        ProviderConfig(
            "box",
            "openai",
            f"http://{USER}:{quote(PASSWORD, safe='')}@h:8000/v1",
            headers={"X-Api-Key": HEADER_VALUE, "X-Team": "blue"},
        )
    )
    text = f.path.read_text()
    assert leaks(text) == [] and "blue" not in text
    assert tomllib.loads(text)["provider"][0]["headers"] == ["X-Api-Key", "X-Team"]
    assert leaks(memory_keychain.saved) != []  # kept, where keys are kept
    loaded = f.get("box")
    assert loaded.headers == {"X-Api-Key": HEADER_VALUE, "X-Team": "blue"} and loaded.url_auth == (USER, PASSWORD)
    f.upsert(ProviderConfig("box", "openai", "http://h:8000/v1"))  # changed to none: none kept
    assert memory_keychain.saved == {} and f.get("box").headers == {}


def test_a_file_written_with_secrets_in_it_moves_them_to_the_keychain(
    tmp_path: Path, memory_keychain: MemoryKeyring
) -> None:
    f = ProvidersFile(tmp_path, FORMATS)
    f.path.write_text(
        f'[[provider]]\nname = "box"\nkind = "openai"\n'
        f'base_url = "http://{USER}:{quote(PASSWORD, safe="")}@h:8000/v1"\n'
        f"headers = {{ X-Api-Key = {json.dumps(HEADER_VALUE)} }}\n"
    )
    [config] = f.load()
    assert config.headers == {"X-Api-Key": HEADER_VALUE} and config.url_auth == (USER, PASSWORD)
    assert leaks(f.path.read_text()) == [] and "url_credentials = true" in f.path.read_text()
    assert f.load() == [config]  # read back from the keychain


def test_without_a_keychain_an_old_file_keeps_working_and_new_secrets_name_the_variables(
    tmp_path: Path, no_keychain: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.errors import KeychainUnavailable

    f = ProvidersFile(tmp_path, FORMATS)
    old = (
        f'[[provider]]\nname = "box"\nkind = "openai"\nbase_url = "http://h/v1"\n'
        f"headers = {{ X-Api-Key = {json.dumps(HEADER_VALUE)} }}\n"
    )
    f.path.write_text(old)
    assert f.get("box").headers == {"X-Api-Key": HEADER_VALUE} and f.path.read_text() == old
    with pytest.raises(KeychainUnavailable, match="HEARTH_HEADER_LAN_BOX_X_API_KEY") as e:
        f.upsert(ProviderConfig("lan box", "openai", "http://h/v1", headers={"X-Api-Key": HEADER_VALUE}))
    assert leaks(str(e.value)) == []
    monkeypatch.setenv("HEARTH_HEADER_LAN_BOX_X_API_KEY", HEADER_VALUE)
    f.upsert(ProviderConfig("lan box", "openai", "http://h/v1", headers={"X-Api-Key": HEADER_VALUE}))
    assert f.get("lan box").headers == {"X-Api-Key": HEADER_VALUE} and leaks(f.path.read_text()) == []


def test_keys_and_header_values_with_control_characters_are_refused_when_set(
    tmp_path: Path, memory_keychain: MemoryKeyring
) -> None:
    from app.core.errors import ProviderError

    f = ProvidersFile(tmp_path, FORMATS)
    with pytest.raises(ProviderError, match=r"header X-Api-Key contains a line break.*\.env") as e:
        f.upsert(ProviderConfig("box", "openai", "http://h/v1", headers={"X-Api-Key": "hdr-5d1b0e9a\r-77c1"}))
    assert e.value.field == "headers" and leaks(str(e.value)) == [] and not f.path.exists()
    f.upsert(ProviderConfig("box", "openai", "http://h/v1"))
    with pytest.raises(ProviderError, match="The API key for box contains a line break") as e:
        KeyStore().set_key(f.get("box"), "sk-leak-7f3a91\nc2e8b4")
    assert leaks(str(e.value)) == [] and memory_keychain.saved == {}
    KeyStore().set_key(f.get("box"), f"  {KEY}\r\n")  # only around it: dropped, as HTTP drops it
    assert KeyStore().key(f.get("box")) == KEY


# -- the CLI, the store and the server, as a person runs them -------------------------------------
def _env(keyring_file: Path, **extra: str) -> dict[str, str]:
    """A child's environment: its keychain is `keyring_file` (tests/file_keychain.py)."""
    tests = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (tests, os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "PYTHON_KEYRING_BACKEND": "file_keychain.FileKeyring",
        "HEARTH_TEST_KEYRING": str(keyring_file),
        **extra,
    }


def _hearth(
    data_dir: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


@pytest.fixture
def echoing() -> Iterator[ScriptedServer]:
    """A server that refuses every request, quoting the key, the header and the URL's credentials."""
    said = f"bad key {KEY!r} or X-Api-Key {HEADER_VALUE} for {USER} (Basic {BASIC})"
    body = json.dumps({"error": {"message": said}}).encode()
    with ScriptedServer(
        lambda _r: Script(status=401, body=[body], content_type="application/json", chunked=False)
    ) as server:
        yield server


def _add(data_dir: Path, env: dict[str, str], name: str, server: ScriptedServer) -> None:
    host = server.base_url.removeprefix("http://")
    r = _hearth(
        data_dir,
        env,
        "providers",
        "add",
        name,
        "--url",
        f"http://{USER}:{quote(PASSWORD, safe='')}@{host}/v1",
        "--model",
        "m",
        "--header",
        f"X-Api-Key={HEADER_VALUE}",
    )
    assert r.returncode == 0, r.stderr
    assert leaks(r.stdout, r.stderr, (data_dir / "providers.toml").read_text()) == []
    assert "in the system keychain" in r.stderr


@pytest.mark.slow
def test_ask_never_shows_or_stores_a_secret(data_dir: Path, tmp_path: Path, echoing: ScriptedServer) -> None:
    keyring_file = tmp_path / "keychain.json"
    env = _env(keyring_file)
    _add(data_dir, env, "box", echoing)
    assert leaks(keyring_file.read_text()) != []  # the keychain has them; nothing else may
    listed = _hearth(data_dir, env, "providers", "list")
    assert "box\topenai\thttp://127.0.0.1:" in listed.stdout and leaks(listed.stdout, listed.stderr) == []

    broken = _env(keyring_file, HEARTH_API_KEY_BOX="sk-leak-7f3a91\nc2e8b4-0d6f")  # from a pasted .env line
    echoed = _env(keyring_file, HEARTH_API_KEY_BOX=KEY + "\r")  # a CRLF .env file: sent without the \r
    outputs = []
    for run_env, says in ((broken, "The API key for box contains a line break"), (echoed, "refused the request")):
        for extra in ((), ("--json",)):
            r = _hearth(data_dir, run_env, "ask", "Hi", "--provider", "box", *extra)
            assert r.returncode == 1 and says in r.stdout + r.stderr, r.stdout + r.stderr
            outputs += [r.stdout, r.stderr]
    assert leaks(*outputs) == []
    assert echoing.requests and all(r.headers["authorization"] == f"Basic {BASIC}" for r in echoing.requests)

    with sqlite3.connect(data_dir / "hearth.db") as db:
        errors = [m for (m,) in db.execute("SELECT error_message FROM generation")]
    assert len(errors) == 4 and all(errors) and leaks(*errors) == []
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "providers.toml" for p in files)
    assert [p for p in files if leaks(p.read_bytes())] == []  # the database, its WAL, providers.toml


@pytest.mark.slow
def test_set_time_checks_in_the_cli_name_the_field_and_the_usual_cause(data_dir: Path, tmp_path: Path) -> None:
    keyring_file = tmp_path / "keychain.json"
    env = _env(keyring_file)
    r = _hearth(
        data_dir, env, "providers", "add", "box", "--url", "http://h/v1", "--header", "X-Api-Key=hdr-5d1b0e9a\r-77c1"
    )
    assert r.returncode == 2 and "header X-Api-Key contains a line break" in r.stderr and ".env" in r.stderr
    assert leaks(r.stdout, r.stderr) == [] and not (data_dir / "providers.toml").exists()
    assert _hearth(data_dir, env, "providers", "add", "box", "--url", "http://h/v1").returncode == 0
    r = _hearth(data_dir, env, "providers", "set-key", "box", stdin="sk-leak-7f3a91\rc2e8b4\n")
    assert r.returncode == 2 and "The API key for box contains a line break" in r.stderr
    assert leaks(r.stdout, r.stderr) == [] and not keyring_file.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_error_responses_never_quote_a_secret(data_dir: Path, tmp_path: Path, echoing: ScriptedServer) -> None:
    keyring_file = tmp_path / "keychain.json"
    env = _env(
        keyring_file,
        HEARTH_SERVE_TOKEN="serve-token-0123456789",
        HEARTH_API_KEY_ECHO=KEY,
        HEARTH_API_KEY_BROKEN="sk-leak-7f3a91\nc2e8b4-0d6f",
    )
    _add(data_dir, env, "echo", echoing)
    _add(data_dir, env, "broken", echoing)
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--no-local", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base, auth = f"http://127.0.0.1:{port}/v1", {"Authorization": "Bearer serve-token-0123456789"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{base}/models", headers=auth, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        bodies = []
        for model, says in (("broken/m", "The API key for broken contains"), ("echo/m", "refused the request")):
            ask = {"model": model, "messages": [{"role": "user", "content": "Hi"}]}
            plain = httpx.post(f"{base}/chat/completions", json=ask, headers=auth, timeout=60)
            assert plain.status_code >= 400 and says in plain.json()["error"]["message"], plain.text
            with httpx.stream(
                "POST", f"{base}/chat/completions", json={**ask, "stream": True}, headers=auth, timeout=60
            ) as streamed:
                raw = b"".join(streamed.iter_raw())
            assert says.encode() in raw, raw
            bodies += [plain.content, raw]
        assert leaks(*bodies) == []
    finally:
        proc.terminate()
        proc.wait(15)
    assert leaks(log.read_text(), (data_dir / "providers.toml").read_text()) == []
