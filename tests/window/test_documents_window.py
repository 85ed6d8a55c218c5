"""The Documents window on a real store and real files: adding a folder (through the file dialog or
by dropping it), each file's state and why one was skipped, collections made and refused, bad input
said in the window, removing, and the real indexing process's progress appearing as it runs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog, QMessageBox
from ui_fakes import run

from app.core.documents.service import DocumentsService
from app.core.paths import db_path
from app.ui.viewmodels.documents import DocumentsViewModel
from app.ui.windows.documents_dialog import DocumentsDialog
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
        assert collections(d) == ["documents\n2 files · 1 passages · 1 with vectors · 1 skipped"]
    finally:
        run(qtbot, d.vm.service.close())
