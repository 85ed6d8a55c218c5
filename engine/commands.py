"""Typed commands sent to the engine actor. Plain frozen values: they cross a process boundary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from engine.codes import CancelReason

if TYPE_CHECKING:
    from engine.filters import FilterConfig

__all__ = [
    "Cancel",
    "ChatMessage",
    "Command",
    "Generate",
    "LoadModel",
    "RemoteSpec",
    "Sampling",
    "Shutdown",
    "Summary",
    "ToolCall",
    "ToolChoice",
    "ToolSpec",
    "UnloadModel",
]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: its name, what it does (for the model), and its parameters as a
    JSON schema, kept as JSON text so that a Generate stays hashable and picklable."""

    name: str
    description: str
    parameters: str = '{"type": "object", "properties": {}}'

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a tool needs a name")
        try:
            schema = json.loads(self.parameters)
        except ValueError as e:
            raise ValueError(f"the parameters of the tool {self.name!r} are not valid JSON: {e}") from e
        if not isinstance(schema, dict):
            raise ValueError(f"the parameters of the tool {self.name!r} must be a JSON schema object")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for one tool call. `arguments` is exactly the JSON text the model produced,
    which may not parse: the caller decides what to do with it. `id` pairs the call with its
    result (a "tool" message's tool_call_id)."""

    id: str
    name: str
    arguments: str


ToolChoice = Literal["auto", "none", "required"] | str
"""Whether the model may call tools (auto), must not (none), must call one (required), or must
call the one named."""


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation, as OpenAI's chat messages carry it: an assistant message
    may carry the tool calls it made, and a "tool" message is one call's result (its content),
    naming the call it answers."""

    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    tool_calls: tuple[ToolCall, ...] = ()  # an assistant message's calls
    tool_call_id: str = ""  # a "tool" message: the id of the call this is the result of


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    seed: int = 0xC0FFEE
    max_tokens: int = 512  # to a remote server, 0 sends no limit (its own default applies)
    # A cap on the tokens this prompt and its answer may use, below the loaded model's
    # context (a per-chat setting); 0: the model's whole context. A remote server has its own.
    context_limit: int = 0
    # When the conversation outgrows the context: "rolling" leaves out the oldest turns,
    # "middle" keeps the first exchange and the latest turns, "summarize" puts a summary of the
    # oldest turns in their place, "stop" refuses (engine.context_fit).
    overflow: str = "rolling"
    # Generate exactly max_tokens even past end-of-turn: only for benchmarks that must
    # compare equal lengths.
    ignore_eos: bool = False

    @classmethod
    def greedy(cls, max_tokens: int, *, ignore_eos: bool = False) -> Sampling:
        return cls(temperature=0.0, max_tokens=max_tokens, ignore_eos=ignore_eos)


@dataclass(frozen=True, slots=True)
class LoadModel:
    path: str
    n_ctx: int = 4096
    # None: chosen per generation from the machine's load (engine.threads.ThreadChooser);
    # a number: fixed, as the person set it.
    n_threads: int | None = None
    n_batch: int = 512
    n_gpu_layers: int | None = None  # None: as many as fit, when llama.cpp has a GPU backend (engine.fit)
    flash_attn: bool | None = False  # None: llama.cpp decides (on where the device runs it), as llama-bench does
    chat_template: str | None = None  # a name in engine.template_choice.KNOWN_TEMPLATES; None: the file's own


@dataclass(frozen=True, slots=True)
class UnloadModel:
    """Free the loaded model (weights, KV cache, compute buffers) in the engine process."""


@dataclass(frozen=True, slots=True)
class RemoteSpec:
    """A remote server to stream this reply from, instead of the local model.

    `wire` names a declared wire format (engine/wire_formats.toml). Timeouts: connecting;
    the first text after the request; the gap between two chunks.
    """

    name: str
    wire: str
    base_url: str
    model: str = ""
    # Header values are secrets too (an X-Api-Key), like the key and a URL's user and password:
    # never printed, never logged.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    api_key: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)  # (user, password) from the URL
    path: str | None = None  # the endpoint path, when it is not the format's usual one
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 120.0
    between_tokens_timeout_s: float = 60.0
    max_retries: int = 3
    session: str = ""  # the provider's own conversation id from an earlier turn (Dify), if any
    # A Unix socket that reaches base_url's server: another Hearth process's shared engine
    # (app.core.engine_share). None: over the network, as usual.
    uds: str | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """A running summary of a conversation's oldest turns (made by a background job): the first
    `covers` messages after the system prompt, which the "summarize" overflow policy may replace
    by `text` when the conversation outgrows the context."""

    text: str
    covers: int


@dataclass(frozen=True, slots=True)
class Generate:
    generation_id: int
    messages: tuple[ChatMessage, ...]
    sampling: Sampling = field(default_factory=Sampling)
    # Continue an unfinished answer: the prompt ends with this text instead of an empty
    # assistant turn, so the model carries on where it stopped (e.g. after a crash).
    continue_text: str = ""
    remote: RemoteSpec | None = None  # None: the local model
    # Stop strings, <think> splitting and redaction, applied to every provider's text.
    filters: FilterConfig | None = None
    # Whose KV cache this is (the conversation): the local engine keeps a chat's cache when
    # another chat's turn comes, and brings it back when the chat does (engine.kv_states).
    cache_key: int | None = None
    summary: Summary | None = None  # what the "summarize" policy may put in place of the oldest turns
    # Tools the model may call; its reply may then end in a ToolCalls event (stop_reason "tool_calls").
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"two tools share a name: {sorted(n for n in set(names) if names.count(n) > 1)}")
        if self.tool_choice == "required" and not self.tools:
            raise ValueError('tool_choice "required" needs at least one tool')
        if self.tool_choice not in ("auto", "none", "required") and self.tool_choice not in names:
            raise ValueError(f"tool_choice names {self.tool_choice!r}, which is not among the tools {names}")


@dataclass(frozen=True, slots=True)
class Measure:
    """How much of the context a prompt would take (the window's context meter). Answered at
    once, beside a running generation: tokenizing reads only the vocabulary."""

    request_id: int
    messages: tuple[ChatMessage, ...]
    sampling: Sampling = field(default_factory=Sampling)
    summary: Summary | None = None
    # The tools the Generate will offer, rendered into the prompt as it renders them (the meter counts them).
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"


@dataclass(frozen=True, slots=True)
class Cancel:
    generation_id: int
    reason: CancelReason = "user"


@dataclass(frozen=True, slots=True)
class Shutdown:
    pass


Command = LoadModel | UnloadModel | Generate | Measure | Cancel | Shutdown
