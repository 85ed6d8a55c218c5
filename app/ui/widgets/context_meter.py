"""The context meter under the message box: how much of the model's context the next turn
takes, what the chat's overflow policy would leave out, and whether it can be sent at all.

Owns: the words and colour for one measurement (engine.events.Measured), and `refusal`, why
the measured turn cannot be sent ("" when it can), which the window shows on Send and obeys.
It warns before the context is full, says how many earlier messages are left out once it is,
and hides itself (refusing nothing) for a remote route or when nothing could be measured.
Must not: measure (app.ui.windows.meter_control asks the view-model), or decide what is sent
(engine.context_fit.refused says which turns the engine refuses).
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from app.ui.theme import set_style
from engine.context_fit import refused
from engine.events import Measured

__all__ = ["WARN_AT", "ContextMeter", "describe", "refusal"]

WARN_AT = 0.8  # of the context: the meter turns to a warning from here


def refusal(m: Measured, policy: str, model_context: int | None = None) -> str:
    """Why a turn measured as `m` under the overflow `policy` cannot be sent, and what helps;
    "" when it can. `model_context`: the loaded model's context (the chat may use less)."""
    if m.error or not m.n_ctx or not refused(m.prompt_tokens, m.n_ctx, policy, m.omitted >= 0):
        return ""
    capped = model_context is not None and m.n_ctx < model_context  # the chat uses less than the model has
    if policy == "stop":
        helps = (
            "or in the chat's settings raise its context length or let it leave out older turns"
            if capped
            else "let the chat leave out older turns (chat settings), or load the model with a longer context"
        )
        return f"Too long to send: this chat stops when it outgrows the context. Shorten your message, {helps}."
    more = "raise this chat's context length (chat settings)" if capped else "load the model with a longer context"
    return f"Your message is too long to send, even with every earlier message left out. Shorten it or {more}."


def describe(m: Measured, policy: str = "rolling", model_context: int | None = None) -> tuple[str, str]:
    """(text, level) for a measurement; level is "", "warning" or "error"."""
    share = m.prompt_tokens / m.n_ctx if m.n_ctx else 0.0
    text = f"Context: {m.prompt_tokens:,} of {m.n_ctx:,} tokens ({share:.0%})"
    if reason := refusal(m, policy, model_context):
        return f"{text}. {reason}", "error"
    if m.omitted < 0:  # nothing can be left out, but the whole prompt still leaves room to answer
        return f"{text}: full. Nothing more can be left out; the answer gets the little room left.", "warning"
    if m.omitted > 0:
        earlier = "1 earlier message is" if m.omitted == 1 else f"{m.omitted} earlier messages are"
        if m.summary_tokens:
            return f"{text}: {earlier} sent as a summary ({m.summary_tokens:,} tokens).", "warning"
        return f"{text}: {earlier} left out (chat settings choose how).", "warning"
    if share >= WARN_AT:
        return f"{text}: nearly full. Older turns will soon be left out.", "warning"
    return text, ""


class ContextMeter(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("contextMeter")
        self.setWordWrap(True)  # a refusal's advice is long: it wraps instead of widening the window
        self.level = ""
        self.refusal = ""  # why the next turn cannot be sent; "" when it can
        self.hide()

    def show_measure(self, m: Measured | None, policy: str = "rolling", model_context: int | None = None) -> None:
        """Show `m`, measured for a chat whose overflow policy is `policy`; None: hide (and refuse nothing)."""
        if m is None or m.error or not m.n_ctx:
            self.level, self.refusal = "", ""
            self.hide()
            return
        self.refusal = refusal(m, policy, model_context)
        text, self.level = describe(m, policy, model_context)
        self.setText(text)
        summary = f" Summary of earlier turns: {m.summary_tokens:,}." if m.summary_tokens else ""
        self.setToolTip(
            f"System prompt: {m.system_tokens:,} tokens. The conversation and what you are typing: "
            f"{m.prompt_tokens - m.system_tokens:,}.{summary} The answer needs room too."
        )
        set_style(self, {"error": "color: $error;", "warning": "color: $warning;"}.get(self.level, "color: $muted;"))
        self.show()
