"""The files to index under the PATHs a person gives: `walk(paths)` yields `(path, kind)` or
`(path, Skipped)`, in a stable order: the paths as given; in each folder, its files by name, then its folders
by name, depth first.

What a folder walk leaves out, silently, and why:
- hidden files and folders (a name starting with "."): `.git`, `.venv`, `.cache`, editor swap files
  are tools' state, not documents, and a `.git` holds thousands of compressed objects;
- folders that hold installed or generated code rather than writing: `node_modules`,
  `__pycache__`, `site-packages`, `venv`, `.tox`-like hidden ones (already covered above).
A path given by name is never left out, hidden or not: the person asked for it.

Symbolic links are followed (a link to a folder of notes is a folder of notes), but each folder is
entered once, by its device and inode: a link back to a folder above it is a loop, reported once
as Skipped loop; a second way into a folder already walked is passed over silently. A file reached
twice (two links) is yielded once. Files in a folder that are not of a kind Hearth reads are
yielded as Skipped unsupported, so a person sees why they are not there; devices, pipes and
sockets are skipped as unreadable without being opened (opening a pipe can block for ever).

Owns: listing. Must not: open or read files (extract.py does, and checks them again: a file can
vanish or change between listing and reading).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from app.core.documents.extract import Skipped, skip_for_os_error
from app.core.documents.formats import Kind, Unsupported, kind_of_name

__all__ = ["SKIPPED_FOLDERS", "walk"]

SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "bower_components"})


def walk(paths: Iterable[Path]) -> Iterator[tuple[Path, Kind | Skipped]]:
    """Each file to index under `paths` (files and folders, recursively), or why it is skipped."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as e:
            yield path, skip_for_os_error(path, e)
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk_dir(path, st, seen_dirs, seen_files, ())
        else:
            yield from _one_file(path, st, seen_files)


_Found = Iterator[tuple[Path, Kind | Skipped]]


def _one_file(path: Path, st: os.stat_result, seen_files: set[tuple[int, int]]) -> _Found:
    key = (st.st_dev, st.st_ino)
    if key in seen_files:
        return
    seen_files.add(key)
    if not stat.S_ISREG(st.st_mode):
        yield path, Skipped("unreadable", f"{path.name} is not a regular file (a device, pipe or socket); not read.")
        return
    kind = kind_of_name(path)
    if isinstance(kind, Unsupported):
        yield path, Skipped("unsupported", f"{path.name} is {kind.what}, which Hearth does not read.")
        return
    yield path, kind


def _walk_dir(
    folder: Path,
    st: os.stat_result,
    seen_dirs: set[tuple[int, int]],
    seen_files: set[tuple[int, int]],
    above: tuple[tuple[int, int], ...],
) -> _Found:
    # Depth-first by an explicit stack: a folder tree 10,000 deep is no RecursionError.
    stack: list[tuple[Path, tuple[int, int], tuple[tuple[int, int], ...]]] = [(folder, (st.st_dev, st.st_ino), above)]
    while stack:
        here, key, ancestors = stack.pop()
        if key in ancestors:
            yield here, Skipped("loop", f"{here.name} links back to a folder that holds it; it was not followed.")
            continue
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        try:
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            yield here, _folder_skip(here, e)
            continue
        subfolders: list[tuple[Path, tuple[int, int], tuple[tuple[int, int], ...]]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            child = Path(entry.path)
            try:
                child_st = os.stat(child)  # follows links: a link's target is what matters
            except FileNotFoundError as e:
                yield child, _missing(child, e)
                continue
            except OSError as e:
                yield child, skip_for_os_error(child, e)
                continue
            if stat.S_ISDIR(child_st.st_mode):
                if entry.name in SKIPPED_FOLDERS:
                    continue
                subfolders.append((child, (child_st.st_dev, child_st.st_ino), (*ancestors, key)))
            else:
                yield from _one_file(child, child_st, seen_files)
        stack.extend(reversed(subfolders))  # files of a folder first, then its folders by name


def _missing(path: Path, e: FileNotFoundError) -> Skipped:
    try:
        target = os.readlink(path)
    except OSError:
        return skip_for_os_error(path, e)
    return Skipped("vanished", f"{path.name} is a link to {target}, which does not exist; fix or remove the link.")


def _folder_skip(folder: Path, e: OSError) -> Skipped:
    if isinstance(e, PermissionError) or e.errno == errno.EACCES:
        return Skipped("unreadable", f"The folder {folder.name} cannot be opened: permission denied.")
    return skip_for_os_error(folder, e)
