"""The route picker above the transcript: which model answers this conversation.

"Answers from [This computer — SmolLM2-135M-Instruct ▾] [model override] [Providers…]".
The list holds this computer's model and each configured provider with its model; for a
remote provider, an optional field names another model on that server. Below them, the model
policies (app.core.policies) the providers make possible: "Local first, then P" and "Deep: P"
for each provider, and "Fastest of this computer and the providers". Under "Deep: P" the same
field names the larger model on P that answers (P's own model when empty). A conversation
whose provider was removed keeps showing it, marked "not configured", so the person sees
why the next answer will not go out.
Owns only the presentation of what it is given; reports the person's choice through
`route_chosen`. Must not: save the choice or read providers (the view-models do).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QSizePolicy, QToolButton, QWidget

from app.core.policies import Policy
from app.core.routes import LOCAL, RouteChoice
from app.ui.theme import set_style

__all__ = ["RouteOption", "RoutePicker"]


@dataclass(frozen=True, slots=True)
class RouteOption:
    """A configured provider as the picker lists it."""

    name: str
    model: str  # the provider's own model ("" when the server picks)
    tooltip: str = ""


class RoutePicker(QWidget):
    route_chosen = Signal(object, str)  # provider name (None: this computer), model override ("": none)
    policy_chosen = Signal(object)  # an app.core.policies.Policy
    manage_requested = Signal()  # the person wants to add or edit providers

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("routePicker")
        self._local = ""
        self._options: list[RouteOption] = []
        self._provider: str | None = None
        self._model = ""
        self._policy: Policy | None = None
        caption = QLabel("Answers from", self)
        set_style(caption, "color: $muted;")
        self.combo = QComboBox(self)
        self.combo.setObjectName("route")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setMinimumContentsLength(24)
        self.combo.setToolTip("Where this conversation's answers come from. Each conversation keeps its own.")
        self.model_edit = QLineEdit(self)
        self.model_edit.setObjectName("routeModel")
        self.model_edit.setClearButtonEnabled(True)
        self.model_edit.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.model_edit.setMinimumWidth(180)
        self.manage_button = QToolButton(self)
        self.manage_button.setText("Providers…")
        self.manage_button.setAutoRaise(True)
        self.manage_button.setToolTip("Add or change remote providers")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.setSpacing(6)
        layout.addWidget(caption)
        layout.addWidget(self.combo)
        layout.addWidget(self.model_edit)
        layout.addWidget(self.manage_button)
        layout.addStretch(1)
        self.combo.activated.connect(self._on_activated)  # the person's choices only
        self.model_edit.editingFinished.connect(self._on_model_edited)
        self.manage_button.clicked.connect(self.manage_requested)
        self._rebuild()

    # -- what it is given ------------------------------------------------------------------
    def set_local_name(self, name: str) -> None:
        if name != self._local:
            self._local = name
            self._rebuild()

    def set_options(self, options: list[RouteOption]) -> None:
        self._options = list(options)
        self._rebuild()

    def set_route(self, provider: str | None, model: str | None, policy: Policy | None = None) -> None:
        """Show a conversation's route, or its policy (does not emit `route_chosen`)."""
        self._provider, self._model = (None, "") if policy is not None else (provider or None, model or "")
        self._policy = policy
        self._rebuild()

    @property
    def provider(self) -> str | None:
        return self._provider

    # -- the person's choices --------------------------------------------------------------
    def choose(self, provider: str | None, model: str = "") -> None:
        """As if the person picked `provider` (and typed `model`)."""
        self._provider, self._model = provider, model
        self._rebuild()
        self.route_chosen.emit(provider, model)

    def choose_policy(self, policy: Policy) -> None:
        """As if the person picked that policy."""
        self._provider, self._model, self._policy = None, "", policy
        self._rebuild()
        self.policy_chosen.emit(policy)

    def _on_activated(self, index: int) -> None:
        data = self.combo.itemData(index)
        if isinstance(data, Policy):
            if data != self._policy:
                self.choose_policy(data)
        elif data != self._provider or self._policy is not None:
            self._policy = None
            self.choose(data, "")  # another server: its own default model

    def _on_model_edited(self) -> None:
        model = self.model_edit.text().strip()
        deep = self._deep_route()
        if deep is not None:
            if model != (deep.model or ""):
                self.choose_policy(Policy("deep", (RouteChoice.of(deep.provider, model),), self._policy_limit()))
        elif self._provider is not None and model != self._model:
            self.choose(self._provider, model)

    def _deep_route(self) -> RouteChoice | None:
        """The route of the chat's deep policy (None under any other choice)."""
        if self._policy is None or self._policy.kind != "deep" or self._policy.routes[0].is_local:
            return None
        return self._policy.routes[0]

    def _policy_limit(self) -> float:
        assert self._policy is not None, "asked under a policy only"
        return self._policy.queue_limit_s

    # -- drawing ---------------------------------------------------------------------------
    def _rebuild(self) -> None:
        self.combo.blockSignals(True)
        try:
            self.combo.clear()
            self.combo.addItem(f"This computer — {self._local or 'local model'}", None)
            self.combo.setItemData(
                0, "The model loaded on this computer: nothing leaves it", Qt.ItemDataRole.ToolTipRole
            )
            known = False
            for o in self._options:
                self.combo.addItem(f"{o.name} — {o.model}" if o.model else o.name, o.name)
                self.combo.setItemData(self.combo.count() - 1, o.tooltip, Qt.ItemDataRole.ToolTipRole)
                known = known or (self._provider is not None and o.name.lower() == self._provider.lower())
            if self._provider is not None and not known:
                self.combo.addItem(f"{self._provider} — not configured", self._provider)
            policies = _policies(self._options)
            if self._policy is not None and self._policy not in policies:
                same = [i for i, p in enumerate(policies) if _same_deep(p, self._policy)]
                if same:  # deep with a larger model named: in place of that provider's plain "Deep: P"
                    policies[same[0]] = self._policy
                else:
                    policies.append(self._policy)  # a provider it names was removed: still shown
            for policy in policies:
                self.combo.addItem(policy_text(policy), policy)
                self.combo.setItemData(self.combo.count() - 1, _POLICY_TIPS[policy.kind], Qt.ItemDataRole.ToolTipRole)
            if self._policy is not None:
                index = next(i for i in range(self.combo.count()) if self.combo.itemData(i) == self._policy)
            else:
                index = self.combo.findData(self._provider) if self._provider is not None else 0
            if index < 0:  # a name that differs only in case from the configured one
                index = next(
                    i
                    for i in range(1, self.combo.count())
                    if str(self.combo.itemData(i)).lower() == str(self._provider).lower()
                )
            self.combo.setCurrentIndex(index)
        finally:
            self.combo.blockSignals(False)
        deep = self._deep_route()
        remote = (self._provider is not None and self._policy is None) or deep is not None
        self.model_edit.setVisible(remote)
        if remote:
            provider = deep.provider if deep is not None else self._provider
            model = (deep.model or "") if deep is not None else self._model
            default = next((o.model for o in self._options if o.name.lower() == str(provider).lower()), "")
            own = default or "the server's default"
            if deep is not None:
                self.model_edit.setPlaceholderText("larger model (optional)")
                self.model_edit.setToolTip(
                    f"The larger model on {provider} that answers under Deep (empty: its own, {own})"
                )
            else:
                self.model_edit.setPlaceholderText("other model (optional)")
                self.model_edit.setToolTip(
                    f"Ask this provider for another model than its own ({own}), for this conversation"
                )
            if self.model_edit.text() != model:
                self.model_edit.setText(model)


_POLICY_TIPS = {
    "local-first": "This computer's model; when it cannot answer (no model, the chat outgrew its context, or the "
    "wait for it is long), this provider answers instead, and the answer says so",
    "fast": "Whichever answered fastest lately (time to first token and tokens/s), this computer or a provider",
    "deep": "A larger model on this provider, for hard questions: name it in the field beside (empty: the "
    "provider's own); each answer says it came from there",
}


def policy_text(policy: Policy) -> str:
    """A policy as the picker and the status line name it."""
    names = [r.provider or "this computer" for r in policy.routes]
    if policy.kind == "local-first":
        return f"Local first, then {names[0]}"
    if policy.kind == "fast":
        return "Fastest of " + ", ".join(names)
    model = policy.routes[0].model
    return f"Deep: {names[0]}" + (f" — {model}" if model else "")


def _policies(options: list[RouteOption]) -> list[Policy]:
    """The policies the configured providers make possible."""
    if not options:
        return []
    remote = [RouteChoice.of(o.name) for o in options]
    return [
        *(Policy("local-first", (r,)) for r in remote),
        *(Policy("deep", (r,)) for r in remote),
        Policy("fast", (LOCAL, *remote)),
    ]


def _same_deep(listed: Policy, chosen: Policy) -> bool:
    """`chosen` is deep on the provider of the listed plain "Deep: P"."""
    a, b = listed.routes[0].provider, chosen.routes[0].provider
    return listed.kind == chosen.kind == "deep" and a is not None and b is not None and a.lower() == b.lower()
