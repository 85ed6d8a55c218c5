"""`hearth tools list`: every server in mcp.json with its state and tools, the built-ins, and a bad
file's error; untrusted descriptions reach a terminal escaped."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.main import FrontEnds, main
from tests.core.tools.servers import stdio_entry


def hearth(*args: str) -> int:
    return main(list(args), front_ends=FrontEnds(window=lambda **_: 1, bench=lambda **_: 1))


def test_no_mcp_json_lists_the_built_ins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert hearth("tools", "list", "--data-dir", str(tmp_path)) == 0
    out = capsys.readouterr().out
    assert f"No MCP servers: {tmp_path / 'mcp.json'} lists none." in out
    assert "hearth/current_time" in out and "hearth/read_file" in out


def test_a_broken_mcp_json_is_named_with_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mcp.json").write_text("{not json", encoding="utf-8")
    assert hearth("tools", "list", "--data-dir", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"hearth: error: {tmp_path / 'mcp.json'} is not valid JSON" in err and "fix it" in err


@pytest.mark.slow
def test_every_server_is_listed_with_its_state_and_tools(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mcp.json").write_text(
        json.dumps({"mcpServers": {
            "test": stdio_entry(),
            "gone": {"command": "no-such-mcp-server"},
            "off": {"url": "http://127.0.0.1:9/mcp", "disabled": True},
            "broken": {"args": ["x"]},
        }}),
        encoding="utf-8",
    )  # fmt: skip
    assert hearth("tools", "list", "--json", "--data-dir", str(tmp_path)) == 0
    listed = json.loads(capsys.readouterr().out)
    servers = {s["name"]: s for s in listed["servers"]}
    assert servers["test"]["state"] == "ready" and "test/echo" in [t["name"] for t in servers["test"]["tools"]]
    assert servers["gone"]["state"] == "unreachable" and "not found on PATH" in servers["gone"]["problem"]
    assert servers["off"]["state"] == "disabled" and servers["off"]["tools"] == []
    assert listed["problems"][0]["server"] == "broken" and listed["problems"][0]["key"] == "command"
    builtins = [t["name"] for t in listed["builtin"]]
    assert builtins == ["hearth/current_time", "hearth/read_file", "hearth/search_documents"]


@pytest.mark.slow
def test_a_servers_descriptions_reach_a_terminal_escaped(tmp_path: Path) -> None:
    """A tool description is the server's text: one that clears the screen or sets the title is shown escaped."""
    script = tmp_path / "evil.py"
    script.write_text(
        "from mcp.server.mcpserver import MCPServer\n"
        "s = MCPServer('evil')\n"
        "@s.tool(description='hi\\x1b]0;pwned\\x07\\x1b[2J there')\n"
        "def t() -> str:\n    return ''\n"
        "s.run('stdio')\n",
        encoding="utf-8",
    )
    (tmp_path / "mcp.json").write_text(
        json.dumps({"mcpServers": {"evil": {"command": sys.executable, "args": [str(script)]}}}), encoding="utf-8"
    )
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "tools", "list", "--data-dir", str(tmp_path)],
        stdout=follower, stderr=subprocess.DEVNULL, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    text = out.decode()
    assert "evil/t  hi\\x1b]0;pwned\\x07\\x1b[2J there" in text and "\x1b" not in text
