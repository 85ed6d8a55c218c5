"""A conversation as Markdown for people: the branch shown only, a heading per message.

Other branches (earlier edits, regenerated answers) are not in it: Markdown is for reading
and sharing; the JSON export keeps everything. No store, no Qt.
"""

from __future__ import annotations

import time

from store.exchange import ExchangeConversation, ExchangeMessage

__all__ = ["current_path", "to_markdown"]

_ROLE = {"user": "You", "assistant": "Assistant", "system": "System"}
_NOTE = {"cancelled": "stopped", "failed": "failed", "interrupted": "interrupted", "queued": "unfinished",
         "streaming": "unfinished"}


def current_path(conversation: ExchangeConversation) -> list[ExchangeMessage]:
    """The messages from the first to the end of the branch shown, as the window shows them."""
    by_key = {m.key: m for m in conversation.messages}
    path: list[ExchangeMessage] = []
    key = conversation.leaf_key
    while key is not None and key in by_key and len(path) <= len(by_key):
        path.append(by_key[key])
        key = by_key[key].parent_key
    return path[::-1]


def to_markdown(conversation: ExchangeConversation) -> str:
    path = current_path(conversation)
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created_at))
    shown = "the branch shown" if len(path) < len(conversation.messages) else "every message"
    out = [f"# {conversation.title}", "", f"*Started {started} · {len(path)} messages ({shown}) · exported from "
                                          "Hearth*", ""]
    for m in path:
        out += [f"## {_ROLE.get(m.role, m.role.capitalize())}", ""]
        if m.reasoning.strip():
            out += ["<details><summary>Reasoning</summary>", "", m.reasoning.strip(), "", "</details>", ""]
        out += [m.content.rstrip() if m.content.strip() else "*(no text)*", ""]
        note = _note(m)
        if note:
            out += [f"*{note}*", ""]
    return "\n".join(out)


def _note(m: ExchangeMessage) -> str:
    g = m.generation
    if g is None:
        return ""
    if g.state == "completed":
        return "cut off at the token limit" if g.stop_reason == "length" else ""
    note = _NOTE.get(g.state, g.state)
    return f"{note}: {g.error_message}" if g.state == "failed" and g.error_message else note
