"""The window's building blocks. Each widget shows what it is given and reports what the
person did through signals; none of them talks to the engine, the store or a view-model.
The one exception is ModelManagerDialog, a window of its own that, like MainWindow, wires
its view-model to its parts (the model list and the details pane, which follow the rule)."""

from app.widgets.composer import Composer
from app.widgets.conversations import ConversationList, ConversationListModel
from app.widgets.model_details import ModelDetailsPane
from app.widgets.model_list import ModelListDelegate, ModelListModel
from app.widgets.model_manager import ModelManagerDialog
from app.widgets.status import ErrorBanner, StatusLine
from app.widgets.transcript import TranscriptView

__all__ = [
    "Composer",
    "ConversationList",
    "ConversationListModel",
    "ErrorBanner",
    "ModelDetailsPane",
    "ModelListDelegate",
    "ModelListModel",
    "ModelManagerDialog",
    "StatusLine",
    "TranscriptView",
]
