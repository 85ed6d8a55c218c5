"""`hearth export ID [--format md|json] [-o FILE]` and `hearth import FILE [--json]`:
conversations out of and into the store, in Hearth's JSON (every branch), Markdown (the
branch shown) or, for import, a ChatGPT data export's conversations.json.

Exit codes: 0 done (an import that found everything already here is done too); 1 no such
conversation (export), or some conversations in the file could not be imported or were
damaged and imported mended (import: the report says which and why; the others were
imported); 2 anything else refused (a file that is not an export, an output file that
exists, a damaged or read-only database).

Titles and messages are untrusted text: on a terminal their control characters are shown
escaped (app.cli.terminal); a pipe, a file written with -o and --json keep the exact text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.support import fail, open_store
from app.cli.terminal import for_stream
from app.core.errors import ExchangeError

if TYPE_CHECKING:  # the store (SQLAlchemy) loads when a command runs, not for `hearth --help`
    from app.core.exchange import ExportFormat
    from store import Store

__all__ = ["COMMANDS", "add_exchange_parsers", "run_exchange"]

COMMANDS = ("export", "import")


def add_exchange_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    export = sub.add_parser("export", parents=[common], help="write one conversation as Markdown or JSON")
    export.add_argument("id", type=int, metavar="ID")
    export.add_argument(
        "--format",
        choices=("md", "json"),
        help="md: the branch shown, to read or share; json: "
        "every branch, to import again (default: from -o's suffix, else md)",
    )
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE, which must not exist yet (default: standard output)"
    )
    imp = sub.add_parser(
        "import",
        parents=[common],
        help="add conversations from a Hearth export or a ChatGPT data export (conversations.json)",
    )
    imp.add_argument("file", help="a Hearth .json export, or conversations.json from ChatGPT's data export")
    imp.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run_exchange(args: argparse.Namespace, data_dir: Path) -> int:
    from store import StoreError

    try:
        store = open_store(data_dir, read_only_ok=args.command == "export")
    except StoreError as e:
        return fail(e.message)
    try:
        if args.command == "export":
            return asyncio.run(_export(store, args.id, _format(args), args.output))
        return asyncio.run(_import(store, Path(args.file).expanduser(), as_json=args.json))
    except StoreError as e:
        if e.code == "no_such_conversation":
            return fail(e.message + " Run `hearth list` to see saved conversations.", code=1)
        return fail(e.message)
    except ExchangeError as e:
        return fail(e.message)
    finally:
        store.close()


def _format(args: argparse.Namespace) -> ExportFormat:
    if args.format is not None:
        return "json" if args.format == "json" else "md"
    suffix = Path(args.output).suffix.lower() if args.output else ""
    return "json" if suffix == ".json" else "md"


async def _export(store: Store, conversation_id: int, fmt: ExportFormat, output: str | None) -> int:
    from app.core.exchange import export_text, write_export

    title, text = await export_text(store, conversation_id, fmt)
    if output is None:  # exact to a pipe; on a terminal, its control characters shown escaped
        sys.stdout.buffer.write(for_stream(sys.stdout, json=fmt == "json")(text).encode("utf-8"))
        sys.stdout.flush()
        return 0
    written = write_export(Path(output).expanduser(), text)
    print(f"exported conversation {conversation_id} ({title!r}) to {written}", file=sys.stderr)
    return 0


async def _import(store: Store, path: Path, *, as_json: bool) -> int:
    from app.core.exchange import import_file

    report = await import_file(store, path)
    if as_json:
        print(for_stream(sys.stdout, json=True)(json.dumps(report.as_dict(), ensure_ascii=False)))
    else:  # titles and reasons come from the file
        shown = for_stream(sys.stdout)
        print(shown(report.text()))
        for item in report.imported:
            print(shown(f"  {item.conversation_id}\t{item.title}"))
    return 1 if report.problems else 0
