"""`hearth docs`: a person's documents from the terminal (issue 25).

    hearth docs add PATH... [--collection NAME] [--background]   index files and folders
    hearth docs list [--json]                                    collections, files, states, why skipped
    hearth docs rm PATH | --collection NAME                      forget a file, a folder or a collection
    hearth docs search QUERY [--collection NAME] [--limit N] [--json]

`add` indexes in the foreground (a progress line on a terminal) and returns when every file is
done; with --background it only records the files and leaves the indexing to a background
`hearth docs index` process it starts (or to one already running). Ctrl-C stops after the batch
in hand; what was indexed is kept and the next `add` or `index` goes on from there.
Exit codes: 0 done (files that cannot be indexed are listed, with why, and are not an error),
1 indexing failed, 2 bad input (no such path, no such collection), 130 stopped by Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from app.cli.docs_model import add_model_verb, run_model_verb
from app.cli.support import fail, open_store, text_arg
from app.cli.terminal import for_stream
from app.core.documents.index_lock import IndexLock
from app.core.errors import InputError
from engine.errors import HearthError

# The store, the indexer and the search are imported when a `docs` command runs: `hearth`
# starts without SQLAlchemy (tests/project/test_layers.py).
DEFAULT_COLLECTION = "documents"  # what `hearth docs add` uses when no collection is named

__all__ = ["add_docs_parser", "run_docs"]


def add_docs_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    docs = sub.add_parser("docs", parents=[common], help="your documents: add, list, remove and search them")
    verbs = docs.add_subparsers(dest="verb", metavar="{add,list,rm,search,model}")
    add = verbs.add_parser("add", parents=[common], help="index files and folders (returns when done)")
    add.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (folders are read recursively)")
    add.add_argument("--collection", default=DEFAULT_COLLECTION, help=f"default: {DEFAULT_COLLECTION}")
    add.add_argument("--background", action="store_true", help="only queue the files; index them in the background")
    lister = verbs.add_parser("list", parents=[common], help="collections and files: state, passages, why skipped")
    lister.add_argument("--json", action="store_true", help="one JSON object")
    rm = verbs.add_parser("rm", parents=[common], help="forget a file or folder (or a whole collection)")
    rm.add_argument("path", nargs="?", metavar="PATH")
    rm.add_argument("--collection", help="the collection to remove (with PATH: remove PATH from it alone)")
    search = verbs.add_parser("search", parents=[common], help="the passages that best match a question")
    search.add_argument("query")
    search.add_argument("--collection", help="search this collection only")
    search.add_argument("--limit", type=int, default=5, help="passages to show (default 5)")
    search.add_argument("--json", action="store_true", help="one JSON object")
    add_model_verb(verbs, common)
    # Runs what is queued, then exits: what `add --background` starts.
    index = verbs.add_parser("index", parents=[common], help=argparse.SUPPRESS)
    index.add_argument("--quiet", action="store_true")


def run_docs(args: argparse.Namespace, data_dir: Path) -> int:
    verb = getattr(args, "verb", None)
    if verb is None:
        return fail("say what to do: hearth docs add|list|rm|search|model (hearth docs --help)")
    from store.errors import StoreError

    writes = verb in ("add", "rm", "index") or (verb == "model" and args.model_id is not None)
    try:
        store = open_store(data_dir, read_only_ok=not writes)
    except StoreError as e:
        return fail(e.message, 1)
    try:
        return asyncio.run(_VERBS[verb](args, store, data_dir))
    except InputError as e:
        return fail(e.message)
    except StoreError as e:
        return fail(e.message, 2 if e.code in ("no_such_collection", "bad_name") else 1)
    except KeyboardInterrupt:
        print("hearth: stopped; what was indexed is kept (hearth docs add goes on from there)", file=sys.stderr)
        return 130
    finally:
        store.close()


# --- add and index ------------------------------------------------------------------------------


async def _add(args: argparse.Namespace, store: Any, data_dir: Path) -> int:
    paths = [Path(text_arg(p, "the path")) for p in args.paths]
    missing = [p for p in paths if not os.path.lexists(p)]
    if missing and len(missing) == len(paths):
        return fail(f"no such file or folder: {', '.join(str(p) for p in missing)}")
    name = text_arg(args.collection, "the collection name")
    from app.core.documents.extract import Extractor
    from app.core.documents.indexer import Indexer

    with Extractor() as extractor:
        indexer = Indexer(store.documents, extractor, None)
        report = await indexer.add(paths, name)
    out = for_stream(sys.stderr)
    for path, _code, message in report.skipped:
        print(out(f"skipped: {message}" if path in message else f"skipped: {path}: {message}"), file=sys.stderr)
    for gone in missing:
        print(out(f"skipped: no such file or folder: {gone}"), file=sys.stderr)
    if report.removed:
        print(
            f"{len(report.removed)} file(s) no longer in the folder were removed from the collection", file=sys.stderr
        )
    queued, unchanged = len(report.queued), len(report.unchanged)
    print(
        f"{report.collection.name}: {queued} file(s) to index, {unchanged} unchanged, {len(report.skipped)} skipped",
        file=sys.stderr,
    )
    if args.background:
        started = _start_background(data_dir)
        where = "a background indexer started" if started else "the Hearth process that is indexing takes them"
        print(f"queued; {where} (see: hearth docs list)", file=sys.stderr)
        return 0
    return await _index(store, data_dir, quiet=False)


async def _index_verb(args: argparse.Namespace, store: Any, data_dir: Path) -> int:
    return await _index(store, data_dir, quiet=args.quiet)


def _lowest_priority() -> None:
    """Indexing gives way to everything else on the machine, an answer above all: the lowest CPU
    priority (nice 19; the idle class on Windows). On an idle machine it costs nothing; beside an
    answer on 2 cores, decode keeps 0.91 of its quiet speed instead of 0.62 (hearth bench docs)."""
    if hasattr(os, "nice"):
        try:
            os.nice(19)
        except OSError:
            pass
    else:  # Windows
        import psutil

        psutil.Process().nice(psutil.IDLE_PRIORITY_CLASS)  # type: ignore[attr-defined]  # Windows only


async def _index(store: Any, data_dir: Path, *, quiet: bool) -> int:
    from app.core.documents.answering import wait_while_answering
    from app.core.documents.extract import Extractor
    from app.core.documents.indexer import Indexer

    _lowest_priority()
    lock = IndexLock(data_dir)
    if not lock.acquire(timeout=0):
        if not quiet:
            print("waiting for another Hearth process that is indexing this data folder…", file=sys.stderr)
        await asyncio.to_thread(lock.acquire, None)
    try:
        embedder, note = _load_embedder(data_dir)
        if note and not quiet:
            print(f"hearth: note: {note}", file=sys.stderr)
        line = _ProgressLine(enabled=not quiet)
        began = time.monotonic()
        with Extractor() as extractor:
            indexer = Indexer(
                store.documents, extractor, embedder, on_progress=line, pause=lambda: wait_while_answering(data_dir)
            )
            try:
                done = await indexer.run()
            finally:
                line.end()
                if embedder is not None:
                    embedder.close()
        if not quiet:
            out = for_stream(sys.stderr)
            for path, _code, message in indexer.skipped:
                print(out(f"skipped: {message}" if path in message else f"skipped: {path}: {message}"), file=sys.stderr)
            skipped = f", {len(indexer.skipped)} could not be indexed" if indexer.skipped else ""
            print(
                f"indexed {done - len(indexer.skipped)} file(s) in {time.monotonic() - began:.1f} s{skipped}",
                file=sys.stderr,
            )
        return 0
    finally:
        lock.release()


def _load_embedder(data_dir: Path) -> tuple[Any, str | None]:
    """The documents' embedding model (embedders.py), or None and why (full-text search alone)."""
    from app.core.documents.embedders import open_embedder

    try:
        return open_embedder(data_dir), None
    except HearthError as e:
        return None, f"{e.message} Passages are indexed for full-text search only."


def _start_background(data_dir: Path) -> bool:
    """Start `hearth docs index` on its own, unless a process is already indexing here."""
    if IndexLock(data_dir).held_elsewhere():
        return False
    # In an installer's bundle the executable is `hearth` itself; from a checkout, Python.
    hearth = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "app"]
    subprocess.Popen(
        [*hearth, "docs", "index", "--quiet", "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C in this terminal later must not stop it
    )
    return True


class _ProgressLine:
    """One updating line on a terminal; a line every few seconds when stderr is a file."""

    def __init__(self, *, enabled: bool) -> None:
        self.tty = sys.stderr.isatty()
        self.enabled = enabled
        self._last = 0.0
        self._shown = False

    def __call__(self, p: Any) -> None:  # app.core.documents.indexer.Progress
        now = time.monotonic()
        if not self.enabled or p.step == "done" or (now - self._last < (0.1 if self.tty else 3.0)):
            return
        self._last = now
        name = Path(p.path).name if p.path else ""
        text = f"indexing {p.files_done + 1}/{p.files_total}  {name}"
        if p.step == "embedding" and p.passages_total:
            text += f"  {p.passages_embedded}/{p.passages_total} passages"
        text = for_stream(sys.stderr)(text)
        sys.stderr.write(("\r\x1b[K" + text[:150]) if self.tty else text + "\n")
        sys.stderr.flush()
        self._shown = True

    def end(self) -> None:
        if self.tty and self._shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# --- list, rm, search ---------------------------------------------------------------------------


async def _list(args: argparse.Namespace, store: Any, data_dir: Path) -> int:
    documents = store.documents
    stats = await documents.stats()
    collections = []
    for s in stats:
        files = await documents.files(s.collection.id)
        collections.append((s, files))
    if args.json:
        print(
            json.dumps(
                {
                    "collections": [
                        {
                            "name": s.collection.name,
                            "chat_id": s.collection.chat_id,
                            "files_by_state": dict(s.files),
                            "passages": s.passages,
                            "embedded": s.embedded,
                            "files": [
                                {
                                    "path": f.path,
                                    "kind": f.kind,
                                    "state": f.state,
                                    "skip_code": f.skip_code,
                                    "skip_message": f.skip_message,
                                    "size": f.size,
                                    "passages": f.passages,
                                    "embedded": f.embedded,
                                    "model": f.model,
                                    "indexed_at": f.indexed_at,
                                }
                                for f in files
                            ],
                        }
                        for s, files in collections
                    ]
                },
                ensure_ascii=not sys.stdout.isatty(),
            )
        )
        return 0
    out = for_stream(sys.stdout)
    if not collections:
        print("No documents yet. Add some with: hearth docs add PATH... [--collection NAME]")
        return 0
    for s, files in collections:
        states = ", ".join(f"{n} {state}" for state, n in s.files.items())
        label = (
            s.collection.name if s.collection.chat_id is None else f"{s.collection.name} (chat {s.collection.chat_id})"
        )
        print(out(f"{label}: {len(files)} file(s) ({states}), {s.passages} passages, {s.embedded} with vectors"))
        for f in files:
            if f.state == "indexed":
                continue
            why = f" — {f.skip_message}" if f.skip_message else ""
            progress = f" ({f.embedded}/{f.passages} passages)" if f.state == "embedding" else ""
            print(out(f"  {f.state}{progress}: {f.path}{why}"))
    return 0


async def _rm(args: argparse.Namespace, store: Any, data_dir: Path) -> int:
    documents = store.documents
    if args.path is None and args.collection is None:
        return fail("say what to remove: hearth docs rm PATH, or hearth docs rm --collection NAME")
    collection = await documents.collection_named(args.collection) if args.collection else None
    if args.path is None:
        assert collection is not None
        removed = await documents.remove_collection(collection.id)
        print(f"removed the collection {collection.name} ({len(removed)} file(s))", file=sys.stderr)
        return 0
    path = str(Path(text_arg(args.path, "the path")).absolute())
    removed = await documents.remove_path(path, collection_id=collection.id if collection else None)
    if not removed:
        where = f" in {collection.name}" if collection else ""
        return fail(for_stream(sys.stderr)(f"{path} is not among your documents{where} (see: hearth docs list)"))
    print(f"removed {len(removed)} file(s)", file=sys.stderr)
    return 0


async def _search(args: argparse.Namespace, store: Any, data_dir: Path) -> int:
    from app.core.documents.search import DocumentSearch
    from app.core.documents.vectors import VectorIndex

    query = text_arg(args.query, "the query")
    if not query.strip():
        return fail("the query is empty")
    if args.limit < 1:
        return fail(f"--limit must be 1 or more, not {args.limit}")
    documents = store.documents
    ids = [(await documents.collection_named(args.collection)).id] if args.collection else None
    embedder, note = _load_embedder(data_dir)
    vector, index = None, None
    if embedder is not None:
        try:
            vector = await asyncio.to_thread(embedder.embed_query, query)
            index = VectorIndex(embedder.model_name, int(vector.shape[0]))
        finally:
            embedder.close()
    result = await DocumentSearch(documents, index).search(
        query, query_vector=vector, collection_ids=ids, limit=args.limit
    )
    if args.json:
        print(
            json.dumps(
                {
                    "query": query,
                    "text_only": result.text_only,
                    "why_text_only": result.why_text_only,
                    "elapsed_ms": round(result.elapsed_ms, 2),
                    "hits": [
                        {
                            "path": h.path,
                            "page": h.page,
                            "heading": h.heading,
                            "start": h.start,
                            "end": h.end,
                            "score": h.score,
                            "found_by": list(h.found_by),
                            "text": h.text,
                        }
                        for h in result.hits
                    ],
                },
                ensure_ascii=not sys.stdout.isatty(),
            )
        )
        return 0
    err = for_stream(sys.stderr)
    if note:
        print(err(f"hearth: note: {note}"), file=sys.stderr)
    elif result.text_only:
        print("hearth: note: no passage has a vector yet; this is full-text search alone", file=sys.stderr)
    if not result.hits:
        print("No passage matches.", file=sys.stderr)
        return 0
    out = for_stream(sys.stdout)
    for n, h in enumerate(result.hits, 1):
        where = f"page {h.page}" if h.page is not None else (f"§ {h.heading}" if h.heading else "")
        label = ", ".join(x for x in (h.path, where, f"characters {h.start}–{h.end}") if x)
        print(out(f"{n}. {label}  (score {h.score:.4f}, {' + '.join(h.found_by)})"))
        text = " ".join(h.text.split())
        print(out("   " + (text[:400] + "…" if len(text) > 400 else text)))
    return 0


async def _model(args: argparse.Namespace, store: Any, data_dir: Path) -> int:
    return await run_model_verb(args, store, data_dir, _index, _start_background)


_VERBS = {"add": _add, "index": _index_verb, "list": _list, "rm": _rm, "search": _search, "model": _model}
