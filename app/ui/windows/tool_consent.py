"""The question before a tool runs: which tool, from which server, what it says it does, and the
exact arguments the model chose; then Allow once / Always allow in this chat / Deny.

Owns `ToolConsentDialog` and `ask_consent`, the coroutine a chat's answer loop awaits (pass it as
`functools.partial(ask_consent, window, chat_title=...)`: `(call, info) -> Awaitable[Decision]`).
The dialog is opened with `open()` and answered through a future, never `exec()`: a nested event
loop inside qasync would stall every other chat's stream. Deny is the default button and Esc;
closing the window is Deny too; cancelling the coroutine (Stop) closes the dialog.
Everything shown comes from the model or a server: plain text only, and the arguments are cut
past `MAX_ARGUMENTS_CHARS` with a note (a model can write megabytes).
Must not: run the tool, or remember the answer (the caller keeps "always" in ChatTools).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.tools import BUILTIN_SERVER, ToolInfo
from app.core.tools.choice import Decision
from app.ui.theme import set_style
from engine.commands import ToolCall

__all__ = ["MAX_ARGUMENTS_CHARS", "ToolConsentDialog", "arguments_text", "ask_consent"]

MAX_ARGUMENTS_CHARS = 20_000
_MAX_DESCRIPTION_CHARS = 2_000


def arguments_text(arguments: str) -> tuple[str, str | None]:
    """The arguments as a person reads them, and a note (invalid JSON, or cut). Valid JSON is
    pretty-printed (non-ASCII kept as it is); anything else is shown exactly as the model wrote it."""
    note: str | None = None
    try:
        text = json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        text = arguments
        note = "These arguments are not valid JSON; the tool will likely refuse them. Shown as the model wrote them."
    if len(text) > MAX_ARGUMENTS_CHARS:
        cut = f"Cut here: {len(text):,} characters in all, the first {MAX_ARGUMENTS_CHARS:,} shown."
        text = text[:MAX_ARGUMENTS_CHARS] + "\n…"
        note = f"{note} {cut}" if note else cut
    return text, note


def _plain(parent: QWidget, name: str) -> QLabel:
    label = QLabel(parent)
    label.setObjectName(name)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class ToolConsentDialog(QDialog):
    """One question about one call. `decision` is None until answered; `answered` is then set."""

    def __init__(self, call: ToolCall, info: ToolInfo | None, *, chat_title: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.decision: Decision | None = None
        self.answered = asyncio.Event()
        server, _, tool = call.name.partition("/")
        self.setWindowTitle("Allow this tool to run?")
        self.setObjectName("toolConsent")
        self.setMinimumWidth(520)
        self.resize(620, 520)
        heading = _plain(self, "consentHeading")
        heading.setText(f"The model wants to run {call.name}")
        font = QFont(heading.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        heading.setFont(font)
        self.where = _plain(self, "consentWhere")
        origin = "Hearth's own tool" if server == BUILTIN_SERVER else f"from the MCP server “{server}”"
        self.where.setText(f"Tool “{tool or call.name}”, {origin}, in the chat “{chat_title or 'New chat'}”.")
        set_style(self.where, "color: $muted;")
        self.description = _plain(self, "consentDescription")
        described = info.description.strip() if info is not None else ""
        if len(described) > _MAX_DESCRIPTION_CHARS:
            described = described[:_MAX_DESCRIPTION_CHARS] + " … [cut]"
        who = "Hearth" if server == BUILTIN_SERVER else "The server"
        if info is None:
            said = "This tool is not in the chat's list of tools: its server may have changed."
        else:
            said = f"{who} describes it as: {described}" if described else f"{who} gives no description of it."
        self.description.setText(said)
        args_title = QLabel("With these arguments:", self)
        self.arguments = QPlainTextEdit(self)
        self.arguments.setObjectName("consentArguments")
        self.arguments.setReadOnly(True)
        self.arguments.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.arguments.setFont(mono)
        text, note = arguments_text(call.arguments)
        self.arguments.setPlainText(text or "(none)")
        self.note = _plain(self, "consentNote")
        self.note.setText(note or "")
        self.note.setVisible(note is not None)
        set_style(self.note, "color: $error;")
        warning = _plain(self, "consentWarning")
        warning.setText("What the tool returns goes to the model. Allow only what you would do yourself.")
        set_style(warning, "color: $muted;")
        self.once_button = QPushButton("Allow once", self)
        self.once_button.setObjectName("allowOnce")
        self.always_button = QPushButton("Always allow in this chat", self)
        self.always_button.setObjectName("allowAlways")
        self.always_button.setToolTip(f"Run {call.name} in this chat from now on without asking")
        self.deny_button = QPushButton("Deny", self)
        self.deny_button.setObjectName("deny")
        for button in (self.once_button, self.always_button):
            button.setAutoDefault(False)
        self.deny_button.setDefault(True)  # Enter refuses: allowing takes a deliberate click
        self.deny_button.setAutoDefault(True)
        self.once_button.clicked.connect(lambda: self.answer("once"))
        self.always_button.clicked.connect(lambda: self.answer("always"))
        self.deny_button.clicked.connect(lambda: self.answer("deny"))
        buttons = QHBoxLayout()
        buttons.addWidget(self.always_button)
        buttons.addStretch(1)
        buttons.addWidget(self.once_button)
        buttons.addWidget(self.deny_button)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(self.where)
        layout.addWidget(self.description)
        layout.addSpacing(6)
        layout.addWidget(args_title)
        layout.addWidget(self.arguments, 1)
        layout.addWidget(self.note)
        layout.addWidget(warning)
        layout.addLayout(buttons)
        self.deny_button.setFocus()

    def answer(self, decision: Decision) -> None:
        """The first answer counts; the window closes."""
        if self.decision is None:
            self.decision = decision
            self.answered.set()
        if self.isVisible():
            self.done(QDialog.DialogCode.Rejected if decision == "deny" else QDialog.DialogCode.Accepted)

    def reject(self) -> None:
        """Esc, the window's close button, and close(): each is Deny (QDialog routes them all here)."""
        self.answer("deny")


async def ask_consent(parent: QWidget | None, call: ToolCall, info: ToolInfo | None, *, chat_title: str) -> Decision:
    """Ask the person about one call; "deny" when the window is closed. Cancelling (Stop) closes it."""
    dialog = ToolConsentDialog(call, info, chat_title=chat_title, parent=parent)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()  # modal to its window, not exec(): the loop goes on, other chats stream meanwhile
    dialog.raise_()
    dialog.activateWindow()
    answered = dialog.answered
    # Its window closed under it (the app quitting): no answer is a refusal, and nothing waits forever.
    dialog.destroyed.connect(lambda *_: answered.set())
    try:
        await answered.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(RuntimeError):  # the window was already deleted with its parent
            dialog.close()
        raise
    try:
        return dialog.decision or "deny"
    except RuntimeError:  # deleted with its parent before an answer
        return "deny"
