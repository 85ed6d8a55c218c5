"""The window's building blocks. Each widget shows what it is given and reports what the
person did through signals; none of them talks to the engine, the store or a view-model
(the windows in app.ui.windows wire view-models to widgets)."""

from app.ui.widgets.composer import Composer
from app.ui.widgets.conversation_model import ConversationListModel
from app.ui.widgets.conversations import ConversationList
from app.ui.widgets.model_details import ModelDetailsPane
from app.ui.widgets.model_list import ModelListDelegate, ModelListModel
from app.ui.widgets.provider_form import ProviderForm
from app.ui.widgets.route_picker import RouteOption, RoutePicker
from app.ui.widgets.status import ErrorBanner, StatusLine
from app.ui.widgets.transcript import TranscriptView

__all__ = [
    "Composer",
    "ConversationList",
    "ConversationListModel",
    "ErrorBanner",
    "ModelDetailsPane",
    "ModelListDelegate",
    "ModelListModel",
    "ProviderForm",
    "RouteOption",
    "RoutePicker",
    "StatusLine",
    "TranscriptView",
]
