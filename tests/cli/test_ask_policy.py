"""`hearth ask --policy`: a real `hearth` process, the provider a scripted OpenAI-compatible server
on 127.0.0.1, the local model a file that fails to load.

What a person notices: a local-first question is answered by the provider when the local model
cannot load, and every place that shows the answer says which route answered and why: `ask --json`
(a `route` key), the terminal's summary, `hearth show` (text and --json), an export imported into
another data dir, and `hearth stats --route`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sse_server import Script, ScriptedServer
from stream_samples import openai_stream

pytestmark = pytest.mark.slow

WHY = "local-first: fell back because the local model failed to load (bad.gguf is not a GGUF model file"


def hearth(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_local_first_falls_back_and_every_view_says_which_route_and_why(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model at all" * 100)
    with ScriptedServer([Script(body=openai_stream(["From the box."]))]) as box:
        added = hearth("providers", "add", "box", "--url", box.base_url + "/v1", "--model", "m", data_dir=data_dir)
        assert added.returncode == 0, added.stderr
        asked = hearth(
            "ask", "Hi", "--model", str(bad), "--policy", "local-first", "--routes", "box", "--json", data_dir=data_dir
        )
        assert asked.returncode == 0, asked.stderr
        again = hearth(
            "ask", "Again", "--conversation", "1", "--model", str(bad), "--policy", "local-first", "--routes", "box",
            data_dir=data_dir,
        )  # fmt: skip
    result = json.loads(asked.stdout)
    assert result["text"] == "From the box." and result["model"] == "box: m"
    assert result["route"]["name"] == "box" and result["route"]["reason"].startswith(WHY)
    assert again.returncode == 0 and "[route: box · " + WHY in again.stderr

    shown = hearth("show", "1", data_dir=data_dir)
    assert shown.stdout.count("Route: box · " + WHY) == 2
    shown_json = json.loads(hearth("show", "1", "--json", data_dir=data_dir).stdout)
    routes = [m["route"] for m in shown_json["messages"] if m["role"] == "assistant"]
    assert [r["name"] for r in routes] == ["box", "box"] and routes[0]["reason"].startswith(WHY)

    exported = tmp_path / "chat.json"
    assert hearth("export", "1", "-o", str(exported), data_dir=data_dir).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    assert hearth("import", str(exported), data_dir=elsewhere).returncode == 0
    assert hearth("show", "1", data_dir=elsewhere).stdout.count("Route: box · " + WHY) == 2

    stats = json.loads(hearth("stats", "--route", "box", "--json", data_dir=data_dir).stdout)
    assert [(r["route"], r["model"], r["answers"]) for r in stats["routes"]] == [("box", "box: m", 2)]
    assert json.loads(hearth("stats", "--route", "local", "--json", data_dir=data_dir).stdout)["routes"] == []


def test_a_policy_without_routes_is_refused_before_anything_is_saved(data_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"x" * 100)
    refused = hearth("ask", "Hi", "--model", str(bad), "--policy", "deep", data_dir=data_dir)
    assert refused.returncode != 0
    assert "--policy deep --routes: no routes given" in refused.stderr
    assert "There is no conversation" in hearth("show", "1", data_dir=data_dir).stderr
