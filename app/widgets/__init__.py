"""The window's building blocks. Each widget shows what it is given and reports what the
person did through signals; none of them talks to the engine, the store or a view-model.
The exceptions are ModelManagerDialog and ProvidersDialog, windows of their own that, like
MainWindow, wire their view-model to their parts (which follow the rule)."""

from app.widgets.composer import Composer
from app.widgets.conversations import ConversationList, ConversationListModel
from app.widgets.model_details import ModelDetailsPane
from app.widgets.model_list import ModelListDelegate, ModelListModel
from app.widgets.model_manager import ModelManagerDialog
from app.widgets.provider_form import ProviderForm
from app.widgets.providers_dialog import ProvidersDialog
from app.widgets.route_picker import RouteOption, RoutePicker
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
    "ProviderForm",
    "ProvidersDialog",
    "RouteOption",
    "RoutePicker",
    "StatusLine",
    "TranscriptView",
]
