"""Fitting a conversation that outgrew the context: which messages the prompt leaves out.

Owns the overflow policies, as pure functions over the messages and a token counter:
- "rolling": leave out the oldest turns, keep the system prompt;
- "middle": keep the first exchange and the latest turns, leave out what lies between;
- "summarize": put the conversation's running summary (a background job made it) in place of
  the turns it covers, inside the system prompt, then roll as needed; with no summary yet, roll;
- "stop": leave nothing out (the caller refuses the turn, naming the setting that helps).
The kept part always starts with a user message after the system prompt (strict chat
templates refuse an assistant turn first), and the last message is always kept: it is what
the model answers. The fewest messages are left out (a binary search over how many, since
leaving out more never makes a prompt longer). Nothing stored is touched: the caller sends
the kept messages and reports the left-out indices, so the window can mark them. `refused`
says which turns cannot be answered at all, and `refusal_message` says why in words.

`fit_prompt` is the one place these rules meet: the context a turn must fit, the room kept for
the answer, the policy's fit and the refusal. The generator sends what it decides and the context
meter reports it (engine.local: `generate` and `measure`), so the two cannot disagree.
Must not: tokenize or render itself (the counter does), or import anything outside engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.commands import ChatMessage, Sampling, Summary

__all__ = [
    "OVERFLOW_POLICIES",
    "SUMMARY_HEADER",
    "Fit",
    "PromptFit",
    "context_size",
    "fit_messages",
    "fit_prompt",
    "prompt_budget",
    "refusal_message",
    "refused",
]

# (messages) -> (the prompt's tokens, exact): engine.prompt_size.PromptSizes.count. Not exact: a
# lower bound, counted by the bytes of a prompt too long to fit.
Count = Callable[[tuple[ChatMessage, ...]], tuple[int, bool]]

OVERFLOW_POLICIES = ("rolling", "middle", "summarize", "stop")
SUMMARY_HEADER = "Summary of the earlier conversation:"


@dataclass(frozen=True)
class Fit:
    messages: tuple[ChatMessage, ...]  # what the prompt holds
    omitted: tuple[int, ...]  # indices into the original messages left out
    tokens: int  # the kept prompt's length


def refused(prompt_tokens: int, n_ctx: int, policy: str, fits: bool) -> bool:
    """Whether a turn is refused (engine.local's "context_full"): its whole prompt takes
    `prompt_tokens`, which leaves no room to answer in `n_ctx` (the generator wants two tokens
    free), and nothing can be left out: the policy is "stop", or `fits` is False (fit_messages
    found no fit: the last message with the system prompt is too long by itself). A prompt past
    the budget that still leaves that room is sent whole, the answer getting what room there is."""
    return prompt_tokens >= n_ctx - 1 and (policy == "stop" or not fits)


def context_size(model_ctx: int, sampling: Sampling) -> int:
    """The context a turn's prompt and answer must fit: the chat's limit, when below the model's."""
    limit = sampling.context_limit
    return limit if 0 < limit < model_ctx else model_ctx


def prompt_budget(n_ctx: int, max_tokens: int) -> int:
    """The most tokens a prompt may take before the policy leaves something out: room is kept
    for the answer, Max tokens up to a quarter of the context (at least one token)."""
    return n_ctx - max(1, min(max_tokens, n_ctx // 4))


@dataclass(frozen=True)
class PromptFit:
    """What a turn's prompt holds, decided once for the generator and the context meter."""

    n_ctx: int  # the context it must fit (context_size)
    policy: str
    whole: int  # the whole chat's prompt tokens: a lower bound when not `exact`
    exact: bool
    messages: tuple[ChatMessage, ...]  # what the prompt holds: the whole chat, or what the policy keeps
    omitted: tuple[int, ...]  # indices into the chat's messages that the policy leaves out
    fits: bool  # False: the policy had to leave out and could not (the last message is too long)
    refused: bool  # the turn cannot be answered at all (`refused`); nothing is sent


def fit_prompt(
    messages: tuple[ChatMessage, ...], count: Count, model_ctx: int, sampling: Sampling, summary: Summary | None = None
) -> PromptFit:
    """The prompt a turn sends: the whole chat when it takes at most the budget; else what the
    overflow policy keeps; else the whole chat in what room is left, or a refusal. What is too
    long by its bytes alone is counted by them, never rendered or tokenized (`count`)."""
    n_ctx = context_size(model_ctx, sampling)
    budget = prompt_budget(n_ctx, sampling.max_tokens)
    policy = sampling.overflow
    whole, exact = count(messages)
    fit: Fit | None = None
    fits = True
    if whole > budget and policy != "stop":
        fit = fit_messages(messages, lambda kept: count(kept)[0], budget, policy, summary)
        fits = fit is not None
    no = refused(whole, n_ctx, policy, fits)
    if fit is not None:
        return PromptFit(n_ctx, policy, whole, exact, fit.messages, fit.omitted, fits, no)
    return PromptFit(n_ctx, policy, whole, exact, messages, (), fits, no)


def refusal_message(fit: PromptFit, messages: tuple[ChatMessage, ...], count: Count, model_ctx: int) -> str:
    """Why the refused turn cannot be answered, naming what helps. Under "stop", the settings that
    would let it go on; otherwise, the last message (with the system prompt) is too long itself,
    and is counted for the words."""
    where = (
        f"this chat's context limit of {fit.n_ctx:,} tokens (the model has {model_ctx:,})"
        if fit.n_ctx < model_ctx
        else f"the model's context of {model_ctx:,} tokens"
    )
    if fit.policy == "stop":
        return (
            f"The conversation ({_tokens(fit.whole, fit.exact)}) no longer fits {where}. In the chat's "
            'settings, set "When the chat outgrows the context" to leave out the oldest turns, raise the '
            "context length, or start a new chat."
        )
    least = (*(m for m in messages if m.role == "system"), *messages[-1:])
    return (
        f"Your message is too long for {where}: with the system prompt it takes {_tokens(*count(least))} "
        "and leaves no room for an answer. Shorten it, raise the context length in the chat's "
        "settings, or load the model with a longer context."
    )


def _tokens(n: int, exact: bool) -> str:
    return f"{n:,} tokens" if exact else f"at least {n:,} tokens"  # counted by its bytes (engine.prompt_size)


def fit_messages(
    messages: Sequence[ChatMessage],
    count: Callable[[tuple[ChatMessage, ...]], int],
    budget: int,
    policy: str,
    summary: Summary | None = None,
) -> Fit | None:
    """The messages to send so that the prompt takes at most `budget` tokens, or None when
    even the least the policy keeps (the system prompt, the first exchange for "middle", the
    last message) does not fit. `count` gives a message list's prompt length in tokens."""
    everything = tuple(messages)
    whole = count(everything)
    if whole <= budget or policy == "stop":
        return Fit(everything, (), whole) if whole <= budget else None
    if policy == "summarize":
        return _summarized(everything, count, budget, summary)
    lead = next((i for i, m in enumerate(everything) if m.role != "system"), len(everything))  # the system prompt
    rest = list(range(lead, len(everything)))
    keep_first = _first_exchange(everything, rest) if policy == "middle" else []
    # The candidates to leave out, oldest first: everything but the system prompt, the kept
    # first exchange and the last message.
    droppable = [i for i in rest if i not in keep_first and i != len(everything) - 1]
    best: Fit | None = None
    lo, hi = 1, len(droppable)
    while lo <= hi:
        n = (lo + hi) // 2
        fit = _without(everything, droppable, n, count)
        if fit.tokens <= budget:
            best, hi = fit, n - 1
        else:
            lo = n + 1
    if best is None and policy == "middle":  # even the first exchange is too much: roll instead
        return fit_messages(messages, count, budget, "rolling")
    return best


def _summarized(
    messages: tuple[ChatMessage, ...],
    count: Callable[[tuple[ChatMessage, ...]], int],
    budget: int,
    summary: Summary | None,
) -> Fit | None:
    """The summary in place of the turns it covers (never the last message; and the kept part
    starts with a user message), then rolling on what is left if it is still too long."""
    rest = [i for i, m in enumerate(messages) if m.role != "system"]
    n = min(summary.covers, len(rest) - 1) if summary is not None and summary.text.strip() else 0
    while 0 < n < len(rest) - 1 and messages[rest[n]].role != "user":
        n += 1
    if n <= 0 or summary is None or messages[rest[n]].role != "user":
        return fit_messages(messages, count, budget, "rolling")
    covered = set(rest[:n])
    note = f"{SUMMARY_HEADER}\n{summary.text.strip()}"
    origin = [i for i in range(len(messages)) if i not in covered]  # index in `messages` of each kept one
    shortened = [messages[i] for i in origin]
    if shortened[0].role == "system":
        shortened[0] = ChatMessage("system", f"{shortened[0].content}\n\n{note}")
    else:
        shortened.insert(0, ChatMessage("system", note))
        origin.insert(0, -1)
    fit = fit_messages(shortened, count, budget, "rolling")
    if fit is None:
        return None
    return Fit(fit.messages, tuple(sorted(covered | {origin[i] for i in fit.omitted})), fit.tokens)


def _first_exchange(messages: tuple[ChatMessage, ...], rest: list[int]) -> list[int]:
    """The first user message and the answer after it."""
    first = [i for i in rest[:2] if i < len(messages) - 1]
    return first if first and messages[first[0]].role == "user" else []


def _without(
    messages: tuple[ChatMessage, ...], droppable: list[int], n: int, count: Callable[[tuple[ChatMessage, ...]], int]
) -> Fit:
    """Leave out the first `n` droppable messages, and more until a user message follows the
    gap (an answer without its question would start the kept turns)."""
    left_out = set(droppable[:n])
    k = n
    while k < len(droppable) and messages[droppable[k]].role != "user" and droppable[k] == droppable[k - 1] + 1:
        left_out.add(droppable[k])
        k += 1
    kept = tuple(m for i, m in enumerate(messages) if i not in left_out)
    return Fit(kept, tuple(sorted(left_out)), count(kept))
