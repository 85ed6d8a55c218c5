"""Stream and engine events: small frozen values sent from the engine to its clients.

Every provider (local llama.cpp, remote HTTP) yields exactly these. They carry ids, numbers and
the words of engine.codes only; rows and persistence are the store's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.codes import CancelReason, Channel, FailureCode, StopReason
from engine.commands import ToolCall

__all__ = [
    "Cancelled",
    "Delta",
    "EngineEvent",
    "Failed",
    "Final",
    "GenerationStats",
    "Measured",
    "ModelFailed",
    "ModelInfo",
    "ModelLoading",
    "ModelReady",
    "ModelUnloaded",
    "ProviderSession",
    "Queued",
    "Reading",
    "Started",
    "StreamEvent",
    "ToolCalls",
]


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """Numbers measured by the engine for one generation (engine clock, milliseconds)."""

    prompt_tokens: int
    cached_tokens: int  # prompt tokens reused from the KV cache of the previous turn
    completion_tokens: int
    prefill_ms: float
    ttft_ms: float  # engine-side: command received -> first text delta sent
    decode_tokens_per_s: float
    total_ms: float
    # CPU time of the decoding thread per token after the first: unlike tokens/s, it does
    # not change when a noisy neighbour steals the core, so comparisons stay meaningful.
    decode_cpu_ms_per_token: float = 0.0
    threads: int = 0  # llama.cpp threads at the end (engine.threads chooses them per generation)
    # The engine's own work per token after the first, outside llama.cpp's decode: sampling, the
    # NaN check, detokenizing, sending. What Hearth adds to llama.cpp's speed, measured
    # directly, so that a busy machine's noise in tokens/s does not hide it (issue 30).
    host_ms_per_token: float = 0.0


@dataclass(frozen=True, slots=True)
class Started:
    """The engine accepted the generation and finished reading the prompt."""

    generation_id: int
    prompt_tokens: int
    cached_tokens: int
    # Indices into Generate.messages that the prompt left out: the conversation outgrew the
    # context and its overflow policy chose them (engine.context_fit).
    omitted: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Measured:
    """The answer to Measure: the prompt's tokens, the context it must fit (the chat's limit or
    the model's), how many of them the system prompt takes, and how many messages its
    overflow policy would leave out (-1: it cannot fit at all). `error`: why it was not measured.
    A prompt whose bytes alone put it past the context is not tokenized: its count is then a lower
    bound, still past `n_ctx` (engine.prompt_size)."""

    request_id: int
    prompt_tokens: int = 0
    n_ctx: int = 0
    system_tokens: int = 0
    omitted: int = 0
    error: str = ""
    left_out: tuple[int, ...] = ()  # the indices into Measure.messages it would leave out
    summary_tokens: int = 0  # what the running summary sent in their place takes ("summarize")


@dataclass(frozen=True, slots=True)
class Queued:
    """A local generation waits its turn: `ahead` answers (from any front-end sharing this engine:
    the window, `hearth ask`, `hearth serve`) come before it. Sent when it arrives behind others,
    when that count drops, and with 0 when its turn comes (its prompt is read next)."""

    generation_id: int
    ahead: int


@dataclass(frozen=True, slots=True)
class Reading:
    """Prompt processing is under way: `done` of `total` prompt tokens read so far (sent after
    each chunk of a prompt longer than one chunk, so a long paste shows its progress)."""

    generation_id: int
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class Delta:
    """New text. `tokens` is how many tokens produced it (0 when text was held back).

    `channel` is "answer" or "reasoning" (a model's <think> part). `replace`: this text
    replaces the channel's text so far (a provider that rewrites its answer, e.g. Dify's
    message_replace after moderation).
    """

    generation_id: int
    text: str
    tokens: int
    channel: Channel = "answer"
    replace: bool = False


@dataclass(frozen=True, slots=True)
class ToolCalls:
    """The model asks to call tools: sent once, just before the generation's Final, whose
    stop_reason is then "tool_calls". With stop_reason "length" the reply was cut off inside a
    call: its arguments are incomplete, and it must not be run."""

    generation_id: int
    calls: tuple[ToolCall, ...]


@dataclass(frozen=True, slots=True)
class Final:
    """The generation completed normally (end of turn, a stop string, or the token limit)."""

    generation_id: int
    stop_reason: StopReason | str  # a remote provider's own finish reason passes through (engine.codes)
    stats: GenerationStats


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The generation stopped on request; text already sent stays valid."""

    generation_id: int
    reason: CancelReason
    stats: GenerationStats


@dataclass(frozen=True, slots=True)
class Failed:
    """The generation could not finish. `code` is stable, `message` is for a person."""

    generation_id: int
    code: FailureCode
    message: str


@dataclass(frozen=True, slots=True)
class ProviderSession:
    """A remote provider named its own id for this conversation (Dify's conversation_id).

    The app keeps it with the conversation and sends it with the next turn, so a provider
    that holds the history on its side (Dify) sees one conversation, not a new one per turn.
    """

    generation_id: int
    provider: str
    value: str


StreamEvent = Queued | Started | Reading | Delta | ToolCalls | Final | Cancelled | Failed | ProviderSession


@dataclass(frozen=True, slots=True)
class ModelInfo:
    path: str
    name: str
    architecture: str
    n_ctx: int
    n_ctx_train: int
    n_params: int
    size_bytes: int
    n_threads: int  # decode
    n_threads_batch: int  # prompt processing
    load_ms: float
    n_gpu_layers: int = 0  # layers actually offloaded
    gpu_offload: bool = False  # this llama.cpp build has a GPU backend
    flash_attn: bool | None = None  # as asked: None is llama.cpp's automatic choice
    cpu_backend: str = ""  # the CPU code llama.cpp chose for this CPU, e.g. "libggml-cpu-icelake.so"
    chat_template: str = "model"  # "model": the file's own; else a name in engine.template_choice.KNOWN_TEMPLATES
    template_note: str = ""  # no template in the file, a likely base model...: what a person should know


@dataclass(frozen=True, slots=True)
class ModelLoading:
    path: str


@dataclass(frozen=True, slots=True)
class ModelReady:
    info: ModelInfo


@dataclass(frozen=True, slots=True)
class ModelFailed:
    """The model could not be loaded. `code` is stable; `message` names the file and the problem."""

    path: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class ModelUnloaded:
    """The model was freed; nothing is loaded until the next LoadModel."""

    path: str


EngineEvent = ModelLoading | ModelReady | ModelFailed | ModelUnloaded
