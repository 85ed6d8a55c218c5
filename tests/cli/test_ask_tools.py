"""`hearth ask --tools`: a real `hearth` process, its model a scripted OpenAI-compatible server
(added as a provider) that asks for calls as OpenAI streams them, or the bundled model under a
grammar; its tools the real MCP test server over stdio and the built-ins.

What a person notices: a call is asked about on the terminal first (escaped: the arguments are the
model's text), "no" is told to the model, without a terminal a call is refused unless
--allow-tools names it, a name that is no tool is said before anything runs, and Ctrl-C during a
call ends it, its server's process too, with exit 130.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from processes import gone
from sse_server import Request, Script, ScriptedServer

from store import Store
from tests.core.test_tool_loop import call_reply
from tests.core.test_tool_loop import model as calling
from tests.core.tools.servers import stdio_entry

pytestmark = pytest.mark.slow


def hearth(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
    )


def with_tools(data_dir: Path, server: ScriptedServer | None = None) -> None:
    """mcp.json with the test server, and the scripted model as the provider "box"."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "mcp.json").write_text(json.dumps({"mcpServers": {"test": stdio_entry()}}), encoding="utf-8")
    if server is not None:
        added = hearth("providers", "add", "box", "--url", server.base_url + "/v1", "--model", "m", data_dir=data_dir)
        assert added.returncode == 0, added.stderr


def rows(data_dir: Path, conversation: int = 1) -> list[object]:
    with Store.open_read_only(data_dir / "hearth.db") as store:
        return list(store.reads.messages(conversation))


def on_terminal(*args: str, data_dir: Path, answer: Callable[[bytes], bytes | None]) -> tuple[int, bytes]:
    """`hearth ARGS` with stdin, stdout and stderr on a pseudo-terminal; `answer(output so far)`
    returns what to type, once, when it is time (None: not yet)."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)], stdin=child, stdout=child, stderr=child
    )
    os.close(child)
    out, typed = bytearray(), False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(main, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
            if not typed and (keys := answer(bytes(out))) is not None:
                os.write(main, keys)
                typed = True
        return proc.wait(30), bytes(out).replace(b"\r\n", b"\n")
    finally:
        os.close(main)
        if proc.poll() is None:
            proc.kill()


HOSTILE = "hi \x1b]0;pwned\x07 there"  # arguments that would set the terminal's title


@pytest.mark.parametrize(
    ("typed", "status"), [(b"y\n", "ok"), (b"n\n", "denied"), (b"a\n", "ok")], ids=["yes", "no", "always"]
)
def test_a_call_is_asked_about_on_the_terminal_first(data_dir: Path, typed: bytes, status: str) -> None:
    arguments = json.dumps({"text": HOSTILE})
    with ScriptedServer(calling("echo", arguments)) as server:
        with_tools(data_dir, server)
        rc, out = on_terminal(
            "ask", "Say hi", "--provider", "box", "--tools", "test",
            data_dir=data_dir, answer=lambda seen: typed if b"[N] no: " in seen else None,
        )  # fmt: skip
        told = server.requests[-1].json["messages"][-1]
    assert rc == 0, out
    assert b"the model asks to call test/echo with:" in out
    assert b"0;pwned" in out  # the arguments are shown ...
    assert b"\x1b]0;pwned" not in out and b"\x07" not in out  # shown escaped, never acted on
    found = rows(data_dir)
    assert [r.role for r in found] == ["user", "assistant", "tool", "assistant"]  # type: ignore[attr-defined]
    assert found[2].tool_run.status == status  # type: ignore[attr-defined]
    assert told["role"] == "tool" and (HOSTILE in told["content"]) == (status == "ok")
    with Store.open_read_only(data_dir / "hearth.db") as store:
        settings = store.reads.conversation_settings(1)
    assert settings["tools"]["chosen"] == ["test/*"]  # type: ignore[index]
    assert settings["tools"]["always"] == (["test/echo"] if typed == b"a\n" else [])  # type: ignore[index]


def test_without_a_terminal_a_call_is_refused_unless_allowed(data_dir: Path) -> None:
    with ScriptedServer(calling("echo", '{"text": "piped"}')) as server:
        with_tools(data_dir, server)
        refused = hearth("ask", "Say it", "--provider", "box", "--tools", "test", data_dir=data_dir)
        allowed = hearth(
            "ask", "Say it", "--provider", "box", "--tools", "test", "--allow-tools", "test/echo", "--json",
            data_dir=data_dir,
        )  # fmt: skip
    assert refused.returncode == 0, refused.stderr
    assert "not run: there is no terminal to ask on (--allow-tools test/echo allows it)" in refused.stderr
    assert rows(data_dir, 1)[2].tool_run.status == "denied"  # type: ignore[attr-defined]
    assert allowed.returncode == 0, allowed.stderr
    result = json.loads(allowed.stdout)
    assert [(s["name"], s["status"], s["result"]) for s in result["tool_steps"]] == [("test/echo", "ok", "piped")]
    assert result["text"] == "Read: piped"


def test_a_name_that_is_no_tool_is_said_before_anything_runs(data_dir: Path) -> None:
    with_tools(data_dir)
    done = hearth("ask", "Hi", "--tools", "nope", data_dir=data_dir)
    assert done.returncode == 2
    assert "'nope' is neither an MCP server in" in done.stderr and "hearth tools list" in done.stderr
    assert not (data_dir / "hearth.db").exists() or rows_count(data_dir) == 0


def rows_count(data_dir: Path) -> int:
    with Store.open_read_only(data_dir / "hearth.db") as store:
        return len(store.reads.list_conversations())


def test_ctrl_c_during_a_call_ends_the_tool_and_its_process(data_dir: Path) -> None:
    with ScriptedServer(calling("hang")) as server:
        with_tools(data_dir, server)
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "ask", "Wait", "--provider", "box", "--tools", "test",
             "--allow-tools", "test", "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        try:
            tool_pid = _wait_for_tool_server(proc.pid)
            assert proc.stderr is not None
            said = proc.stderr.readline()
            while said and "calling test/hang" not in said:  # the call has started
                said = proc.stderr.readline()
            time.sleep(0.3)  # the call is under way
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        requests = len(server.requests)
    assert proc.returncode == 130, err
    assert "stopped during a tool call" in err
    assert gone(tool_pid)
    assert requests == 1  # nothing more was asked of the model
    assert rows(data_dir)[2].tool_run.status == "cancelled"  # type: ignore[attr-defined]


def _wait_for_tool_server(pid: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(pid).children(recursive=True):
            try:
                if "mcp_server.py" in " ".join(child.cmdline()):
                    return child.pid
            except psutil.Error:
                continue
        time.sleep(0.05)
    raise AssertionError("the MCP test server never started")


@pytest.mark.model
def test_the_bundled_model_calls_a_built_in_under_a_grammar_and_answers_from_it(data_dir: Path) -> None:
    """SmolLM2's template knows no tools: Hearth describes them, and the grammar makes the call parse."""
    done = hearth(
        "ask", "What time is it?", "--tools", "current_time", "--allow-tools", "current_time",
        "--tool-choice", "required", "--json", data_dir=data_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (step,) = result["tool_steps"]
    assert step["name"] == "hearth/current_time" and step["status"] == "ok"
    assert json.loads(step["arguments"]) == {}
    assert result["state"] == "completed" and result["text"].strip()
    assert [r.role for r in rows(data_dir)] == ["user", "assistant", "tool", "assistant"]  # type: ignore[attr-defined]


def test_calls_in_a_loop_stop_at_the_limit(data_dir: Path) -> None:
    always = lambda request: Script(body=call_reply("echo", '{"text": "again"}', f"c{len(request.json['messages'])}"))  # noqa: E731
    with ScriptedServer(always) as server:
        with_tools(data_dir, server)
        done = hearth(
            "ask", "Loop", "--provider", "box", "--tools", "test", "--allow-tools", "test", "--max-tool-steps", "2",
            "--json", data_dir=data_dir,
        )  # fmt: skip
        choices = [r.json.get("tool_choice", "auto") for r in server.requests]
    assert done.returncode == 0, done.stderr
    assert choices == ["auto", "auto", "none"]
    statuses = [s["status"] for s in json.loads(done.stdout)["tool_steps"]]
    assert statuses == ["ok", "ok", "not_run"]


_ = Request  # the scripted server's request type, used by the imported `calling`


@pytest.mark.model
def test_the_model_searches_the_persons_documents_as_a_tool(data_dir: Path, tmp_path: Path) -> None:
    notes = tmp_path / "keeper.md"
    notes.write_text("# Keeper notes\n\nThe lighthouse lamp is lit at dusk by Ada Quill, the keeper.\n")
    added = hearth("docs", "add", str(notes), "--collection", "notes", data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    done = hearth(
        "ask", "Who lights the lighthouse lamp?", "--tools", "search_documents", "--allow-tools", "search_documents",
        "--tool-choice", "required", "--docs", "notes", "--json", data_dir=data_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (step,) = json.loads(done.stdout)["tool_steps"]
    assert step["name"] == "hearth/search_documents" and step["status"] == "ok"
    assert "[1] keeper.md" in step["result"] and "> The lighthouse lamp is lit at dusk by Ada Quill" in step["result"]
