"""ChatGPT's data export (`conversations.json`): its tree of `mapping` nodes becomes Hearth's
branches.

Each conversation is {"title", "create_time", "update_time", "id"/"conversation_id",
"current_node", "mapping": {node_id: {"id", "parent", "children", "message": null | {"author":
{"role"}, "content": {"content_type", "parts" | "text" | ...}, "create_time", "update_time",
"metadata", "recipient", ...}}}}. Kept: user, assistant and visible system messages with text;
code becomes a fenced block, images a placeholder, "thoughts" the answer's reasoning. Left out
(counted by reason): the empty root, hidden context, tool calls and tool output. A left-out
node's children hang from its nearest kept ancestor; the steps of one answer (code, then the
reply after the tool ran) join into one answer. `current_node` becomes the branch shown.

A damaged tree is mended, never dropped, and the mending is reported (`Incoming.repaired`): a
loop of parents (a node its own ancestor, or its own parent) is cut at its earliest message,
which starts a branch of its own; a node whose parent is not in the file starts one too.

No store, no Qt: plain values in, `Incoming` / `Rejected` out.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, replace

from app.core.exchange.values import Incoming, Rejected, clean_text, clean_title, time_of
from store.exchange import ExchangeConversation, ExchangeGeneration, ExchangeMessage

__all__ = ["from_chatgpt", "is_chatgpt"]

_FINISH = {
    "stop": ("completed", "stop", None),
    "max_tokens": ("completed", "length", None),
    "interrupted": ("cancelled", None, "user"),
}


def is_chatgpt(value: object) -> bool:
    return isinstance(value, dict) and "mapping" in value


@dataclass(frozen=True, slots=True)
class _Skip:
    reason: str
    role: str | None = None


def from_chatgpt(value: dict[str, object]) -> Incoming | Rejected:
    title = clean_title(value.get("title"), "ChatGPT conversation")
    mapping = value.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        return Rejected(title, "it has no messages (its mapping is missing or empty)")
    nodes = {k: v for k, v in mapping.items() if isinstance(k, str) and isinstance(v, dict)}
    created = time_of(value.get("create_time"))
    walk = _Walk(nodes, created if created is not None else time.time())
    walk.run()
    if not walk.messages:
        return Rejected(title, "no messages with text", broken=False)
    repaired = "; ".join(walk.repairs())
    times = [m.created_at for m in walk.messages]
    created = created if created is not None else min(times)
    updated = time_of(value.get("update_time")) or max([*times, created])
    current = value.get("current_node")
    leaf = walk.anchor.get(current) if isinstance(current, str) else None
    conversation = ExchangeConversation(
        title=title,
        created_at=created,
        updated_at=updated,
        settings={},
        messages=tuple(walk.messages),
        leaf_key=leaf or walk.messages[-1].key,
    )
    first = next(m for m in walk.messages if m.parent_key is None)
    return Incoming(conversation, _import_key(value, title, nodes, first.content), walk.skipped, repaired)


def _import_key(value: dict[str, object], title: str, nodes: dict[str, dict[str, object]], first: str) -> str:
    """ChatGPT's id for the chat, bound to its start and first message: a file that only claims
    the id of someone's real chat does not make that chat's later import look done."""
    source = value.get("conversation_id") or value.get("id")
    if isinstance(source, str) and source.strip():
        identity = json.dumps([value.get("create_time"), first], default=str)
        return f"chatgpt:{source.strip()}:" + _digest(identity)[:16]
    return "chatgpt:sha-" + _digest(json.dumps([title, value.get("create_time"), sorted(nodes)], default=str))[:32]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class _Walk:
    """Depth first from the roots; parents come before children, siblings in their order."""

    def __init__(self, nodes: dict[str, dict[str, object]], created: float) -> None:
        self.nodes = nodes
        self.created = created
        self._by_parent: dict[str | None, list[str]] = {}
        self.orphans = 0  # nodes whose parent is not in the file
        self.loops = 0  # loops of parents cut
        for node_id, node in nodes.items():
            parent = _parent(node)
            if parent is not None and parent not in nodes:
                self.orphans += 1
            self._by_parent.setdefault(parent if parent in nodes else None, []).append(node_id)
        self.messages: list[ExchangeMessage] = []
        self.index: dict[str, int] = {}  # kept message key -> position in messages
        self.anchor: dict[str, str | None] = {}  # node id -> the kept message it is (or hangs from)
        self.skipped: Counter[str] = Counter()

    def children(self, node_id: str) -> list[str]:
        listed = self.nodes[node_id].get("children")
        kids = (
            [c for c in listed if isinstance(c, str) and c in self.nodes and _parent(self.nodes[c]) == node_id]
            if isinstance(listed, list)
            else []
        )
        # A child that names this parent but is missing from its list still belongs here.
        kids += sorted(k for k in self._by_parent.get(node_id, ()) if k not in kids)
        return list(dict.fromkeys(kids))

    def run(self) -> None:
        self._walk(list(self._by_parent.get(None, [])))
        # What the roots do not reach hangs from a loop of parents (each node has one parent).
        while len(self.anchor) < len(self.nodes):
            self.loops += 1
            self._walk([self._loop_cut()])

    def repairs(self) -> list[str]:
        """What was wrong with the tree and how it was mended, for a person."""
        out = []
        if self.loops:
            loops = "a loop" if self.loops == 1 else f"{self.loops} loops"
            out.append(
                f"its message tree had {loops} (messages answering each other): cut at the earliest "
                "message, every message kept"
            )
        if self.orphans:
            out.append(f"{self.orphans} of its messages answered one missing from the file: kept as new branches")
        return out

    def _loop_cut(self) -> str:
        """The node at which to cut a loop that no root reaches: follow parents from the first
        unreached node until one repeats; of that loop, the earliest message (file order on a tie)."""
        node_id = next(n for n in self.nodes if n not in self.anchor)
        seen: dict[str, int] = {}
        while node_id not in seen:
            seen[node_id] = len(seen)
            parent = _parent(self.nodes[node_id])
            assert parent is not None and parent in self.nodes  # else it would be a root
            node_id = parent
        loop = [n for n, i in seen.items() if i >= seen[node_id]]
        order = {n: i for i, n in enumerate(self.nodes)}
        return min(loop, key=lambda n: (_time_of_node(self.nodes[n]), order[n]))

    def _walk(self, roots: list[str]) -> None:
        # (node, kept ancestor, the answer it may continue, that ancestor's time)
        stack: list[tuple[str, str | None, str | None, float]] = [
            (root, None, None, self.created) for root in reversed(roots)
        ]
        while stack:
            node_id, anchor, answer, when = stack.pop()
            if node_id in self.anchor:
                continue
            anchor, answer, when = self._visit(node_id, anchor, answer, when)
            self.anchor[node_id] = anchor
            kids = self.children(node_id)
            # Only an unbranched run of steps is one answer; at a fork each branch starts anew.
            follow = answer if len(kids) == 1 else None
            stack.extend((kid, anchor, follow, when) for kid in reversed(kids))

    def _visit(
        self, node_id: str, anchor: str | None, answer: str | None, when: float
    ) -> tuple[str | None, str | None, float]:
        got = _convert(self.nodes[node_id].get("message"), when)
        if isinstance(got, _Skip):
            if got.reason != "empty root":
                self.skipped[got.reason] += 1
            return anchor, None if got.role == "user" else answer, when
        if got.role == "assistant" and answer is not None:
            self._join(answer, got)
            return answer, answer, when
        message = replace(got, key=node_id, parent_key=anchor)
        self.index[node_id] = len(self.messages)
        self.messages.append(message)
        return node_id, node_id if got.role == "assistant" else None, message.created_at

    def _join(self, key: str, step: ExchangeMessage) -> None:
        """One answer written in steps (code, the tool's run, the reply): one message here."""
        i = self.index[key]
        first = self.messages[i]
        self.messages[i] = replace(
            first,
            content="\n\n".join(t for t in (first.content, step.content) if t.strip()),
            reasoning="\n\n".join(t for t in (first.reasoning, step.reasoning) if t.strip()),
            updated_at=max(first.updated_at, step.updated_at),
            generation=step.generation or first.generation,
        )


def _parent(node: dict[str, object]) -> str | None:
    parent = node.get("parent")
    return parent if isinstance(parent, str) else None


def _time_of_node(node: dict[str, object]) -> float:
    message = node.get("message")
    t = time_of(message.get("create_time")) if isinstance(message, dict) else None
    return float("inf") if t is None else t


def _convert(message: object, when: float) -> ExchangeMessage | _Skip:
    """The message as Hearth keeps it (key and parent filled in by the walk), or why it is left out."""
    if not isinstance(message, dict):
        return _Skip("empty root")
    author = message.get("author")
    role = author.get("role") if isinstance(author, dict) else None
    metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    if metadata.get("is_visually_hidden_from_conversation"):
        return _Skip("hidden context", role if isinstance(role, str) else None)
    if role == "tool":
        return _Skip("tool output", role)
    if role not in ("user", "assistant", "system"):
        return _Skip(f"role {role!r}")
    content = message.get("content")
    kind = content.get("content_type") if isinstance(content, dict) else None
    if not isinstance(content, dict):
        return _Skip("no content", role)
    text, reasoning = "", ""
    if kind in ("text", "multimodal_text"):
        text = _parts(content.get("parts"))
    elif kind == "code":
        code = content.get("text")
        language = content.get("language")
        fence = "```" + (language if isinstance(language, str) and language.isalnum() and language != "unknown" else "")
        text = f"{fence}\n{code}\n```" if isinstance(code, str) and code.strip() else ""
    elif kind == "thoughts":
        thoughts = content.get("thoughts")
        steps = thoughts if isinstance(thoughts, list) else []
        reasoning = "\n\n".join(
            str(t["content"]) for t in steps if isinstance(t, dict) and isinstance(t.get("content"), str)
        )
    elif kind == "reasoning_recap":
        return _Skip("reasoning recap", role)
    elif isinstance(content.get("text"), str):
        text = str(content["text"])
    else:
        return _Skip(f"{kind or 'unknown'} content", role)
    recipient = message.get("recipient")
    if role == "assistant" and recipient not in (None, "all") and kind != "code":
        return _Skip("tool call", role)
    if not text.strip() and not reasoning.strip():
        return _Skip("empty", role)
    created = time_of(message.get("create_time")) or when
    updated = time_of(message.get("update_time")) or created
    return ExchangeMessage(
        key="",
        parent_key=None,
        role=role,
        content=clean_text(text),
        reasoning=clean_text(reasoning),
        created_at=created,
        updated_at=max(created, updated),
        generation=_generation(message, metadata, created, updated) if role == "assistant" else None,
    )


def _parts(parts: object) -> str:
    if not isinstance(parts, list):
        return ""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            kind = str(part.get("content_type", ""))
            if isinstance(part.get("text"), str):  # e.g. a voice message's transcription
                out.append(part["text"])
            elif "image" in kind:
                out.append("[image not imported]")
            elif "audio" not in kind:  # the audio itself: its transcription is the text
                out.append("[attachment not imported]")
    return "\n\n".join(p for p in out if p)


def _generation(
    message: dict[str, object], metadata: dict[str, object], created: float, updated: float
) -> ExchangeGeneration:
    finish = metadata.get("finish_details")
    kind = finish.get("type") if isinstance(finish, dict) else None
    state, stop_reason, cancel_reason = _FINISH.get(kind if isinstance(kind, str) else "", ("completed", None, None))
    model = metadata.get("model_slug")
    return ExchangeGeneration(
        model=clean_text(model) if isinstance(model, str) and model else "chatgpt",
        state=state,
        created_at=created,
        finished_at=max(created, updated),
        stop_reason=stop_reason,
        cancel_reason=cancel_reason,
    )
