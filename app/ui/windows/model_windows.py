"""The main window's Models menu: Manage models… (also a click on the model's name in the status
line) and Providers… (also "Providers…" in the route picker).

Owns the two actions, with their keys from app.ui.shortcuts, and the two windows, each made on
first use and then reused; the Providers window opens on the provider of the chat shown.
Must not: change models or providers itself (the windows' view-models do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QHelpEvent, QMouseEvent
from PySide6.QtWidgets import QLabel, QMenuBar, QToolTip, QWidget

from app.ui.windows.model_manager import ModelManagerDialog
from app.ui.windows.providers_dialog import ProvidersDialog
from app.ui.windows.window_actions import bind

if TYPE_CHECKING:
    from app.ui.viewmodels.models import ModelManagerViewModel
    from app.ui.viewmodels.providers import ProvidersViewModel

__all__ = ["ModelWindows"]


class ModelWindows(QObject):
    """`models`/`providers` None: that window is not offered (tests of the chat alone; no remote
    mode). `shown_provider`: the provider of the chat shown, None for this computer's model."""

    def __init__(
        self,
        window: QWidget,
        bar: QMenuBar,
        models: ModelManagerViewModel | None,
        providers: ProvidersViewModel | None,
        model_label: QLabel,
        *,
        shown_provider: Callable[[], str | None],
    ) -> None:
        super().__init__(window)
        self._window = window
        self._models = models
        self._providers = providers
        self._model_label = model_label
        self._shown_provider = shown_provider
        self.model_manager: ModelManagerDialog | None = None  # made on first use, then reused
        self.providers_dialog: ProvidersDialog | None = None
        self.manage_models_action = bind(QAction("Manage models…", window), "manage_models")
        self.manage_models_action.triggered.connect(self.open_model_manager)
        self.manage_models_action.setEnabled(models is not None)
        self.providers_action = bind(QAction("Providers…", window), "providers")
        self.providers_action.triggered.connect(self.open_providers)
        self.providers_action.setEnabled(providers is not None)
        self.menu = menu = bar.addMenu("&Models")  # Documents… joins it (app.ui.windows.documents_window)
        menu.addAction(self.manage_models_action)
        menu.addAction(self.providers_action)
        if models is not None:
            # The model's name in the status line is where people look when it is wrong.
            model_label.setCursor(Qt.CursorShape.PointingHandCursor)
            model_label.installEventFilter(self)

    def open_model_manager(self) -> ModelManagerDialog | None:
        if self._models is None:
            return None
        if self.model_manager is None:
            self.model_manager = ModelManagerDialog(self._models, self._window)
        self.model_manager.show()
        self.model_manager.raise_()
        self.model_manager.activateWindow()
        return self.model_manager

    def open_providers(self) -> ProvidersDialog | None:
        if self._providers is None:
            return None
        if self.providers_dialog is None:
            self.providers_dialog = ProvidersDialog(self._providers, self._window)
        if provider := self._shown_provider():
            self.providers_dialog.select(provider)
        self.providers_dialog.show()
        self.providers_dialog.raise_()
        self.providers_dialog.activateWindow()
        return self.providers_dialog

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Clicking the model name in the status line opens the manager."""
        if watched is self._model_label:
            if (
                event.type() == QEvent.Type.MouseButtonRelease
                and isinstance(event, QMouseEvent)
                and event.button() == Qt.MouseButton.LeftButton
            ):
                self.open_model_manager()
                return True
            if (
                event.type() == QEvent.Type.ToolTip
                and isinstance(event, QHelpEvent)
                and not self._model_label.toolTip()
            ):  # a load error's tooltip wins
                shortcut = self.manage_models_action.shortcut().toString()
                QToolTip.showText(event.globalPos(), f"Manage models ({shortcut})", self._model_label)
                return True
        return super().eventFilter(watched, event)
