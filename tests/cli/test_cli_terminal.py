"""Untrusted text on a terminal: what a hostile imported file, a model's answer or a model file's
metadata holds reaches a real pseudo-terminal with its control characters shown escaped, while a
pipe, a file and --json get the exact text. Each command runs as a real `hearth` process."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gguf_corpus import STRING, enc_kv, enc_str, layout_of, rebuild, write_model
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

from app.cli.terminal import for_terminal

TITLE = "\x1b]0;pwned\x07\x1b[2J Lisbon trip"  # sets the window title, clears the screen
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4K\x07"  # OSC 52: writes "rm -rf ~" to the clipboard
TEXT = f"Try the café {CLIPBOARD}then \u202eevil\u202c and \x9b31mred\x7f."
# An answer's source whose file name and heading carry escapes (a file anyone could have named).
SOURCE_PATH = "/tmp/\x1b[2Jnotes.md"
SOURCE_HEADING = f"Cafés {CLIPBOARD}\u202eevil"
# What may never reach a terminal raw: ESC, BEL, 8-bit CSI, DEL, a bidi override.
RAW = [b"\x1b]", b"\x1b[2J", b"\x07", "\x9b".encode(), b"\x7f", "\u202e".encode()]


def on_terminal(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Run `hearth ARGS` with stdout and stderr on a new pseudo-terminal; what reached it, as bytes."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env=env,
    )
    os.close(child)
    out = bytearray()
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(30), bytes(out).replace(b"\r\n", b"\n")  # the terminal's own newline
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()


def piped(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        env=env,
    )


def shows_escaped(out: bytes, *texts: str) -> None:
    for raw in RAW:
        assert raw not in out, (raw, out)
    for text in texts:
        assert for_terminal(text).encode() in out, (for_terminal(text), out)


@pytest.fixture
def hostile(data_dir: Path, tmp_path: Path) -> Path:
    """A Hearth export someone sent: its title and an answer carry terminal escapes."""
    path = tmp_path / "hostile.json"
    path.write_text(
        json.dumps(
            {
                "format": "hearth.conversation",
                "version": 1,
                "title": TITLE,
                "created_at": 1_700_000_000,
                "messages": [
                    {
                        "id": 1,
                        "parent_id": None,
                        "role": "user",
                        "content": "Where should I go?",
                        "created_at": 1_700_000_000,
                    },
                    {
                        "id": 2,
                        "parent_id": 1,
                        "role": "assistant",
                        "content": TEXT,
                        "created_at": 1_700_000_001,
                        "sources": [
                            {
                                "ordinal": 1,
                                "path": SOURCE_PATH,
                                "heading": SOURCE_HEADING,
                                "start": 0,
                                "end": 10,
                                "score": 0.5,
                                "text": TEXT,
                            }
                        ],
                    },
                ],
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
def test_titles_and_messages_reach_a_terminal_escaped(hostile: Path, data_dir: Path) -> None:
    rc, out = on_terminal("import", str(hostile), data_dir=data_dir)
    assert rc == 0, out
    shows_escaped(out, TITLE)
    assert b"1 conversation imported (2 messages)" in out
    for command in (["list"], ["list", "--messages"], ["show", "1"], ["export", "1"]):
        rc, out = on_terminal(*command, data_dir=data_dir)
        assert rc == 0, (command, out)
        # Markdown export escapes the title's own Markdown too (`\[`), so it is matched without it there.
        shows_escaped(out, *([] if command[0] == "export" else [TITLE]))
        assert b"Lisbon trip" in out
        if command != ["list"]:
            assert for_terminal(" ".join(TEXT.split())[:60]).encode() in out, (command, out)
    rc, out = on_terminal("show", "1", data_dir=data_dir)
    assert for_terminal(TEXT).encode() in out
    assert for_terminal(f"[1] {SOURCE_PATH}, § {SOURCE_HEADING}\n").encode() in out  # its source, escaped too
    rc, out = on_terminal("search", "café", data_dir=data_dir)
    assert rc == 0 and b"\x1b[1m" in out  # Hearth's own bold marks the match: the only escape
    shows_escaped(out, TITLE)


@pytest.mark.slow
def test_json_on_a_terminal_is_the_same_json_and_harmless(hostile: Path, data_dir: Path) -> None:
    piped("import", str(hostile), data_dir=data_dir)
    for command in (["show", "1", "--json"], ["export", "1", "--format", "json"]):
        rc, out = on_terminal(*command, data_dir=data_dir)
        assert rc == 0, out
        for raw in RAW:
            assert raw not in out, (command, raw)
        value = json.loads(out)
        assert value["title"] == TITLE
        assert TEXT in [m["content"] for m in value["messages"]]


@pytest.mark.slow
def test_a_pipe_a_file_and_json_keep_the_exact_text(hostile: Path, data_dir: Path, tmp_path: Path) -> None:
    imported = piped("import", str(hostile), data_dir=data_dir)
    assert imported.returncode == 0 and TITLE.encode() in imported.stdout
    assert piped("list", data_dir=data_dir).stdout == f"1\t{TITLE}\n".encode()
    shown = piped("show", "1", data_dir=data_dir).stdout
    assert shown.startswith(f"# {TITLE}\n".encode()) and TEXT.encode() in shown
    assert TEXT.encode() in piped("export", "1", data_dir=data_dir).stdout
    assert piped("export", "1", "-o", str(tmp_path / "out.md"), data_dir=data_dir).returncode == 0
    assert TEXT in (tmp_path / "out.md").read_text(encoding="utf-8")
    assert f"[1] {SOURCE_PATH}, § {SOURCE_HEADING}\n".encode() in shown
    as_json = json.loads(piped("show", "1", "--json", data_dir=data_dir).stdout)
    assert as_json["title"] == TITLE and as_json["messages"][1]["content"] == TEXT
    assert as_json["messages"][1]["sources"][0]["heading"] == SOURCE_HEADING


@pytest.mark.slow
def test_a_models_answer_is_escaped_on_a_terminal_as_it_streams(data_dir: Path) -> None:
    """A remote model (any server a person points Hearth at) answers with escapes, in pieces."""
    pieces = ["<think>", "Plan \x1b]0;x\x07", "</think>", "Hello ", CLIPBOARD[:4], CLIPBOARD[4:], " \u202eevil"]
    with ScriptedServer([Script(body=openai_stream(pieces))]) as server:
        env = dict(os.environ)
        assert (
            piped(
                "providers", "add", "box", "--url", server.base_url + "/v1", "--model", "m", data_dir=data_dir, env=env
            ).returncode
            == 0
        )
        rc, out = on_terminal("ask", "Hi", "--provider", "box", data_dir=data_dir, env=env)
        exact = piped("ask", "Hi", "--provider", "box", data_dir=data_dir, env=env)
    assert rc == 0, out
    assert b"\x1b]" not in out and b"\x07" not in out and "\u202e".encode() not in out
    assert for_terminal(f"Hello {CLIPBOARD} \u202eevil").encode() in out
    assert for_terminal("Plan \x1b]0;x\x07").encode() in out  # the reasoning, on stderr
    assert exact.returncode == 0 and exact.stdout == f"Hello {CLIPBOARD} \u202eevil\n".encode()


def test_a_model_files_metadata_is_escaped_on_a_terminal(model_path: Path, data_dir: Path, tmp_path: Path) -> None:
    name = "\x1b]0;pwned\x07Smol\u202e"
    head, total = rebuild(
        layout_of(model_path), replace={"general.name": enc_kv("general.name", STRING, enc_str(name))}
    )
    model = write_model(tmp_path / "hostile.gguf", head, total)
    rc, out = on_terminal("models", "info", str(model), data_dir=data_dir)
    assert rc == 0, out
    assert b"\x1b]" not in out and b"\x07" not in out and "\u202e".encode() not in out
    assert for_terminal(name).encode() in out
    assert name.encode() in piped("models", "info", str(model), data_dir=data_dir).stdout


def test_a_providers_file_from_elsewhere_reaches_a_terminal_escaped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "providers.toml").write_text(
        '[[provider]]\nname = "lab\\u001b]0;pwned\\u0007"\nkind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    code, out = on_terminal("providers", "list", data_dir=data)
    assert code == 2 and b"lab\\x1b]0;pwned\\x07" in out and b"\x1b]0;" not in out
