"""`hearth models search | info hf.co/… | pull hf.co/… | login | logout` and `--model hf.co/…`, run
as a person runs them: real `hearth` processes against a local fake Hub (tests/hf_server.py)
serving the bundled model's real bytes, a gated copy, and a copy claiming an architecture this
llama.cpp lacks. The keychain is tests/file_keychain.py's, so the test can read what was kept.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf_corpus import STRING, enc_kv, enc_str, layout_of, rebuild
from hf_server import HubFile, HubRepo, HubServer

pytestmark = pytest.mark.slow

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GATED = "meta-test/Gated-GGUF"
ODD = "hearth-test/Unknown-Arch-GGUF"
TOKEN = "hf_TestTokenThatMustNeverBeShown"
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hub(model_path: Path) -> Iterator[HubServer]:
    data = model_path.read_bytes()
    head, total = rebuild(
        layout_of(model_path),
        replace={"general.architecture": enc_kv("general.architecture", STRING, enc_str("mamba9000"))},
    )
    files = [
        HubFile(REPO, FILE, data),
        HubFile(GATED, "gated-Q4_1.gguf", data, gated=True),
        HubFile(ODD, "odd-Q4_1.gguf", head + bytes(total - len(head))),
    ]
    repos = [HubRepo(REPO, downloads=52_000, likes=120), HubRepo(GATED, downloads=7, gated=True)]
    with HubServer(files, repos) as server:
        yield server


@pytest.fixture
def env(hub: HubServer, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "HF_TOKEN": "",
        "HF_HOME": str(tmp_path / "hf-home"),  # no token huggingface-hub's own CLI may have saved
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "PYTHON_KEYRING_BACKEND": "file_keychain.FileKeyring",
        "HEARTH_TEST_KEYRING": str(tmp_path / "keychain.json"),
    }


def hearth(
    *args: str, data_dir: Path, env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_search_shows_gguf_repos_with_their_facts(data_dir: Path, env: dict[str, str]) -> None:
    r = hearth("models", "search", "smollm2", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].split() == ["REPO", "DOWNLOADS", "LIKES", "LICENCE", "UPDATED"]
    assert REPO in r.stdout and "52,000" in r.stdout and "apache-2.0" in r.stdout
    r = hearth("models", "search", "gguf", "--sort", "likes", "--limit", "2", "--json", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    found = json.loads(r.stdout)
    assert len(found) == 2 and found[0]["repo"] == REPO and found[0]["likes"] == 120


def test_info_reads_the_header_before_any_download(data_dir: Path, env: dict[str, str]) -> None:
    r = hearth("models", "info", f"hf.co/{REPO}", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    assert "Q4_1" in r.stdout and "<- recommended" in r.stdout
    assert "Architecture:   llama" in r.stdout and "Context length: 8,192 tokens" in r.stdout
    assert "Chat template:  built in (ChatML-style" in r.stdout
    assert "Runs here:      llama: this version of Hearth runs it" in r.stdout
    header_bytes = int(r.stdout.split("Header read:")[1].split("bytes")[0].replace(",", ""))
    assert header_bytes < 2_000_000
    assert not (data_dir / "models" / "hf").exists()


def test_a_model_this_build_cannot_run_is_refused_before_download(
    data_dir: Path, env: dict[str, str], hub: HubServer
) -> None:
    before = hub.bytes_served()
    r = hearth("models", "pull", f"hf.co/{ODD}", data_dir=data_dir, env=env)
    assert r.returncode == 2
    assert "mamba9000" in r.stderr and "cannot run it" in r.stderr and "Nothing was downloaded" in r.stderr
    assert hub.bytes_served() - before < 2_000_000
    assert not list(data_dir.rglob("*.gguf"))


def test_pull_by_name_then_use_list_verify_and_remove(data_dir: Path, env: dict[str, str], model_path: Path) -> None:
    model_id = f"hf.co/{REPO}:Q4_1"
    # No terminal and no --yes: `--model hf.co/...` asks first, so nothing happens.
    r = hearth("ask", "Hi", "--model", model_id, data_dir=data_dir, env=env)
    assert r.returncode == 2 and "add --yes" in r.stderr and "(98 MB)" in r.stderr
    r = hearth(
        "ask", "Say hello.", "--model", model_id, "--yes", "--max-tokens", "4", "--json", data_dir=data_dir, env=env
    )
    assert r.returncode == 0, r.stderr
    assert "downloaded and verified" in r.stderr and "verifying sha256" in r.stderr
    pulled = data_dir / "models" / "hf" / REPO / FILE
    assert pulled.read_bytes() == model_path.read_bytes()
    listed = next(line for line in hearth("models", "list", data_dir=data_dir, env=env).stdout.splitlines()
                  if line.startswith(model_id))  # fmt: skip
    assert "downloaded" in listed and "98 MB" in listed
    r = hearth("models", "pull", f"hf.co/{REPO}", data_dir=data_dir, env=env)
    assert r.returncode == 0 and "already downloaded" in r.stderr
    assert hearth("models", "verify", model_id, data_dir=data_dir, env=env).returncode == 0
    r = hearth("models", "rm", model_id, "--yes", data_dir=data_dir, env=env)
    assert r.returncode == 0 and "freed 98 MB" in r.stderr and not pulled.exists()


def test_a_gated_repo_is_said_plainly_and_a_login_opens_it_without_showing_the_token(
    data_dir: Path, env: dict[str, str], hub: HubServer, tmp_path: Path
) -> None:
    r = hearth("models", "info", f"hf.co/{GATED}", data_dir=data_dir, env=env)
    assert r.returncode == 2
    assert (
        f"{GATED} is gated: accept its terms at https://huggingface.co/{GATED}, then `hearth models login`" in r.stderr
    )
    r = hearth("models", "login", "--token-stdin", data_dir=data_dir, env=env, stdin=TOKEN + "\n")
    assert r.returncode == 0 and "keychain" in r.stderr and TOKEN not in r.stderr + r.stdout
    assert TOKEN in (tmp_path / "keychain.json").read_text()
    r = hearth("models", "info", f"hf.co/{GATED}", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert f"Bearer {TOKEN}" in hub.authorizations and TOKEN not in r.stdout + r.stderr
    on_disk = [p for p in data_dir.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    assert on_disk == []
    r = hearth("models", "logout", data_dir=data_dir, env=env)
    assert r.returncode == 0 and TOKEN not in (tmp_path / "keychain.json").read_text()


def test_a_hub_out_of_reach_or_limiting_is_said_in_bounded_time(
    data_dir: Path, env: dict[str, str], hub: HubServer
) -> None:
    started = time.monotonic()
    r = hearth("models", "search", "smollm2", data_dir=data_dir, env={**env, "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert r.returncode == 1 and "needs the network" in r.stderr
    assert time.monotonic() - started < 15
    hub.api_faults.status = 429
    try:
        r = hearth("models", "search", "smollm2", data_dir=data_dir, env=env)
    finally:
        hub.api_faults.status = None
    assert r.returncode == 1 and "429" in r.stderr and "in 2 s" in r.stderr


def test_on_a_terminal_model_hf_co_asks_before_downloading(data_dir: Path, env: dict[str, str]) -> None:
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "ask", "Hi", "--model", f"hf.co/{REPO}:Q4_1", "--data-dir", str(data_dir)],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    seen = bytearray()
    try:
        deadline = time.monotonic() + 60
        while b"[y/N]" not in seen and time.monotonic() < deadline:
            if select.select([main], [], [], 1.0)[0]:
                seen += os.read(main, 65536)
        assert f"Download hf.co/{REPO}:Q4_1 (98 MB)? [y/N]".encode() in seen
        os.write(main, b"n\n")
        assert proc.wait(30) == 2
        while select.select([main], [], [], 0.2)[0]:
            try:
                seen += os.read(main, 65536)
            except OSError:  # EIO: the process has closed the terminal
                break
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()
    assert b"nothing downloaded" in seen and not list(data_dir.rglob("*.gguf"))
