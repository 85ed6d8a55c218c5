"""The status line (model name and state, short notices) and the error banner.

Owns only presentation of strings it is given, in the theme's colours (app.ui.theme).
Must not decide what the state is.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from app.ui.theme import set_style

__all__ = ["ErrorBanner", "MessageStrip", "StatusLine", "waiting_text"]

# The theme's colour (app.ui.theme.style_names) of the dot for each model state.
_STATE_TONES = {"loading": "warning", "ready": "success", "generating": "accent", "error": "error"}
_STATE_WORDS = {"none": "no model loaded"}
_NOTICE_MS = 10_000


def waiting_text(ahead: int) -> str:
    """What a person reads while a chat's answer waits for this computer's model, behind
    `ahead` other chats' answers ("" for none)."""
    if ahead <= 0:
        return ""
    return f"Waiting for the other answer{'s' if ahead > 1 else ''} ({ahead} ahead)"


class StatusLine(QWidget):
    """`● SmolLM2-135M-Instruct · ready` on the left, then which remote provider answers the
    shown conversation (`⇄ lan-box · qwen2.5-7b`, hidden when it is this computer), then
    whether its answer waits its turn for the model (`set_waiting`), then the latest notice."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_label = QLabel(self)
        self.model_label.setObjectName("modelStatus")
        self.model_label.setTextFormat(Qt.TextFormat.PlainText)
        self.dot = QLabel("●", self)
        self.route_label = QLabel(self)
        self.route_label.setObjectName("routeStatus")
        self.route_label.setTextFormat(Qt.TextFormat.PlainText)
        set_style(self.route_label, "color: $accent;")
        self.route_label.hide()
        self.waiting_label = QLabel(self)  # stays while the shown chat's answer waits, unlike a notice
        self.waiting_label.setObjectName("waitingStatus")
        self.waiting_label.setTextFormat(Qt.TextFormat.PlainText)
        set_style(self.waiting_label, "color: $warning;")
        self.waiting_label.hide()
        self.notice_label = QLabel(self)
        self.notice_label.setObjectName("notice")
        self.notice_label.setTextFormat(Qt.TextFormat.PlainText)
        set_style(self.notice_label, "color: $muted;")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 2)
        layout.setSpacing(6)
        layout.addWidget(self.dot)
        layout.addWidget(self.model_label)
        layout.addSpacing(12)
        layout.addWidget(self.route_label)
        layout.addWidget(self.waiting_label)
        layout.addSpacing(16)
        layout.addWidget(self.notice_label, 1)
        self._clear = QTimer(self)
        self._clear.setSingleShot(True)
        self._clear.timeout.connect(self.notice_label.clear)
        self.set_model("loading", "", "")

    def set_model(self, state: str, name: str, error: str) -> None:
        self.model_label.setText(f"{name or 'model'} · {_STATE_WORDS.get(state, state)}")
        self.model_label.setToolTip(error)
        set_style(self.dot, f"color: ${_STATE_TONES.get(state, 'muted')};")

    def set_route(self, text: str, tooltip: str = "") -> None:
        """`text`: "provider · model" of the shown conversation, "" when this computer answers."""
        self.route_label.setText(f"⇄ {text}" if text else "")
        self.route_label.setToolTip(tooltip)
        self.route_label.setVisible(bool(text))

    def set_waiting(self, text: str) -> None:
        """ "Waiting for the other answer (1 ahead)" while the shown chat's answer waits; "" hides it."""
        self.waiting_label.setText(text)
        self.waiting_label.setVisible(bool(text))

    def show_notice(self, text: str) -> None:
        self.notice_label.setText(text)
        self.notice_label.setToolTip(text)
        self._clear.start(_NOTICE_MS)


_STRIP_TONES = {"error": "error", "ok": "success", "info": "accent"}


class MessageStrip(QWidget):
    """The latest result or error, coloured by kind, until dismissed or replaced."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageStrip")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.kind = ""
        self.label = QLabel(self)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_message(self, kind: str, text: str) -> None:
        tone = _STRIP_TONES.get(kind, "accent")
        self.kind = kind
        set_style(
            self,
            f"#{self.objectName()} {{ background: ${tone}_tint; border: 1px solid ${tone}_line;"
            f" border-radius: 6px; }} QLabel {{ color: $text; }}",
        )
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()


class ErrorBanner(MessageStrip):
    """A red strip above the transcript with a message a person can act on; closable."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")

    def show_message(self, text: str) -> None:  # type: ignore[override]
        super().show_message("error", text)

    def show_note(self, text: str) -> None:
        """Something worth knowing that is not an error (a model without a chat template): blue."""
        super().show_message("info", text)
