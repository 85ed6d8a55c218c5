"""`hearth models ...` run as a person runs it: a real process, a real local Hub, the real model.

The test catalog (HEARTH_CATALOG) holds the bundled model and one downloadable entry whose
file, on the local Hub server, is a copy of the bundled model: so a pulled model can be
inspected and chatted with for real; and an embedding model's entry (a few bytes on the Hub),
which is pulled like any model and refused wherever a chat model is chosen.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hf_server import HubFile, HubServer

from app.core.models.catalog import CATALOG_PATH

PULLED_ID = "tiny-chat-q4_1"
PULLED_FILE = "tiny-chat.Q4_1.gguf"
EMBED_ID = "tiny-embed-q8_0"
EMBED_FILE = "tiny-embed.Q8_0.gguf"
EMBED_BYTES = b"GGUF" + bytes(range(256)) * 8  # pulled and verified, never loaded


def catalog_text(data: bytes) -> str:
    bundled = CATALOG_PATH.read_text().split("\n[[model]]\n")[1]
    return f"""[[model]]
{bundled}
[[model]]
id = "{PULLED_ID}"
name = "Tiny Chat (Q4_1)"
repo = "hearth-test/tiny-chat-GGUF"
file = "{PULLED_FILE}"
sha256 = "{hashlib.sha256(data).hexdigest()}"
size_bytes = {len(data)}
parameters = 134515008
quantisation = "Q4_1"
context_length = 8192
license = "Apache-2.0"
recommended_memory_gb = 1
notes = "The bundled model, served by a local Hub for tests."

[[model]]
id = "{EMBED_ID}"
name = "Tiny Embed (Q8_0)"
kind = "embedding"
repo = "hearth-test/tiny-embed-GGUF"
file = "{EMBED_FILE}"
sha256 = "{hashlib.sha256(EMBED_BYTES).hexdigest()}"
size_bytes = {len(EMBED_BYTES)}
parameters = 33400000
quantisation = "Q8_0"
context_length = 512
dimensions = 384
license = "MIT"
recommended_memory_gb = 0.5
query_prefix = "query: "
notes = "An embedding model's entry, served by a local Hub for tests."
"""


@pytest.fixture(scope="module")
def model_bytes(model_path: Path) -> bytes:
    return model_path.read_bytes()


@pytest.fixture
def hub(model_bytes: bytes) -> HubServer:
    files = [
        HubFile("hearth-test/tiny-chat-GGUF", PULLED_FILE, model_bytes),
        HubFile("hearth-test/tiny-embed-GGUF", EMBED_FILE, EMBED_BYTES),
    ]
    with HubServer(files) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path, hub: HubServer, model_bytes: bytes) -> dict[str, str]:
    catalog = tmp_path / "models.toml"
    catalog.write_text(catalog_text(model_bytes))
    return {**os.environ, "HEARTH_CATALOG": str(catalog), "HF_ENDPOINT": hub.endpoint}


def hearth(
    *args: str, data_dir: Path, env: dict[str, str], timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_list_shows_the_catalog_with_states_and_fit(data_dir: Path, env: dict[str, str]) -> None:
    r = hearth("models", "list", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "KIND", "SIZE", "STATE"]
    bundled = next(line for line in lines if line.startswith("smollm2-135m-instruct-q4_1"))
    assert "bundled" in bundled and "98 MB" in bundled and "fits in memory" in bundled and " chat " in bundled
    assert "not downloaded" in next(line for line in lines if line.startswith(PULLED_ID))
    embed = next(line for line in lines if line.startswith(EMBED_ID))
    assert " embedding " in embed and "not downloaded" in embed


@pytest.mark.slow
def test_an_embedding_model_is_pulled_like_any_model_and_pointed_at_the_documents(
    data_dir: Path, env: dict[str, str]
) -> None:
    r = hearth("models", "pull", EMBED_ID, data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert (
        "downloaded and verified" in r.stderr and f"for your documents with: hearth docs model {EMBED_ID}" in r.stderr
    )
    assert "hearth --model" not in r.stderr
    assert (data_dir / "models" / EMBED_FILE).read_bytes() == EMBED_BYTES
    embed = next(
        line
        for line in hearth("models", "list", data_dir=data_dir, env=env).stdout.splitlines()
        if line.startswith(EMBED_ID)
    )
    assert "embedding" in embed and "downloaded" in embed
    assert hearth("models", "verify", EMBED_ID, data_dir=data_dir, env=env).returncode == 0
    # Named by its downloaded file's path, it is still no chat model.
    r = hearth("ask", "hi", "--model", str(data_dir / "models" / EMBED_FILE), data_dir=data_dir, env=env)
    assert r.returncode == 2 and f"{EMBED_ID} is an embedding model" in r.stderr
    r = hearth("models", "rm", EMBED_ID, "--yes", data_dir=data_dir, env=env)
    assert r.returncode == 0 and not (data_dir / "models" / EMBED_FILE).exists()


@pytest.mark.slow
def test_info_on_an_embedding_model_says_what_it_is_for(data_dir: Path, env: dict[str, str]) -> None:
    from app.core.documents.embedding_model import default_embedding_model

    (data_dir / "models").mkdir(parents=True)
    shutil.copyfile(default_embedding_model(), data_dir / "models" / EMBED_FILE)  # a real BERT GGUF in its place
    r = hearth("models", "info", EMBED_ID, data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert "Architecture:   bert" in r.stdout
    assert "Used for:       your documents (embedding model, 384 dimensions)" in r.stdout
    assert "Chat used:" not in r.stdout


@pytest.mark.slow
def test_a_saved_embedding_model_is_not_chatted_with_the_bundled_one_is(data_dir: Path, env: dict[str, str]) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "settings.json").write_text(f'{{"model": "{EMBED_ID}"}}')  # a hand-edited settings file
    r = hearth("ask", "Hi", "--max-tokens", "2", "--json", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert f"{EMBED_ID} is an embedding model" in r.stderr and "Using the bundled model" in r.stderr
    assert '"model": "SmolLM2 135M Instruct (Q4_1)"' in r.stdout


def test_pull_verify_use_and_remove_a_model(data_dir: Path, env: dict[str, str], model_bytes: bytes) -> None:
    r = hearth("models", "pull", PULLED_ID, data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert "downloaded and verified" in r.stderr and "verifying sha256" in r.stderr
    installed = data_dir / "models" / PULLED_FILE
    assert installed.read_bytes() == model_bytes
    assert "downloaded" in hearth("models", "list", data_dir=data_dir, env=env).stdout

    r = hearth("models", "verify", PULLED_ID, data_dir=data_dir, env=env)
    assert r.returncode == 0 and "OK (sha256" in r.stdout

    r = hearth("models", "info", PULLED_ID, data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert "Architecture:   llama" in r.stdout and "Q4_1" in r.stdout and "Memory:" in r.stdout

    r = hearth("ask", "Say hello.", "--model", PULLED_ID, "--max-tokens", "8", "--json", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert '"model": "Tiny Chat (Q4_1)"' in r.stdout

    # Removing asks first: with no terminal and no --yes nothing happens.
    r = hearth("models", "rm", PULLED_ID, data_dir=data_dir, env=env)
    assert r.returncode == 2 and "asks first" in r.stderr and installed.exists()
    r = hearth("models", "rm", PULLED_ID, "--yes", data_dir=data_dir, env=env)
    assert r.returncode == 0 and "freed 98 MB" in r.stderr
    assert not installed.exists()
    assert "not downloaded" in hearth("models", "list", data_dir=data_dir, env=env).stdout


def test_verify_catches_a_damaged_installed_model(data_dir: Path, env: dict[str, str]) -> None:
    assert hearth("models", "pull", PULLED_ID, data_dir=data_dir, env=env).returncode == 0
    installed = data_dir / "models" / PULLED_FILE
    with installed.open("r+b") as f:
        f.seek(50_000_000)
        byte = f.read(1)
        f.seek(50_000_000)
        f.write(bytes([byte[0] ^ 1]))
    r = hearth("models", "verify", PULLED_ID, data_dir=data_dir, env=env)
    assert r.returncode == 1 and "damaged or changed" in r.stdout


def test_a_pull_killed_midway_resumes_where_it_stopped(
    data_dir: Path, env: dict[str, str], hub: HubServer, model_bytes: bytes
) -> None:
    hub.faults.rate_bytes_per_s = 40_000_000
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "models", "pull", PULLED_ID, "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    partial = data_dir / "models" / ".partial"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        parts = list(partial.glob("*.part")) if partial.is_dir() else []
        if parts and parts[0].stat().st_size > len(model_bytes) // 3:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # a crash: no cleanup runs
    proc.wait(10)
    (part,) = partial.glob("*.part")
    kept = part.stat().st_size
    assert 0 < kept < len(model_bytes)
    listed = hearth("models", "list", data_dir=data_dir, env=env).stdout
    assert "paused at" in next(line for line in listed.splitlines() if line.startswith(PULLED_ID))

    hub.faults.rate_bytes_per_s = None
    r = hearth("models", "pull", PULLED_ID, data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert "resumed from" in r.stderr
    assert hub.requests[-1].range == f"bytes={kept}-"
    assert hub.requests[-1].body_bytes == len(model_bytes) - kept
    assert (data_dir / "models" / PULLED_FILE).read_bytes() == model_bytes


@pytest.mark.slow
@pytest.mark.parametrize("inherited", [signal.SIG_DFL, signal.SIG_IGN], ids=["sigint-default", "sigint-ignored"])
def test_ctrl_c_stops_a_pull_and_keeps_the_part(
    data_dir: Path, env: dict[str, str], hub: HubServer, inherited: signal.Handlers
) -> None:
    # "sigint-ignored": started as from a shell's background job (or a test run from one), where
    # Python installs no KeyboardInterrupt handler and the pull ran to its end.
    hub.faults.rate_bytes_per_s = 20_000_000
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "models", "pull", PULLED_ID, "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, inherited),
    )
    partial = data_dir / "models" / ".partial"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (partial.is_dir() and any(partial.glob("*.part"))):
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert "stopped" in err and "resume" in err
    assert any(partial.glob("*.part"))


EMBEDDING_REFUSED = (
    f"{EMBED_ID} is an embedding model, for your documents (hearth docs model {EMBED_ID}); "
    "choose a chat model: hearth models list"
)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("models", "pull", "no-such-model"), "There is no model 'no-such-model'. Known models: smollm2"),
        (("models", "rm", "smollm2-135m-instruct-q4_1", "--yes"), "comes with Hearth and cannot be removed"),
        (("models", "verify", PULLED_ID), "is not installed"),
        (("ask", "hi", "--model", PULLED_ID), "is not downloaded yet: run `hearth models pull tiny-chat-q4_1`"),
        (("ask", "hi", "--ctx", "10"), "Context length must be between 256"),
        (("ask", "hi", "--model", EMBED_ID), EMBEDDING_REFUSED),
        (("serve", "--model", EMBED_ID), EMBEDDING_REFUSED),
        (("--model", EMBED_ID), EMBEDDING_REFUSED),  # the window
        (("models", "template", EMBED_ID, "chatml"), EMBEDDING_REFUSED),
    ],
    ids=[
        "unknown-id",
        "rm-bundled",
        "verify-missing",
        "ask-not-downloaded",
        "bad-context",
        "ask-embedding",
        "serve-embedding",
        "window-embedding",
        "template-embedding",
    ],
)
def test_bad_requests_get_a_clear_message_and_exit_2(
    data_dir: Path, env: dict[str, str], args: tuple[str, ...], words: str
) -> None:
    r = hearth(*args, data_dir=data_dir, env=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert words in r.stderr
    assert "Traceback" not in r.stderr


def test_add_by_path_reads_the_header_and_refuses_what_is_not_a_model(
    data_dir: Path, env: dict[str, str], model_path: Path, not_gguf_file: Path, tmp_path: Path
) -> None:
    r = hearth("models", "add", str(not_gguf_file), data_dir=data_dir, env=env)
    assert r.returncode == 2 and "notes.gguf is not a GGUF model file" in r.stderr
    assert "local-notes" not in hearth("models", "list", data_dir=data_dir, env=env).stdout

    r = hearth("models", "add", str(model_path), data_dir=data_dir, env=env)
    assert r.returncode == 0 and "already in your models as smollm2-135m-instruct-q4_1" in r.stderr

    mine = tmp_path / "My Model.gguf"
    shutil.copyfile(model_path, mine)
    r = hearth("models", "add", str(mine), data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert "Parameters:     135M" in r.stdout and "Context length: 8,192" in r.stdout
    assert "added as local-my-model" in r.stderr
    listed = hearth("models", "list", data_dir=data_dir, env=env).stdout
    assert f"added: {mine}" in listed
    r = hearth("ask", "Hi", "--model", "local-my-model", "--max-tokens", "4", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    # Removing an added model forgets it but never deletes the person's file.
    r = hearth("models", "rm", "local-my-model", "--yes", data_dir=data_dir, env=env)
    assert r.returncode == 0 and f"the file stays at {mine}" in r.stderr and mine.exists()
    assert "local-my-model" not in hearth("models", "list", data_dir=data_dir, env=env).stdout


def test_ask_refuses_a_model_that_cannot_fit_unless_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    from app.main import main

    monkeypatch.setattr("engine.fit.available_memory", lambda: 200_000_000)  # a machine with 200 MB free
    code = main(["ask", "hi", "--ctx", "8192", "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Too big: needs about" in err and "0.2 GB" in err and "--force loads it anyway" in err
    assert not (data_dir / "hearth.db").exists()  # refused before anything was written


def test_a_saved_model_that_was_removed_falls_back_to_the_bundled_one(
    data_dir: Path, env: dict[str, str], tmp_path: Path, model_path: Path
) -> None:
    mine = tmp_path / "gone.gguf"
    shutil.copyfile(model_path, mine)
    assert hearth("models", "add", str(mine), data_dir=data_dir, env=env).returncode == 0
    (data_dir / "settings.json").write_text('{"model": "local-gone"}')  # chosen in the window last time
    mine.unlink()
    r = hearth("ask", "Hi", "--max-tokens", "4", "--json", data_dir=data_dir, env=env)
    assert r.returncode == 0, r.stderr
    assert "The file of gone is gone" in r.stderr and "Using the bundled model" in r.stderr
    assert '"model": "SmolLM2 135M Instruct (Q4_1)"' in r.stdout
    (data_dir / "settings.json").write_text('{"model": "no-such-id"}')
    r = hearth("ask", "Hi", "--max-tokens", "4", data_dir=data_dir, env=env)
    assert r.returncode == 0 and "There is no model 'no-such-id'" in r.stderr and "Using the bundled model" in r.stderr


def _without_template(model_path: Path, dest: Path) -> Path:
    """The bundled model with its chat template's key renamed (same length): a file with no template."""
    raw = bytearray(model_path.read_bytes())
    at = raw.find(b"tokenizer.chat_template")
    assert at > 0 and raw.count(b"tokenizer.chat_template") == 1
    raw[at : at + 23] = b"tokenizer.chat_templatX"
    dest.write_bytes(bytes(raw))
    return dest


def test_a_model_without_a_chat_template_is_named_as_such_and_one_can_be_chosen(
    data_dir: Path, env: dict[str, str], tmp_path: Path, model_path: Path
) -> None:
    base = _without_template(model_path, tmp_path / "smollm2-base.gguf")
    info = hearth("models", "info", str(base), data_dir=data_dir, env=env)
    assert info.returncode == 0, info.stderr
    assert "has no chat template" in info.stdout and "ChatML, a guess" in info.stdout
    assert "looks like a base model" in info.stdout
    asked = hearth("ask", "Hello", "--json", "--max-tokens", "4", "--model", str(base), data_dir=data_dir, env=env)
    result = json.loads(asked.stdout)
    assert asked.returncode == 0 and any("has no chat template" in n for n in result["notes"])
    assert "note: smollm2-base.gguf has no chat template" in asked.stderr
    chosen = hearth("models", "template", str(base), "chatml", data_dir=data_dir, env=env)
    assert chosen.returncode == 0, chosen.stderr
    again = json.loads(
        hearth("ask", "Hello", "--json", "--max-tokens", "4", "--model", str(base), data_dir=data_dir, env=env).stdout
    )
    assert again["notes"] == ["Chat template: ChatML, chosen for smollm2-base.gguf."]
    assert hearth("models", "template", str(base), "klingon", data_dir=data_dir, env=env).returncode == 2
    # A model with its own template says nothing.
    plain = json.loads(hearth("ask", "Hello", "--json", "--max-tokens", "4", data_dir=data_dir, env=env).stdout)
    assert plain["notes"] == []


def test_the_template_for_an_architecture_that_tells_and_the_base_model_guess() -> None:
    from engine.template_choice import choose_template, looks_like_base_model

    gemma = choose_template(
        None, architecture="gemma3", chosen=None, file_name="gemma-3-270m.gguf", model_name="Gemma 3 270m"
    )
    assert gemma.name == "gemma" and "Gemma's, the usual one for gemma3" in gemma.note and "base model" in gemma.note
    assert choose_template("{{ x }}", architecture="llama", chosen=None, file_name="m.gguf").note == ""
    assert not looks_like_base_model("gemma-3-270m-it") and not looks_like_base_model("Qwen2.5 7B Instruct")
    assert looks_like_base_model("Llama 3.2 1B", "llama-3.2-1b.Q4_K_M.gguf")
