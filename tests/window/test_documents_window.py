"""The Documents window on a real store and real files: adding a folder (through the file dialog or
by dropping it), each file's state and why one was skipped, collections made and refused, bad input
said in the window, removing, and the real indexing process's progress appearing as it runs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox
from ui_fakes import FakeChatService, Reply, run

from app.core.documents.chat_documents import DocumentRetrieval
from app.core.documents.service import DocumentsService
from app.core.paths import db_path
from app.ui.viewmodels.documents import DocumentsViewModel
from app.ui.viewmodels.main import MainViewModel
from app.ui.windows.documents_dialog import DocumentsDialog
from app.ui.windows.main_window import MainWindow
from engine.errors import HearthError
from store import Store

NO_INDEXING = [sys.executable, "-c", "pass"]  # a stand-in for the indexing process: these tests are about the window


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    data_dir.mkdir(parents=True, exist_ok=True)
    with Store.open(db_path(data_dir)) as s:
        yield s


def _dialog(qtbot, store: Store, data_dir: Path, command: list[str] | None) -> DocumentsDialog:
    service = DocumentsService(store.documents, data_dir, command=command)
    d = DocumentsDialog(DocumentsViewModel(service))
    qtbot.addWidget(d)
    d.show()
    qtbot.waitUntil(d.idle)
    return d


@pytest.fixture
def dialog(qtbot, loop, store: Store, data_dir: Path) -> Iterator[DocumentsDialog]:
    d = _dialog(qtbot, store, data_dir, NO_INDEXING)
    yield d
    run(qtbot, d.vm.service.close())


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.\n", encoding="utf-8")
    (folder / "song.mp3").write_bytes(b"ID3" + b"\x00" * 100)
    return folder


def rows(d: DocumentsDialog) -> dict[str, tuple[str, str]]:
    """The files shown: name -> (state, why)."""
    out = {}
    for i in range(d.files.topLevelItemCount()):
        item = d.files.topLevelItem(i)
        out[item.text(0)] = (item.text(1), item.text(2))
    return out


def collections(d: DocumentsDialog) -> list[str]:
    return [d.collections.item(i).text() for i in range(d.collections.count())]


def test_a_folder_added_shows_each_file_and_why_one_is_skipped(
    qtbot, dialog: DocumentsDialog, tmp_path: Path, monkeypatch
) -> None:
    assert "No collection yet" in dialog.title.text()
    folder = _folder(tmp_path)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    qtbot.mouseClick(dialog.add_folder_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.idle() and len(rows(dialog)) == 2)
    shown = rows(dialog)
    assert shown["otters.md"] == ("waiting", "")
    state, why = shown["song.mp3"]
    assert state == "skipped" and "song.mp3 is" in why and "Hearth does not read" in why
    assert collections(dialog) == ["documents\n2 files · 0 passages · 1 skipped · indexing 1 of 2"]
    assert dialog.progress.format() == "1 of 2 files indexed"
    assert "Added to “documents”: 1 to index, 1 skipped" in dialog.strip.label.text()

    # Remove a file: gone from the list, the collection stays.
    dialog.files.topLevelItem(1).setSelected(True)
    qtbot.mouseClick(dialog.remove_file_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.idle() and list(rows(dialog)) == ["otters.md"])
    assert folder.joinpath("song.mp3").exists()  # the file on disk is never touched

    # Remove the collection, after saying yes.
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.StandardButton.Yes)
    qtbot.mouseClick(dialog.remove_collection_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.idle() and collections(dialog) == [])
    assert "Remove “documents”" in asked[0] and "not touched" in asked[0]
    assert rows(dialog) == {} and not dialog.remove_collection_button.isEnabled()


def test_collections_are_made_and_a_taken_name_or_a_vanished_file_is_said(
    qtbot, dialog: DocumentsDialog, tmp_path: Path, monkeypatch
) -> None:
    qtbot.keyClicks(dialog.new_name, "Recipes")
    qtbot.keyClick(dialog.new_name, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.idle() and collections(dialog) == ["Recipes\n0 files · 0 passages"])
    assert dialog.new_name.text() == "" and dialog.title.text() == "Recipes"

    qtbot.keyClicks(dialog.new_name, "recipes")
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.idle)
    assert dialog.strip.kind == "error" and "already a collection called 'recipes'" in dialog.strip.label.text()
    assert dialog.new_name.text() == "recipes"  # kept, to be corrected

    gone = tmp_path / "moved-away.pdf"
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(gone)], ""))
    qtbot.mouseClick(dialog.add_files_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.idle)
    assert dialog.strip.kind == "error" and f"{gone} is no longer there" in dialog.strip.label.text()
    assert dialog.add_files_button.isEnabled()


def test_a_folder_dropped_on_the_window_goes_into_the_chosen_collection(
    qtbot, dialog: DocumentsDialog, tmp_path: Path
) -> None:
    run(qtbot, dialog.vm.create_collection("Work"))
    folder = _folder(tmp_path)
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(folder))])
    drop = QDropEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    dialog.dropEvent(drop)
    qtbot.waitUntil(lambda: dialog.idle() and len(rows(dialog)) == 2)
    assert collections(dialog)[0].startswith("Work\n2 files")


@pytest.mark.slow
@pytest.mark.model
def test_progress_shows_while_the_real_indexing_process_runs(
    qtbot, loop, store: Store, data_dir: Path, tmp_path: Path
) -> None:
    d = _dialog(qtbot, store, data_dir, None)
    try:
        folder = tmp_path / "notes"
        folder.mkdir()
        (folder / "otters.md").write_text("# Otters\n\nSea otters hold hands while they sleep.\n", encoding="utf-8")
        (folder / "blank.txt").write_text("   \n\n", encoding="utf-8")
        d.add_paths([folder])
        qtbot.waitUntil(lambda: rows(d).get("otters.md", ("",))[0].startswith("ready"), timeout=60_000)
        qtbot.waitUntil(lambda: rows(d).get("blank.txt", ("",))[0] == "skipped", timeout=10_000)
        assert rows(d)["otters.md"] == ("ready: 1 passage", "")
        assert "blank.txt" in rows(d)["blank.txt"][1]
        qtbot.waitUntil(lambda: d.progress.format() == "all files done")
        assert collections(d) == ["documents\n2 files · 1 passage · 1 with vectors · 1 skipped"]
    finally:
        run(qtbot, d.vm.service.close())


# -- per chat: the Documents row of the chat settings, and files dropped on the chat ---------------
def _no_model() -> None:
    raise HearthError("no_model", "The embedding model is not installed.")


@pytest.fixture
def chat(qtbot, loop, store: Store, data_dir: Path) -> Iterator[tuple[MainWindow, FakeChatService]]:
    """A window whose chats are scripted (FakeChatService) and whose documents are real."""
    service = FakeChatService()
    retrieval = DocumentRetrieval(store.documents, load_embedder=_no_model)
    docs = DocumentsViewModel(DocumentsService(store.documents, data_dir, command=NO_INDEXING))
    w = MainWindow(MainViewModel(service, service.store, documents=retrieval), documents=docs)
    qtbot.addWidget(w)
    w.show()
    cid = service.store.add_conversation("Otters")
    while run(qtbot, store.create_turn(None, "hello", "m")).conversation_id < cid:  # the same id in the real store
        pass
    run(qtbot, w.vm.open_conversation(cid))
    w.chat_settings.set_open(True)
    yield w, service
    run(qtbot, docs.service.close())


def send(qtbot, w: MainWindow, text: str) -> None:
    qtbot.keyClicks(w.composer, text)
    qtbot.keyClick(w.composer, Qt.Key.Key_Return)


def boxes(w: MainWindow) -> dict[str, bool]:
    return {box.text(): box.isChecked() for box in w.chat_documents.row.boxes.values()}


def test_a_chat_searches_the_collections_checked_in_its_settings(
    qtbot, chat: tuple[MainWindow, FakeChatService], store: Store
) -> None:
    w, service = chat
    run(qtbot, w.documents_vm.service.create_collection("Recipes"))
    run(qtbot, w.documents_vm.service.create_collection("Tax papers"))
    run(qtbot, w.documents_vm.refresh())
    qtbot.waitUntil(lambda: boxes(w) == {"Recipes (0 files)": False, "Tax papers (0 files)": False})  # none by default

    service.enqueue(Reply(["Fine."]))
    send(qtbot, w, "no documents yet")
    qtbot.waitUntil(lambda: len(service.augments) == 1)
    assert service.augments == [None]  # a chat with no collection asks no retrieval at all

    w.chat_documents.row.boxes[next(iter(w.chat_documents.row.boxes))].setChecked(True)
    cid = w.vm.current.conversation_id
    qtbot.waitUntil(lambda: [c.name for c in run(qtbot, store.documents.conversation_collections(cid))] == ["Recipes"])
    qtbot.waitUntil(lambda: not w.vm.current.streaming)
    service.enqueue(Reply(["From your recipes."]))
    send(qtbot, w, "how long does bread rise?")
    qtbot.waitUntil(lambda: len(service.augments) == 2)
    augment = service.augments[1]
    assert augment is not None
    found = run(qtbot, augment("how long does bread rise?", 2000))
    assert found.prompt_text.startswith("how long does bread rise?") and found.sources == ()
    assert found.note == "No embedding model: the passages were found by their words alone."


def test_a_file_dropped_on_the_chat_goes_into_its_own_collection(
    qtbot, chat: tuple[MainWindow, FakeChatService], store: Store, tmp_path: Path
) -> None:
    w, _service = chat
    notes = tmp_path / "otters.md"
    notes.write_text("# Otters\n\nSea otters hold hands while they sleep.\n", encoding="utf-8")
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(notes))])
    viewport = w.transcript.viewport()
    enter = QDragEnterEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(viewport, drop)
    cid = w.vm.current.conversation_id
    qtbot.waitUntil(lambda: "1 file(s) added to this chat" in w.status.notice_label.text())
    own = run(qtbot, store.documents.chat_collection(cid))
    assert [Path(f.path).name for f in run(qtbot, store.documents.files(own.id))] == ["otters.md"]
    assert own.id in w.vm.current.documents.ids  # its next question searches them
    qtbot.waitUntil(lambda: "1 file dropped on this chat is searched too" in w.chat_documents.row.note.text())
    assert w.composer.toPlainText() == ""  # not pasted as a path


def test_the_status_line_shows_indexing_progress_and_opens_the_window(
    qtbot, chat: tuple[MainWindow, FakeChatService], tmp_path: Path
) -> None:
    w, _service = chat
    button = w.documents_window.progress
    assert button.isHidden()
    run(qtbot, w.documents_vm.add([_folder(tmp_path)]))
    qtbot.waitUntil(lambda: button.isVisible())
    assert button.text().startswith("Documents: 1 of 2 files indexed")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    dialog = w.documents_window.dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: len(rows(dialog)) == 2)
    run(qtbot, w.documents_vm.remove_collection(w.documents_vm.overview.collections[0].collection.id))
    qtbot.waitUntil(lambda: button.isHidden())
