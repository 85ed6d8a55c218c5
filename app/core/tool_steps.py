"""How one tool call is shown under the answer that asked for it: the folded line
("🔧 test/echo · 120 ms · ok") and what unfolds (the arguments, the tool's output). No Qt.

Owns `ToolStepView` (one call as the transcript shows it, live or read back), made from the tool
loop's `ToolStep` while it runs, or from the stored rows (the answer's `tool_calls`, each paired
with the "tool" message holding its result) when a chat is opened; and the words for each status.
A tool's output is untrusted data: it is kept as text here and drawn as plain text, never
Markdown; what a screen shows of it is bounded (`SHOWN_CHARS`, `SHOWN_LINES`).
Must not: run, refuse or allow anything (app.core.tool_loop does), or read the store.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.commands import ChatMessage, ToolCall
from store.tool_rows import ToolStatus

if TYPE_CHECKING:
    from app.core.tool_loop import ToolStep
    from store.rows import MessageRow

__all__ = [
    "SHOWN_CHARS",
    "SHOWN_LINES",
    "StepStatus",
    "ToolStepView",
    "asking",
    "attach_steps",
    "from_step",
    "prompt_messages",
    "shown",
    "stopped",
    "upsert",
]

StepStatus = ToolStatus | Literal["asking", "running"]
"""A stored call's status, or a live one's: waiting for the person's answer, or running."""

SHOWN_CHARS = 3_000  # of a tool's output (or the arguments) drawn in the transcript
SHOWN_LINES = 24

_WORDS: dict[str, str] = {
    "ok": "ok",
    "error": "failed",
    "denied": "denied",
    "cancelled": "stopped",
    "timeout": "timed out",
    "not_run": "not run",
    "unknown": "unknown",
    "asking": "waiting for your answer…",
    "running": "running…",
}


@dataclass(frozen=True, slots=True)
class ToolStepView:
    """One call: `name` the tool's `server/tool` (or the name the model used, for a tool this chat
    does not offer); `arguments` as the model wrote them; `result` the tool's text (or why there
    is none), as the model was told it."""

    call_id: str
    name: str
    status: StepStatus
    arguments: str = ""
    result: str = ""
    latency_ms: float | None = None
    truncated: bool = False  # the output was cut at the loop's size limit before the model read it

    @property
    def live(self) -> bool:
        return self.status in ("asking", "running")

    def line(self, icon: str = "🔧") -> str:
        """The folded line: the tool, its time when it ran, and how it went."""
        parts = [f"{icon} {self.name}"]
        if self.latency_ms is not None:
            parts.append(f"{self.latency_ms:,.0f} ms")
        parts.append(_WORDS.get(self.status, self.status))
        return " · ".join(parts)

    def pretty_arguments(self) -> str:
        """The arguments as indented JSON when they parse, else as the model wrote them."""
        try:
            value = json.loads(self.arguments or "{}")
        except ValueError:
            return f"{self.arguments}\n(not valid JSON)"
        return json.dumps(value, indent=2, ensure_ascii=False)

    def output_heading(self) -> str:
        if self.status in ("asking", "running"):
            return ""
        if self.status in ("ok", "error", "timeout"):
            return f"Output of {self.name} (from the tool, not the model)"
        return "What the model was told (Hearth's note; the tool did not answer)"


def shown(text: str) -> tuple[str, int]:
    """At most SHOWN_CHARS characters and SHOWN_LINES lines of `text`, and how many are left out."""
    cut = text[:SHOWN_CHARS]
    lines = cut.split("\n")
    if len(lines) > SHOWN_LINES:
        cut = "\n".join(lines[:SHOWN_LINES])
    return cut, len(text) - len(cut)


def from_step(step: ToolStep) -> ToolStepView:
    """A call as the tool loop tells it: its start ("not_run" without a text: running) or its end."""
    status: StepStatus = "running" if step.run.status == "not_run" and not step.text else step.run.status
    return ToolStepView(
        call_id=step.call.id,
        name=step.info.qualified if step.info is not None else step.call.name,
        status=status,
        arguments=step.call.arguments,
        result=step.text,
        latency_ms=step.run.latency_ms,
        truncated=step.run.truncated,
    )


def asking(call: ToolCall, name: str) -> ToolStepView:
    return ToolStepView(call.id, name, "asking", call.arguments)


def stopped(calls: Sequence[ToolCall], steps: Sequence[ToolStepView]) -> tuple[ToolStepView, ...]:
    """After Stop: every call of the answer, those not finished shown as stopped (as the loop
    saves them)."""
    known = {s.call_id: s for s in steps}
    out = []
    for call in calls:
        step = known.get(call.id)
        if step is None or step.live:
            name = step.name if step is not None else call.name
            step = ToolStepView(
                call.id, name, "cancelled", call.arguments, "The person stopped this call before it finished."
            )
        out.append(step)
    return tuple(out)


def upsert(steps: tuple[ToolStepView, ...], step: ToolStepView) -> tuple[ToolStepView, ...]:
    """`steps` with `step` in its call's place (added at the end when new)."""
    for i, s in enumerate(steps):
        if s.call_id == step.call_id:
            return (*steps[:i], step, *steps[i + 1 :])
    return (*steps, step)


def attach_steps(rows: Sequence[MessageRow]) -> dict[int, tuple[ToolStepView, ...]]:
    """For each answer among `rows` (a branch, in order) that asked for calls: its calls, each with
    the tool message that holds its result (a call without one was never answered: not run)."""
    results = {r.tool_call_id: r for r in rows if r.role == "tool" and r.tool_call_id}
    out: dict[int, tuple[ToolStepView, ...]] = {}
    for row in rows:
        if row.role != "assistant" or not row.tool_calls or row.id is None:
            continue
        steps = []
        for call in row.tool_calls:
            tool = results.get(call.id)
            run = tool.tool_run if tool is not None else None
            if tool is None or run is None:
                steps.append(ToolStepView(call.id, call.name, "not_run", call.arguments, "No result was saved."))
                continue
            steps.append(
                ToolStepView(
                    call.id, run.name, run.status, call.arguments, tool.content or "", run.latency_ms, run.truncated
                )
            )
        out[row.id] = tuple(steps)
    return out


def prompt_messages(role: str, text: str, steps: Sequence[ToolStepView]) -> list[ChatMessage]:
    """A shown message as the prompt carries it (the context meter's count): an answer with its calls,
    then each call's result as a tool message. A call's name is its tool's own name, as the model is
    most often offered it (app.core.tool_loop names a tool `server_tool` only when two share a name)."""
    if not steps:
        return [ChatMessage(role, text)]
    calls = tuple(ToolCall(s.call_id, s.name.rpartition("/")[2], s.arguments) for s in steps)
    return [ChatMessage(role, text, calls), *(ChatMessage("tool", s.result, tool_call_id=s.call_id) for s in steps)]
