"""The window's building blocks. Each widget shows what it is given and reports what the
person did through signals; none of them talks to the engine, the store or a view-model."""

from app.widgets.composer import Composer
from app.widgets.conversations import ConversationList, ConversationListModel
from app.widgets.status import ErrorBanner, StatusLine
from app.widgets.transcript import TranscriptView

__all__ = [
    "Composer",
    "ConversationList",
    "ConversationListModel",
    "ErrorBanner",
    "StatusLine",
    "TranscriptView",
]
