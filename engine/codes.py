"""The closed sets of words that stream events carry, as types: the channel a delta is on, why a
generation stopped or failed. They are stored with each generation (the generation table's
stop_reason, cancel_reason and error_code), exported, and branched on by the app and the tests,
so mypy checks every place that makes one.

Owns the words only. Must not: hold behaviour, or import anything but typing. Rows read back from
a database or an imported file are plain strings (an older or newer Hearth may have written others).
"""

from __future__ import annotations

from typing import Literal

__all__ = ["CancelReason", "Channel", "FailureCode", "StopReason"]

Channel = Literal["answer", "reasoning"]
"""The text a delta belongs to: the answer, or the model's reasoning (its <think> part)."""

StopReason = Literal["eog", "stop", "length", "tool_calls"]
"""Why a completed generation ended: the model's end of turn (eog), a stop string (stop), the
token limit (length), or a request to call tools (tool_calls: a `ToolCalls` event came just
before). A remote provider's own finish reason that Hearth does not know (say "content_filter")
is passed on and stored as it came, so `Final.stop_reason` is `StopReason | str`."""

CancelReason = Literal["user", "timeout"]
"""Why a generation was cancelled: the person stopped it, or a remote provider went quiet."""

FailureCode = Literal[
    # the engine and its process
    "engine_crashed",  # the engine process died during the generation
    "engine_error",  # a provider raised something unexpected (a bug, an odd client error)
    "no_model",  # no model was loaded when the generation arrived
    "bad_model",  # the model produced NaN or infinite numbers
    # the prompt
    "context_full",  # the conversation cannot fit the context, whatever is left out
    "bad_template",  # the chat template went past a limit on time, size or memory
    "template_error",  # the chat template failed or refused to build the prompt
    # a remote provider
    "unreachable",  # no connection could be made (after the retries)
    "incomplete",  # the reply broke off before the provider said it was finished
    "bad_credential",  # the API key or a header holds what HTTP cannot send
    "bad_response",  # the provider sent something that cannot be read
    "provider_error",  # the provider reported an error in its stream
    "rate_limited",  # 429, still after the retries
    "server_error",  # 5xx, still after the retries
    "tools_unsupported",  # the generation offers tools and the provider's wire format cannot carry them
    "tool_call_too_large",  # the provider's tool calls went past the cap on their size or number
    "unauthorized",  # 401 or 403
    "not_found",  # 404
    "bad_request",  # 400
    "http_error",  # any other status
    # the app
    "stream_error",  # the window's stream of events broke (app.ui.viewmodels.conversation)
]
"""A failed generation's stable code (`Failed.code`), stored as the generation's error_code."""
