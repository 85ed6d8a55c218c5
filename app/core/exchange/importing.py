"""Export one conversation and import a file of them, through the store: what `hearth export`,
`hearth import` and the window's Export…/Import… share.

`export_text` reads the conversation from one store snapshot and renders it (JSON: every
branch; Markdown: the branch shown). `import_file` reads and checks the file off the caller's
thread, then hands the store one conversation at a time, each one writer transaction (all or
nothing), and reports what was imported and what was skipped, and why. A second import of
the same file adds nothing: each conversation carries a key of where it came from.

No Qt; the store is whatever satisfies `ExchangeStore` (store.Store does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from app.core.errors import ExchangeError
from app.core.exchange.chatgpt import from_chatgpt, is_chatgpt
from app.core.exchange.files import read_json_file
from app.core.exchange.hearth_json import from_json, is_hearth, to_json
from app.core.exchange.markdown import to_markdown
from app.core.exchange.values import Incoming, Rejected
from store.errors import StoreError
from store.exchange import ExchangeConversation
from store.limits import MAX_MESSAGE_BYTES, cut_to_limit, megabytes
from store.rows import ConversationChange

__all__ = ["ExchangeStore", "ExportFormat", "ImportReport", "export_text", "import_file", "read_conversations"]

ExportFormat = Literal["md", "json"]


class ExchangeStore(Protocol):
    async def export_conversation(self, conversation_id: int) -> ExchangeConversation: ...

    async def import_conversation(
        self, conversation: ExchangeConversation, import_key: str
    ) -> ConversationChange | None: ...


@dataclass(frozen=True, slots=True)
class Imported:
    conversation_id: int
    title: str
    messages: int
    repaired: str = ""  # what was wrong with it in the file and how it was mended ("" : nothing)


@dataclass
class ImportReport:
    """What an import did: conversations added (and mended), skipped (title, why), messages left out by reason."""

    path: Path
    imported: list[Imported] = field(default_factory=list)
    skipped: list[Rejected] = field(default_factory=list)
    messages_skipped: Counter[str] = field(default_factory=Counter)
    messages_cut: int = 0  # messages over store.limits.MAX_MESSAGE_BYTES, kept cut to it (with a note)
    changes: list[ConversationChange] = field(default_factory=list)  # for the window's list

    @property
    def messages_imported(self) -> int:
        return sum(i.messages for i in self.imported)

    @property
    def problems(self) -> int:
        """Conversations that could not be imported (not counting those already here), or were
        damaged in the file and imported mended."""
        return (
            sum(1 for s in self.skipped if s.broken) + sum(1 for i in self.imported if i.repaired) + self.messages_cut
        )

    def text(self) -> str:
        """One line for a person, e.g. "3 conversations imported (41 messages), 1 skipped: already imported"."""
        n = len(self.imported)
        m = self.messages_imported
        line = f"{n} conversation{'s' * (n != 1)} imported ({m} message{'s' * (m != 1)})"
        if self.skipped:
            reasons = Counter(s.reason for s in self.skipped)
            line += f", {len(self.skipped)} skipped: " + "; ".join(
                f"{r} ({c})" if c > 1 else r for r, c in reasons.most_common()
            )
        if self.messages_skipped:
            line += "; messages left out: " + ", ".join(f"{c} {r}" for r, c in self.messages_skipped.most_common())
        if self.messages_cut:
            line += (
                f"; {self.messages_cut} message{'s' * (self.messages_cut != 1)} cut to "
                f"{megabytes(MAX_MESSAGE_BYTES)}, the most Hearth keeps in one message"
            )
        for i in self.imported:
            if i.repaired:
                line += f"; mended {i.title!r}: {i.repaired}"
        return line

    def as_dict(self) -> dict[str, object]:
        return {
            "file": str(self.path),
            "conversations_imported": len(self.imported),
            "messages_imported": self.messages_imported,
            "imported": [
                {"id": i.conversation_id, "title": i.title, "messages": i.messages, "repaired": i.repaired or None}
                for i in self.imported
            ],
            "skipped": [{"title": s.title, "reason": s.reason, "problem": s.broken} for s in self.skipped],
            "messages_skipped": dict(self.messages_skipped.most_common()),
            "messages_cut": self.messages_cut,
        }


ALREADY = "already imported"


async def export_text(store: ExchangeStore, conversation_id: int, fmt: ExportFormat) -> tuple[str, str]:
    """(the conversation's title, the export as text). StoreError(no_such_conversation)."""
    conversation = await store.export_conversation(conversation_id)
    if fmt == "json":
        return conversation.title, json.dumps(to_json(conversation), ensure_ascii=False, indent=2) + "\n"
    return conversation.title, to_markdown(conversation)


def read_conversations(path: Path) -> list[Incoming | Rejected]:
    """Every conversation in a Hearth export (one, or a list) or a ChatGPT conversations.json,
    checked. Blocking. ExchangeError when the file as a whole cannot be used."""
    value = read_json_file(path)
    items = value if isinstance(value, list) else [value]
    if not isinstance(value, list | dict) or not any(is_hearth(i) or is_chatgpt(i) for i in items):
        if isinstance(value, list) and not value:
            raise ExchangeError("bad_shape", f"{path} holds an empty list: no conversations to import.")
        raise ExchangeError(
            "bad_shape",
            f"{path} is JSON, but neither a Hearth export nor a ChatGPT conversations.json "
            '(no "format": "hearth.conversation" or "mapping" in it). Nothing was imported.',
        )
    out: list[Incoming | Rejected] = []
    for i, item in enumerate(items):
        if is_hearth(item):
            out.append(from_json(item))
        elif is_chatgpt(item):
            out.append(from_chatgpt(item))
        else:
            out.append(Rejected(f"item {i + 1}", "not a conversation (neither Hearth's nor ChatGPT's)"))
    if not isinstance(value, list) and isinstance(out[0], Rejected):
        raise ExchangeError(
            "newer_version" if "newer Hearth" in out[0].reason else "bad_shape",
            f"{path} cannot be imported: {out[0].reason}. Nothing was imported.",
        )
    return out


async def import_file(store: ExchangeStore, path: Path) -> ImportReport:
    """Import every conversation in `path`; each one whole or not at all. ExchangeError when the
    file cannot be used (nothing imported); StoreError when saving fails part way (the message
    says how many were imported before: importing again adds only the rest)."""
    items = await asyncio.to_thread(read_conversations, path)
    report = ImportReport(path)
    for item in items:
        if isinstance(item, Rejected):
            report.skipped.append(item)
            continue
        title = item.conversation.title
        conversation, cut = _within_limit(item.conversation)
        try:
            change = await store.import_conversation(conversation, item.key)
        except StoreError as e:
            if e.code == "bad_import":
                report.skipped.append(Rejected(title, e.message))
                continue
            if report.imported:
                raise StoreError(
                    e.code,
                    f"{e.message} {len(report.imported)} conversations were imported before "
                    "this; importing the file again adds only the rest.",
                ) from e
            raise
        if change is None:
            report.skipped.append(Rejected(title, ALREADY, broken=False))
            continue
        report.imported.append(
            Imported(change.row.id, change.row.title, len(item.conversation.messages), item.repaired)
        )
        report.messages_skipped.update(item.messages_skipped)
        report.messages_cut += cut
        report.changes.append(change)
    return report


def _within_limit(conversation: ExchangeConversation) -> tuple[ExchangeConversation, int]:
    """The conversation with each message over the size limit cut to it, and how many were cut.

    Cut rather than left out: the turns keep their order (an answer keeps its question), the
    start of the text (what the answer usually read) stays, and a note in the text says where it
    was cut; the report counts it as a problem, and the file still holds the whole text."""
    messages = [
        dataclasses.replace(m, content=cut_to_limit(m.content), reasoning=cut_to_limit(m.reasoning))
        for m in conversation.messages
    ]
    cut = sum(
        1
        for old, new in zip(conversation.messages, messages, strict=True)
        if old.content is not new.content or old.reasoning is not new.reasoning
    )
    return (dataclasses.replace(conversation, messages=tuple(messages)) if cut else conversation), cut
