"""The Linux installers, built and run as a new user would: no virtualenv, no repository.

Builds the bundle once (packaging/bundle.py; a few minutes) unless HEARTH_BUNDLE_DIST names a
folder that already holds one, then unpacks the tarball and installs the .deb (dpkg into a
temporary root) and runs them with an empty environment (`env -i HOME=... PATH=/usr/bin:/bin`)
from a folder outside the repository: `hearth ask` answers on the bundled model, `hearth
doctor` exits 0, and the window is painted on a virtual X display (the screenshot is kept).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from xscreen import start_watcher, xvfb

pytestmark = pytest.mark.slow  # whole `hearth` processes, fault runs or benchmarks: not in the fast loop

_REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.bundle,
    pytest.mark.timeout(1800),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux installers"),
]


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ready = os.environ.get("HEARTH_BUNDLE_DIST")
    if ready and list(Path(ready).glob("hearth-*-linux-*.tar.gz")):
        return Path(ready)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [
            sys.executable,
            str(_REPO / "packaging" / "bundle.py"),
            "--dist",
            str(out),
            "--work",
            str(tmp_path_factory.mktemp("work")),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (out / "bundle.json").write_text(done.stdout)
    return out


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", **extra}


@pytest.fixture(scope="session")
def unpacked(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    (tarball,) = dist.glob("hearth-*-linux-*.tar.gz")
    into = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="tar")
    (folder,) = into.iterdir()
    return folder


def _ask(exe: Path, home: Path) -> dict:
    done = subprocess.run(
        [
            "env",
            "-i",
            *[f"{k}={v}" for k, v in _clean_env(home).items()],
            str(exe),
            "ask",
            "Say hello.",
            "--json",
            "--max-tokens",
            "12",
            "--temperature",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=home,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_the_tarball_holds_the_app_and_answers_with_an_empty_environment(unpacked: Path, tmp_path: Path) -> None:
    for name in ("hearth", "hearth.desktop", "hearth.png", "add-to-menu.sh"):
        assert (unpacked / name).is_file(), name
    internal = unpacked / "_internal"
    assert list(internal.rglob("SmolLM2-135M-Instruct.Q4_1.gguf")), "the bundled model"
    assert list(internal.rglob("libggml-cpu-x64.so")) and list(internal.rglob("libggml-cpu-haswell.so"))
    assert list(internal.rglob("libqxcb.so")) and list(internal.rglob("libxcb-cursor.so.0")), (
        "Qt's X11 plugin and its libraries"
    )
    assert (internal / "app" / "core" / "models" / "models.toml").is_file() and (
        internal / "engine" / "wire_formats.toml"
    ).is_file()
    home = tmp_path / "home"
    home.mkdir()
    answer = _ask(unpacked / "hearth", home)
    assert answer["state"] == "completed" and answer["text"].strip()
    assert (home / ".local/share/Hearth/hearth.db").is_file()  # the data went where platformdirs says


def test_the_bundle_indexes_and_searches_documents_with_its_own_embedding_model(unpacked: Path, tmp_path: Path) -> None:
    assert list((unpacked / "_internal" / "embedding").glob("*.gguf")), "the embedding model, converted at build time"
    home = tmp_path / "home"
    notes = home / "notes"
    notes.mkdir(parents=True)
    (notes / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.\n", encoding="utf-8")
    (notes / "paper.pdf").write_bytes(b"%PDF-1.4 not really")  # parsed in the bundle's own child process

    def hearth(*args: str) -> subprocess.CompletedProcess[str]:
        env = [f"{k}={v}" for k, v in _clean_env(home).items()]
        run = ["env", "-i", *env, str(unpacked / "hearth"), *args]
        return subprocess.run(run, capture_output=True, text=True, timeout=300, cwd=home)

    added = hearth("docs", "add", str(notes))
    assert added.returncode == 0 and "paper.pdf" in added.stderr, added.stderr[-3000:]
    found = hearth("docs", "search", "animals holding paws while asleep", "--json")
    assert found.returncode == 0, found.stderr[-3000:]
    result = json.loads(found.stdout)
    assert not result["text_only"] and Path(result["hits"][0]["path"]).name == "otters.md"
    assert not (home / ".cache" / "Hearth" / "embedding").exists()  # nothing converted on the person's machine


def test_the_bundle_lists_the_tools_of_an_mcp_server_over_http(unpacked: Path, tmp_path: Path) -> None:
    """The MCP client (the mcp SDK and what it imports) works frozen: the bundle reaches a real
    MCP server (the tests', run from this venv) and lists its tools."""
    from tests.core.tools.servers import http_server

    home = tmp_path / "home"
    data = home / ".local/share/Hearth"
    data.mkdir(parents=True)
    with http_server("web") as server:
        (data / "mcp.json").write_text(json.dumps({"mcpServers": {"web": {"url": server.url}}}))
        env = [f"{k}={v}" for k, v in _clean_env(home).items()]
        listed = subprocess.run(
            ["env", "-i", *env, str(unpacked / "hearth"), "tools", "list", "--json"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=home,
        )
    assert listed.returncode == 0, listed.stderr[-3000:]
    (web,) = json.loads(listed.stdout)["servers"]
    assert web["state"] == "ready", web
    assert {"web/echo", "web/add"} <= {t["name"] for t in web["tools"]}


def test_doctor_in_the_bundle_is_all_well_and_uses_the_bundles_own_llama_cpp(unpacked: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        ["env", "-i", *[f"{k}={v}" for k, v in _clean_env(home).items()], str(unpacked / "hearth"), "doctor", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=home,
    )
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"], json.dumps(report["findings"], indent=1)
    assert report["hearth"]["install"] == "bundle"
    backends = report["llama_cpp"]["backends"]
    assert backends["lib_dir"].startswith(str(unpacked)) and backends["cpu_module"]
    assert report["llama_cpp"]["sampler_cut"] == "native"  # engine/_pick.c travels in the bundle
    assert str(_REPO) not in json.dumps(report)


def test_the_deb_installs_with_dpkg_and_runs(dist: Path, tmp_path: Path) -> None:
    debs = list(dist.glob("hearth_*.deb"))
    if not debs or shutil.which("dpkg") is None:
        pytest.skip("no .deb was built (dpkg-deb missing)")
    info = subprocess.run(["dpkg-deb", "--field", str(debs[0]), "Package", "Depends"], capture_output=True, text=True)
    assert "Package: hearth" in info.stdout and "libc6" in info.stdout
    root = tmp_path / "root"
    (root / "var/lib/dpkg/updates").mkdir(parents=True)
    (root / "var/lib/dpkg/info").mkdir()
    (root / "var/lib/dpkg/status").touch()
    done = subprocess.run(
        ["dpkg", f"--root={root}", "--force-depends", "--force-not-root", "--log=/dev/null", "--install", str(debs[0])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (root / "usr/share/applications/hearth.desktop").is_file()
    assert (root / "usr/share/icons/hicolor/256x256/apps/hearth.png").is_file()
    assert "/opt/hearth/hearth" in (root / "usr/bin/hearth").read_text()
    listed = subprocess.run(["dpkg", f"--root={root}", "-L", "hearth"], capture_output=True, text=True).stdout
    assert "/opt/hearth/hearth" in listed
    home = tmp_path / "home"
    home.mkdir()
    answer = _ask(root / "opt/hearth/hearth", home)
    assert answer["state"] == "completed" and answer["text"].strip()


def _answers(db: Path) -> list[tuple[str, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT g.state, m.content FROM message m JOIN generation g ON g.message_id = m.id "
            "WHERE m.role = 'assistant' ORDER BY g.id"
        ).fetchall()


def _type_a_question(display: str, db: Path) -> list[tuple[str, str]]:
    """Type into the window as a person would (xdotool) and wait for the saved answer."""
    env = {**os.environ, "DISPLAY": display}
    win = subprocess.run(
        ["xdotool", "search", "--sync", "--onlyvisible", "--name", "Hearth"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    ).stdout.split()
    assert win, "no Hearth window on the display"
    subprocess.run(["xdotool", "windowfocus", "--sync", win[0]], env=env, timeout=30, check=True)
    subprocess.run(["xdotool", "type", "--delay", "15", "Say hello in French."], env=env, timeout=30, check=True)
    subprocess.run(["xdotool", "key", "Return"], env=env, timeout=30, check=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        answers = _answers(db)
        if answers and answers[-1][0] == "completed":
            return answers
        time.sleep(0.2)
    return _answers(db)


def test_the_window_opens_on_x11_from_the_bundle_and_answers(unpacked: Path, tmp_path: Path) -> None:
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed: bash packaging/system-deps.sh --smoke (.ci/run does)")
    home = tmp_path / "home"
    home.mkdir()
    shots = Path(os.environ.get("HEARTH_SCREENSHOT_DIR", tmp_path))
    answers: list[tuple[str, str]] = []
    with xvfb(":93") as display:
        watcher = start_watcher(display, shots / "bundle-window.png", timeout=90)
        started = time.time()
        app = subprocess.Popen(
            [
                "env",
                "-i",
                *[f"{k}={v}" for k, v in _clean_env(home, DISPLAY=display).items()],
                str(unpacked / "hearth"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=home,
        )
        try:
            out, _ = watcher.communicate(timeout=120)
            painted = json.loads(out)["painted_at"]
            if painted and shutil.which("xdotool"):
                answers = _type_a_question(display, home / ".local/share/Hearth/hearth.db")
                shot = start_watcher(display, shots / "bundle-answer.png", timeout=5)
                shot.communicate(timeout=60)
            alive = app.poll() is None
        finally:
            app.terminate()
            _, app_err = app.communicate(timeout=30)
    assert painted > 0, f"no window was painted within 90 s; the app said: {app_err[-2000:]}"
    assert alive, app_err[-2000:]
    assert (shots / "bundle-window.png").stat().st_size > 10_000
    assert "qt.qpa.plugin" not in app_err, app_err  # Qt found and loaded its xcb platform plugin
    if shutil.which("xdotool"):
        assert answers and answers[-1][0] == "completed" and answers[-1][1].strip(), (answers, app_err[-2000:])
    print(f"window painted {painted - started:.2f} s after launch; screenshots in {shots}")
