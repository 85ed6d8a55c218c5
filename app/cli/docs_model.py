"""`hearth docs model [ID]`: which embedding model the documents use, and changing it.

Without ID: the one in use and the others in the catalog (downloaded or not). With ID (a catalog
entry of kind "embedding", or `built-in`): it becomes the data folder's choice (embedders.py), and
every file another model embedded is embedded again, in the foreground with its progress line as
`hearth docs add` does (or queued with --background). Full-text search works meanwhile.
Must not: download a model (`hearth models pull ID` does), or change anything when ID is not a
downloaded embedding model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from app.cli.terminal import for_stream

__all__ = ["add_model_verb", "run_model_verb"]


def add_model_verb(verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    model = verbs.add_parser("model", parents=[common], help="the embedding model the documents use, or choose one")
    model.add_argument(
        "model_id", nargs="?", metavar="ID", help="an embedding model of `hearth models list`, or built-in"
    )
    model.add_argument("--background", action="store_true", help="only queue the files to embed again")
    model.add_argument("--json", action="store_true", help="one JSON object (without ID)")


async def run_model_verb(
    args: argparse.Namespace, store: Any, data_dir: Path, index: Any, start_background: Any
) -> int:
    """`index(store, data_dir, quiet=...)` and `start_background(data_dir)` are docs.py's."""
    from app.core.documents.embedders import BUILT_IN, catalog_choice, chosen_embedding, save_choice
    from app.core.models.library import ModelLibrary

    library = ModelLibrary(data_dir)
    out = for_stream(sys.stdout)
    if args.model_id is None:
        current = chosen_embedding(data_dir, library)
        models = [
            {
                "id": BUILT_IN,
                "name": "all-MiniLM-L6-v2 (built in)",
                "installed": True,
                "in_use": current.model_id is None,
            }
        ]
        models += [
            {"id": m.id, "name": m.name, "installed": m.installed, "in_use": m.id == current.model_id}
            for m in library.embedding_models()
        ]
        if args.json:
            print(out(json.dumps({"in_use": current.model_id or BUILT_IN, "models": models}, ensure_ascii=False)))
            return 0
        for m in models:
            mark = "*" if m["in_use"] else " "
            state = "" if m["installed"] else "   (not downloaded: hearth models pull " + str(m["id"]) + ")"
            print(out(f"{mark} {m['id']:<30} {m['name']}{state}"))
        return 0
    if args.model_id != BUILT_IN:
        wanted = catalog_choice(args.model_id, library)  # InputError: not an embedding model
        if wanted.path is None:
            print(
                for_stream(sys.stderr)(
                    f"hearth: {wanted.label} is not downloaded yet: run `hearth models pull {wanted.model_id}` first"
                ),
                file=sys.stderr,
            )
            return 2
    choice = save_choice(data_dir, args.model_id, library)
    print(for_stream(sys.stderr)(f"documents now use {choice.label}"), file=sys.stderr)
    if args.background:
        started = start_background(data_dir)
        where = "a background indexer started" if started else "the Hearth process that is indexing takes them"
        print(f"files are embedded again in the background; {where} (see: hearth docs list)", file=sys.stderr)
        return 0
    return int(await index(store, data_dir, quiet=False))
