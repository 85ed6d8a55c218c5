"""Which files a person's PATHs expand to, in what order, and what is said about the rest."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.documents.extract import Skipped
from app.core.documents.walk import walk


def _tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"text of {name}")


def _listed(paths: list[Path], root: Path) -> list[tuple[str, str]]:
    return [(str(p.relative_to(root)), k.code if isinstance(k, Skipped) else k) for p, k in walk(paths)]


def test_folders_expand_in_a_stable_order_leaving_out_tools_state(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        [
            "notes/b.md", "notes/a.txt", "notes/sub/z.py", "notes/sub/deeper/x.rst", "notes/a-sub/y.html",
            "notes/.git/config.txt", "notes/.hidden.md", "notes/node_modules/lib/index.js",
            "notes/__pycache__/m.py", "notes/photo.jpeg", "report.pdf",
        ],
    )  # fmt: skip
    got = _listed([tmp_path / "notes", tmp_path / "report.pdf"], tmp_path)
    assert got == [
        ("notes/a.txt", "text"),
        ("notes/b.md", "markdown"),
        ("notes/photo.jpeg", "unsupported"),
        ("notes/a-sub/y.html", "html"),
        ("notes/sub/z.py", "code"),
        ("notes/sub/deeper/x.rst", "rst"),
        ("report.pdf", "pdf"),
    ]
    assert _listed([tmp_path / "notes"], tmp_path) == got[:-1], "the same order every time"


def test_a_hidden_file_named_by_the_person_is_taken(tmp_path: Path) -> None:
    _tree(tmp_path, [".plan.md"])
    assert _listed([tmp_path / ".plan.md"], tmp_path) == [(".plan.md", "markdown")]


def test_a_symlink_loop_is_reported_once_and_not_followed(tmp_path: Path) -> None:
    _tree(tmp_path, ["notes/a.md", "notes/inner/b.md"])
    (tmp_path / "notes" / "inner" / "back").symlink_to(tmp_path / "notes")
    (tmp_path / "notes" / "self.md").symlink_to(tmp_path / "notes" / "self.md")
    got = _listed([tmp_path / "notes"], tmp_path)
    assert got == [
        ("notes/a.md", "markdown"),
        ("notes/self.md", "loop"),
        ("notes/inner/b.md", "markdown"),
        ("notes/inner/back", "loop"),
    ]


def test_links_to_files_and_folders_are_followed_once(tmp_path: Path) -> None:
    _tree(tmp_path, ["real/a.md", "other/c.md"])
    (tmp_path / "real" / "alias.md").symlink_to(tmp_path / "real" / "a.md")
    (tmp_path / "real" / "more").symlink_to(tmp_path / "other")
    got = _listed([tmp_path / "real", tmp_path / "other"], tmp_path)
    assert got == [("real/a.md", "markdown"), ("real/more/c.md", "markdown")]


def test_broken_links_missing_paths_and_pipes_are_reported(tmp_path: Path) -> None:
    _tree(tmp_path, ["box/ok.md"])
    (tmp_path / "box" / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    os.mkfifo(tmp_path / "box" / "pipe.txt")
    got = _listed([tmp_path / "box", tmp_path / "missing"], tmp_path)
    assert got == [
        ("box/dangling.md", "vanished"),
        ("box/ok.md", "markdown"),
        ("box/pipe.txt", "unreadable"),
        ("missing", "vanished"),
    ]


@pytest.mark.skipif(os.name == "posix" and os.geteuid() == 0, reason="root lists a chmod 000 folder anyway")
def test_an_unreadable_folder_is_reported_and_the_rest_walked(tmp_path: Path) -> None:
    _tree(tmp_path, ["a/locked/secret.md", "a/open.md"])
    (tmp_path / "a" / "locked").chmod(0)
    try:
        got = _listed([tmp_path / "a"], tmp_path)
    finally:
        (tmp_path / "a" / "locked").chmod(0o755)
    assert got == [("a/open.md", "markdown"), ("a/locked", "unreadable")]


def test_a_very_deep_tree_is_walked_without_recursion(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["d"] * 300))
    deep.mkdir(parents=True)
    (deep / "bottom.md").write_text("found")
    assert [k for _, k in walk([tmp_path])] == ["markdown"]
