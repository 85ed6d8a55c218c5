"""The keyboard shortcuts: one list that the window's actions take their keys from, that
the Help → Keyboard shortcuts window draws, and that the user guide's table must match
(docs/user-guide.md; tests/window/test_shortcuts.py checks all three).

Owns the entries only: which action, which keys, what it does, where it works. Must not
build actions or connect anything (the windows do, looking their keys up here), so adding
a shortcut is one line here plus the handler where it belongs.

Keys are written in QKeySequence's portable form ("Ctrl+Shift+C"); Qt shows them as
⌘/⇧ on macOS. `scope` says where the keys work: WINDOW entries are QActions on the main
window whose objectName is the entry's id; the others are handled by one widget while it
has the focus (the message box, the conversation list) and are listed for people to read.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CONVERSATION_LIST",
    "GROUPS",
    "MESSAGE_BOX",
    "SHORTCUTS",
    "WINDOW",
    "Shortcut",
    "keys_for",
    "markdown_table",
    "shortcut",
]

WINDOW = "window"
MESSAGE_BOX = "message box"
CONVERSATION_LIST = "conversation list"

# The help window and the user guide list the groups in this order.
GROUPS = ("Conversations", "Messages", "Search", "View", "Models", "Application")


@dataclass(frozen=True)
class Shortcut:
    """One thing the keyboard can do."""

    id: str  # the QAction's objectName for WINDOW entries
    keys: tuple[str, ...]  # first one is shown in menus and tooltips
    description: str
    group: str
    scope: str = WINDOW
    note: str = ""  # when it applies, if that is not obvious ("in an empty message box")


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("new_chat", ("Ctrl+N",), "New chat", "Conversations"),
    Shortcut("rename_chat", ("F2",), "Rename the selected chat", "Conversations", CONVERSATION_LIST),
    Shortcut("delete_chat", ("Del",), "Delete the selected chat", "Conversations", CONVERSATION_LIST),
    Shortcut(
        "undo_delete",
        ("Ctrl+Z",),
        "Undo deleting a chat",
        "Conversations",
        note="for 5 s after a delete, outside text fields",
    ),
    Shortcut("chat_settings", ("Ctrl+Shift+S",), "Chat settings (system prompt, temperature…)", "Conversations"),
    Shortcut("focus_composer", ("Ctrl+L",), "Focus the message box", "Messages"),
    Shortcut("copy_last_answer", ("Ctrl+Shift+C",), "Copy the last answer as Markdown", "Messages"),
    Shortcut("stop", ("Esc",), "Stop the answer", "Messages", note="while an answer is coming"),
    Shortcut("regenerate_last", ("Ctrl+Shift+R",), "Regenerate the last answer", "Messages"),
    Shortcut("edit_last", ("Up",), "Edit the last message", "Messages", MESSAGE_BOX, note="in an empty message box"),
    Shortcut("search", ("Ctrl+F", "Ctrl+K"), "Search every conversation", "Search"),
    Shortcut("zoom_in", ("Ctrl++", "Ctrl+="), "Bigger text", "View"),
    Shortcut("zoom_out", ("Ctrl+-",), "Smaller text", "View"),
    Shortcut("zoom_reset", ("Ctrl+0",), "Normal text size", "View"),
    Shortcut("manage_models", ("Ctrl+M",), "Manage models", "Models"),
    Shortcut("providers", ("Ctrl+Shift+P",), "Providers (remote servers)", "Models"),
    Shortcut("documents", ("Ctrl+Shift+D",), "Your documents (collections chats can search)", "Models"),
    Shortcut("settings", ("Ctrl+,",), "Settings (theme, text size)", "Application"),
    Shortcut("shortcuts_help", ("F1", "Ctrl+/"), "Show the keyboard shortcuts", "Application"),
    Shortcut("quit", ("Ctrl+Q",), "Quit Hearth", "Application"),
)


def shortcut(action_id: str) -> Shortcut:
    """The entry for an id; a KeyError names a typo at start-up rather than a dead key."""
    for entry in SHORTCUTS:
        if entry.id == action_id:
            return entry
    raise KeyError(f"no keyboard shortcut is registered as {action_id!r}")


def keys_for(action_id: str) -> tuple[str, ...]:
    return shortcut(action_id).keys


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table() -> str:
    """The user guide's table (`python -m app.ui.shortcuts` prints it), so the two cannot drift apart."""
    lines = ["| Keys | What it does | Where |", "|---|---|---|"]
    for group in GROUPS:
        for entry in (e for e in SHORTCUTS if e.group == group):
            keys = " or ".join(f"`{k}`" for k in entry.keys)
            where = entry.note or ("anywhere in the window" if entry.scope == WINDOW else f"in the {entry.scope}")
            lines.append(f"| {keys} | {_cell(entry.description)} | {_cell(where)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
