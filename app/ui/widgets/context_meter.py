"""The context meter under the message box: how much of the model's context the next turn
takes, and what the chat's overflow policy would leave out.

Owns: the words and colour for one measurement (engine.events.Measured). It warns before the
context is full, says how many earlier messages are left out once it is, and hides itself
for a remote route or when nothing could be measured.
Must not: measure (app.ui.windows.meter_control asks the view-model).
"""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget

from app.ui.theme import set_style
from engine.events import Measured

__all__ = ["WARN_AT", "ContextMeter", "describe"]

WARN_AT = 0.8  # of the context: the meter turns to a warning from here


def describe(m: Measured) -> tuple[str, str]:
    """(text, level) for a measurement; level is "", "warning" or "error"."""
    share = m.prompt_tokens / m.n_ctx if m.n_ctx else 0.0
    text = f"Context: {m.prompt_tokens:,} of {m.n_ctx:,} tokens ({share:.0%})"
    if m.omitted < 0:
        return f"{text}: your message is too long to send. Shorten it or raise the context length.", "error"
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
        self.level = ""
        self.hide()

    def show_measure(self, m: Measured | None) -> None:
        if m is None or m.error or not m.n_ctx:
            self.hide()
            return
        text, self.level = describe(m)
        self.setText(text)
        summary = f" Summary of earlier turns: {m.summary_tokens:,}." if m.summary_tokens else ""
        self.setToolTip(f"System prompt: {m.system_tokens:,} tokens. The conversation and what you are typing: "
                        f"{m.prompt_tokens - m.system_tokens:,}.{summary} The answer needs room too.")
        set_style(self, {"error": "color: $error;", "warning": "color: $warning;"}.get(self.level, "color: $muted;"))
        self.show()
