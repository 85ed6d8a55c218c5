"""`hearth list | show ID | search QUERY | rename ID TITLE | pin ID | unpin ID | rm ID | backup PATH`: saved
conversations from a terminal, through the same store as the window.

Titles and messages are untrusted text (imported files, API clients, models, tools): on a terminal their
control characters are shown escaped (app.cli.terminal); a pipe and --json get them exact. Tool calls
and results print as marked steps (app.cli.tool_text), never as the model's or the person's words.
Reading commands open a database on read-only media read-only; `rename`, `pin`, `unpin` and `rm` need a
writable one. Exit codes: 0 done; 1 the conversation is answering right now (rm), or rm
was not confirmed; 2 anything else refused (no such conversation, an empty title, rm
without --yes and nobody to ask, a damaged or read-only database).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.support import fail, open_store, text_arg
from app.cli.terminal import for_stream, is_terminal
from app.cli.tool_text import call_lines, result_text, tool_fields, tool_label
from app.core.errors import InputError
from app.core.paths import db_path

if TYPE_CHECKING:  # the store (SQLAlchemy) loads when a command runs, not for `hearth --help`
    from store import Store
    from store.sources import Source

__all__ = ["COMMANDS", "add_conversation_parsers", "run_conversations"]

COMMANDS = ("list", "show", "search", "rename", "pin", "unpin", "rm", "backup")
LIST_LIMIT = 50  # `hearth list` without --all: the newest this many, like the window's first screen
_BOLD, _PLAIN = "\x1b[1m", "\x1b[0m"


def add_conversation_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    lst = sub.add_parser(
        "list",
        parents=[common],
        help="list saved conversations: pinned ones first (marked "
        "'pinned' in a third column), then the most recently active",
    )
    shown = lst.add_mutually_exclusive_group()
    shown.add_argument(
        "--limit",
        type=int,
        default=LIST_LIMIT,
        metavar="N",
        help=f"list at most N conversations (default {LIST_LIMIT})",
    )
    shown.add_argument("--all", action="store_true", help="list every conversation")
    lst.add_argument("--messages", action="store_true", help="also list each message: id, role, state, start")
    lst.add_argument("--conversation", type=int, metavar="ID", help="only this conversation")
    show = sub.add_parser(
        "show", parents=[common], help="print one conversation: the branch shown, first message to last"
    )
    show.add_argument("id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="one JSON object: the title and every message")
    search = sub.add_parser("search", parents=[common], help="find conversations by their titles and messages")
    search.add_argument("query", help="words to find (all of them; the last one also as the start of a word)")
    search.add_argument("--json", action="store_true", help="one JSON object per line, with the match offsets")
    search.add_argument("--limit", type=int, default=50, help="at most this many results (default 50)")
    rename = sub.add_parser("rename", parents=[common], help="give a conversation another title")
    rename.add_argument("id", type=int, metavar="ID")
    rename.add_argument("title")
    for name, what in (("pin", "pin a conversation to the top of the list"), ("unpin", "unpin a conversation")):
        sub.add_parser(name, parents=[common], help=what).add_argument("id", type=int, metavar="ID")
    rm = sub.add_parser("rm", parents=[common], help="delete a conversation, every message in it, for good")
    rm.add_argument("id", type=int, metavar="ID")
    rm.add_argument("--yes", action="store_true", help="do not ask first (needed when no terminal can answer)")
    backup = sub.add_parser("backup", parents=[common], help="copy every conversation into one database file")
    backup.add_argument("path", help="the file to write (it must not exist yet)")


def run_conversations(args: argparse.Namespace, data_dir: Path) -> int:
    from store import StoreError

    if args.command == "backup":
        return _backup(data_dir, Path(args.path).expanduser())
    writes = args.command in ("rename", "pin", "unpin", "rm")
    try:
        store = open_store(data_dir, read_only_ok=not writes)
    except StoreError as e:
        return fail(e.message)
    try:
        return asyncio.run(_run(args, store))
    except StoreError as e:
        hint = " Run `hearth list` to see saved conversations." if e.code == "no_such_conversation" else ""
        return fail(e.message + hint, code=1 if e.code == "busy" else 2)
    except InputError as e:
        return fail(e.message)
    finally:
        store.close()


async def _run(args: argparse.Namespace, store: Store) -> int:
    if args.command == "list":
        return await _list(
            store, messages=args.messages, only=args.conversation, limit=None if args.all else args.limit
        )
    if args.command == "show":
        return await _show(store, args.id, as_json=args.json)
    if args.command == "search":
        return await _search(store, text_arg(args.query, "the search"), as_json=args.json, limit=args.limit)
    if args.command == "rename":
        change = await store.rename_conversation(args.id, text_arg(args.title, "the title"))
        print(f"conversation {args.id} is now called {change.row.title!r}", file=sys.stderr)
        return 0
    if args.command in ("pin", "unpin"):
        change = await store.pin_conversation(args.id, args.command == "pin")
        where = "pinned to the top of the list" if args.command == "pin" else "no longer pinned"
        print(f"conversation {args.id} ({change.row.title!r}) is {where}", file=sys.stderr)
        return 0
    return await _rm(store, args.id, ask=not args.yes)


async def _list(store: Store, *, messages: bool, only: int | None, limit: int | None) -> int:
    if limit is not None and limit < 1:
        raise InputError("bad_input", f"--limit must be at least 1 ({limit} given); --all lists every conversation")
    if only is not None:
        one = await store.conversation(only)
        if one is None:
            return fail(f"there is no conversation {only}. Run `hearth list` to see saved conversations.")
        conversations = [one]
    else:  # one more than asked: whether to say that there are more
        conversations = await store.list_conversations(limit=None if limit is None else limit + 1)
    more = limit is not None and len(conversations) > limit
    shown = for_stream(sys.stdout)
    for c in conversations[:limit]:
        print(shown(f"{c.id}\t{c.title}\tpinned" if c.pinned_at is not None else f"{c.id}\t{c.title}"))
        if messages or only is not None:
            for m in await store.messages(c.id):
                state = m.state.value if m.state else ""
                start = " ".join(m.content.split())[:60]
                print(shown(f"  {m.id}\t{m.role}\t{state}\t{start}"))
    if more:
        print(f"(the {limit} most recent shown; `hearth list --all` lists every conversation)", file=sys.stderr)
    return 0


async def _show(store: Store, conversation_id: int, *, as_json: bool) -> int:
    from store import StoreError

    row = await store.conversation(conversation_id)
    title = row.title if row is not None else None
    if title is None:
        raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
    messages = await store.messages(conversation_id)
    sources = await store.sources_of([m.id for m in messages if m.role == "assistant"])
    if as_json:
        print(
            for_stream(sys.stdout, json=True)(
                json.dumps(
                    {
                        "id": conversation_id,
                        "title": title,
                        "messages": [
                            {
                                "id": m.id,
                                "parent_id": m.parent_id,
                                "role": m.role,
                                "content": m.content,
                                "state": m.state.value if m.state else None,
                                "reasoning": m.reasoning or None,
                                "siblings": list(m.siblings),
                                "retrieval_ms": m.retrieval_ms,
                                "retrieval_note": m.retrieval_note,
                                "route": {"name": m.route, "reason": m.route_reason} if m.route else None,
                                "sources": [dataclasses.asdict(s) for s in sources.get(m.id, ())],
                                **tool_fields(m),
                            }
                            for m in messages
                        ],
                    },
                    ensure_ascii=False,
                )
            )
        )
        return 0
    shown = for_stream(sys.stdout)
    cut = is_terminal(sys.stdout)
    print(shown(f"# {title}\n"))
    for m in messages:
        if m.role == "tool":
            print(shown(f"{tool_label(m.tool_run)}:\n{result_text(m.content, conversation_id, cut=cut)}"))
            continue
        state = f" ({m.state.value})" if m.state and m.state.value != "completed" else ""
        branch = (
            f" [branch {m.siblings.index(m.id) + 1} of {len(m.siblings)}]"
            if len(m.siblings) > 1 and m.id in m.siblings
            else ""
        )
        under = _sources_lines(sources.get(m.id, ()), m.retrieval_note) + _route_line(m.route, m.route_reason)
        calls = call_lines(m.tool_calls, conversation_id, cut=cut)
        text = f"{m.content}\n" if m.content or not calls else ""
        print(shown(f"{'You' if m.role == 'user' else m.role.capitalize()}{state}{branch}:\n{text}{calls}{under}"))
    return 0


def _sources_lines(sources: tuple[Source, ...], note: str | None) -> str:
    """Under an answer: its sources, one line each (`[1] path, page 2`, `[2] path, § Heading`),
    and what retrieval said about itself; "" for an answer without either."""
    lines = ["Sources:"] if sources else []
    for s in sources:
        where = [f"page {s.page}"] if s.page is not None else []
        if s.heading:
            where.append(f"§ {s.heading}")
        lines.append(_one_line(", ".join([f"[{s.ordinal}] {s.path}", *where])))
    if note:
        lines.append(_one_line(f"Retrieval: {note}"))
    return "".join(line + "\n" for line in lines)


def _route_line(route: str | None, reason: str | None) -> str:
    """Under an answer: the route that answered it and why, when recorded and not the chat's own
    fixed choice ("Route: box · local-first: fell back because ..."); "" otherwise."""
    if route is None or reason in (None, "fixed"):
        return ""
    return _one_line(f"Route: {route} · {reason}") + "\n"


def _one_line(text: str) -> str:
    # A path or heading with a line break in it must not pass for the next line.
    return " ".join(text.splitlines())


async def _search(store: Store, text: str, *, as_json: bool, limit: int) -> int:
    if limit < 1:
        raise InputError("bad_input", f"--limit must be at least 1 ({limit} given)")
    hits = await store.search(text, limit=limit)
    bold = is_terminal(sys.stdout)
    shown, shown_json = for_stream(sys.stdout), for_stream(sys.stdout, json=True)
    for h in hits:
        if as_json:
            print(
                shown_json(
                    json.dumps(
                        {
                            "conversation_id": h.conversation_id,
                            "title": h.title,
                            "message_id": h.message_id,
                            "role": h.role,
                            "tool": h.tool_name,
                            "snippet": h.snippet,
                            "highlights": [list(s) for s in h.highlights],
                        },
                        ensure_ascii=False,
                    )
                )
            )
            continue
        snippet = " ".join(_marked(h.snippet, h.highlights, bold, shown).split())
        where = "title" if h.message_id is None else f"message {h.message_id} ({h.role})"
        if h.role == "tool":  # a tool's result: data from that tool, said so
            where = f"message {h.message_id} (tool {' '.join((h.tool_name or 'unknown tool').split())})"
        print(f"{h.conversation_id}\t{shown(h.title)}\t{shown(where)}\t{snippet}")
    if not hits and not as_json:
        print(f"nothing matches {text!r}", file=sys.stderr)
    return 0


def _marked(snippet: str, spans: tuple[tuple[int, int], ...], bold: bool, shown: Callable[[str], str]) -> str:
    """The matches in bold on a terminal, between [ and ] in a pipe; the snippet's own text
    through `shown` piece by piece, so that only Hearth's bold reaches the terminal as a control."""
    start, end = (_BOLD, _PLAIN) if bold else ("[", "]")
    out, at = [], 0
    for a, b in spans:
        out += [shown(snippet[at:a]), start, shown(snippet[a:b]), end]
        at = b
    return "".join([*out, shown(snippet[at:])])


async def _rm(store: Store, conversation_id: int, *, ask: bool) -> int:
    from store import StoreError

    if ask:
        row = await store.conversation(conversation_id)
        title = row.title if row is not None else None
        if title is None:
            raise StoreError("no_such_conversation", f"There is no conversation {conversation_id}.")
        if not sys.stdin.isatty():
            return fail(
                f"deleting conversation {conversation_id} ({title!r}) cannot be undone; add --yes to "
                "confirm (there is no terminal to ask)"
            )
        answer = input(
            f"Delete conversation {conversation_id} ({title!r}) and every message in it? This cannot be undone. [y/N] "
        )
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted", file=sys.stderr)
            return 1
    title, deleted = await store.delete_conversation(conversation_id)
    print(f"deleted conversation {conversation_id} ({title!r}) and its {deleted} messages", file=sys.stderr)
    return 0


def _backup(data_dir: Path, dest: Path) -> int:
    from store import StoreError

    try:
        store = open_store(data_dir, read_only_ok=True)
    except StoreError as e:
        return fail(e.message)
    try:
        written = store.backup(dest)
    except StoreError as e:
        return fail(e.message)
    finally:
        store.close()
    print(
        f"backed up {db_path(data_dir)} to {written} ({written.stat().st_size:,} bytes); "
        f"open it with: hearth --data-dir DIR after copying it to DIR/hearth.db",
        file=sys.stderr,
    )
    return 0
