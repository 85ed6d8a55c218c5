"""Which tools one conversation may use, and which of them it may run without asking each time.

`ChatTools` is kept in the conversation's settings under one key, "tools" (`to_settings` /
`from_settings`), beside the chat's and the route's keys, which it never touches. A chat uses no
tool until a person chooses some (off by default). An entry is a tool's qualified name
(`server/tool`) or a whole server (`server/*`: every tool it offers, now and later).

Reading is tolerant like app.core.chat_settings: a damaged value reads as no tools chosen.
Must not: reach a server, or decide consent (app.core.tool_loop asks; this only remembers
"always allow this tool in this chat").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["TOOLS_KEY", "ChatTools", "Decision"]

TOOLS_KEY = "tools"

Decision = Literal["once", "always", "deny"]
"""A person's answer before a call: allow this call, allow this tool in this chat from now on,
or refuse (the model is told the person refused)."""


@dataclass(frozen=True)
class ChatTools:
    """`chosen`: the tools (or `server/*`) this chat offers the model; `always`: the tools a
    person allowed for the rest of this chat (no question before their calls)."""

    chosen: tuple[str, ...] = ()
    always: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.chosen)

    def offers(self, qualified: str) -> bool:
        """Whether `server/tool` is among the chosen (by name, or its whole server)."""
        server = qualified.partition("/")[0]
        return qualified in self.chosen or f"{server}/*" in self.chosen

    def servers(self) -> set[str]:
        """The servers any chosen entry names."""
        return {entry.partition("/")[0] for entry in self.chosen}

    def allowed_always(self, qualified: str) -> bool:
        return qualified in self.always

    def with_chosen(self, entries: Iterable[str]) -> ChatTools:
        chosen = tuple(dict.fromkeys(e for e in entries if _valid(e)))
        return ChatTools(chosen, tuple(a for a in self.always if ChatTools(chosen).offers(a)))

    def allowing(self, qualified: str) -> ChatTools:
        """This chat with `qualified` allowed from now on."""
        return self if qualified in self.always else ChatTools(self.chosen, (*self.always, qualified))

    def to_settings(self) -> dict[str, object]:
        """What `Store.update_conversation_settings` merges: one key."""
        return {TOOLS_KEY: {"chosen": list(self.chosen), "always": list(self.always)}}

    @classmethod
    def from_settings(cls, settings: Mapping[str, object] | None) -> ChatTools:
        raw = (settings or {}).get(TOOLS_KEY)
        if not isinstance(raw, Mapping):
            return cls()
        chosen, always = raw.get("chosen"), raw.get("always")
        return cls(
            tuple(e for e in chosen if isinstance(e, str) and _valid(e)) if isinstance(chosen, list) else (),
            tuple(e for e in always if isinstance(e, str) and _valid(e)) if isinstance(always, list) else (),
        )


def _valid(entry: str) -> bool:
    server, sep, tool = entry.partition("/")
    return bool(server and sep and tool) and len(entry) <= 300
