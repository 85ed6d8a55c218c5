"""mcp.json: the shared `mcpServers` format read and written; a bad file or entry says where and what to do."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from app.core.tools import HttpServer, McpConfigError, StdioServer, add_server, load_mcp_config, remove_server


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document) if not isinstance(document, str) else document, encoding="utf-8")
    return path


def test_a_missing_file_is_no_servers(tmp_path: Path) -> None:
    config = load_mcp_config(tmp_path / "mcp.json")
    assert config.servers == () and config.problems == ()


def test_claude_desktops_format_reads_as_it_is(tmp_path: Path) -> None:
    path = write(tmp_path / "mcp.json", {
        "mcpServers": {
            "files": {"command": "npx", "args": ["-y", "server-filesystem", "/home/me"], "env": {"DEBUG": "1"}},
            "search": {"type": "http", "url": "http://127.0.0.1:8931/mcp", "headers": {"Authorization": "Bearer x"}},
            "old": {"command": "uvx", "args": ["old"], "disabled": True, "autoApprove": ["x"]},
        },
        "globalShortcut": "Ctrl+Space",
    })  # fmt: skip
    config = load_mcp_config(path)
    assert config.problems == ()
    assert config.servers == (
        StdioServer("files", "npx", ("-y", "server-filesystem", "/home/me"), {"DEBUG": "1"}),
        HttpServer("search", "http://127.0.0.1:8931/mcp", {"Authorization": "Bearer x"}),
        StdioServer("old", "uvx", ("old",), {}, disabled=True),
    )
    assert [s.name for s in config.enabled()] == ["files", "search"]


def test_a_file_that_is_not_json_names_itself_and_says_what_to_do(tmp_path: Path) -> None:
    path = write(tmp_path / "mcp.json", '{"mcpServers": {"a": ')
    with pytest.raises(McpConfigError) as caught:
        load_mcp_config(path)
    assert caught.value.code == "not_json" and str(path) in caught.value.message
    assert "fix it" in caught.value.message


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ({"args": ["x"]}, "command", "give the program to start"),
        ({"command": "x", "args": "--flag"}, "args", "list of strings"),
        ({"command": "x", "env": {"N": 1}}, "env", "text values"),
        ({"url": "ftp://host/mcp"}, "url", "http://"),
        ({"type": "sse", "url": "http://h/sse"}, "type", "SSE servers are not supported"),
        ({"command": "x", "disabled": "yes"}, "disabled", "true or false"),
    ],
    ids=["no-command", "args-not-list", "env-not-text", "url-not-http", "sse", "disabled-not-bool"],
)
def test_one_bad_server_is_named_with_its_key_and_the_others_still_load(
    tmp_path: Path, entry: dict[str, object], key: str, words: str
) -> None:
    path = write(tmp_path / "mcp.json", {"mcpServers": {"good": {"command": "ok"}, "broken": entry}})
    config = load_mcp_config(path)
    assert [s.name for s in config.servers] == ["good"]
    (problem,) = config.problems
    assert (problem.server, problem.key) == ("broken", key)
    assert str(path) in problem.message and '"broken"' in problem.message and words in problem.message


def test_the_name_hearth_is_kept_for_the_built_in_tools(tmp_path: Path) -> None:
    config = load_mcp_config(write(tmp_path / "mcp.json", {"mcpServers": {"hearth": {"command": "x"}}}))
    assert config.servers == () and "not 'hearth'" in config.problems[0].message


def test_add_and_remove_keep_the_rest_of_the_file_and_only_the_owner_reads_it(tmp_path: Path) -> None:
    path = write(tmp_path / "mcp.json", {"mcpServers": {"a": {"command": "a", "autoApprove": ["t"]}}, "other": 1})
    add_server(path, "b", {"url": "http://127.0.0.1:9/mcp"})
    with pytest.raises(McpConfigError) as caught:
        add_server(path, "b", {"command": "again"})
    assert caught.value.code == "exists"
    remove_server(path, "a")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == {"mcpServers": {"b": {"url": "http://127.0.0.1:9/mcp"}}, "other": 1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["mcp.json"]  # no temporary file left
    with pytest.raises(McpConfigError):
        add_server(path, "c", {"command": ""})  # checked before it is written
    assert "c" not in json.loads(path.read_text(encoding="utf-8"))["mcpServers"]
