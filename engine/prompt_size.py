"""How many tokens a prompt takes, found cheaply: by its bytes first, tokenizing only what may fit.

A token stands for at most `longest` bytes of text (the vocabulary's longest piece), so a text of
N bytes takes at least ceil(N / longest) tokens. When that bound alone is past the context, the
prompt cannot fit, whatever its exact count: a conversation holding a 10 MB message is known not
to fit an 8k context from the message's length, and the fit leaves the message out without
rendering or tokenizing it (tokenizing it took 11 s and 750 MB on every turn; at 100 MB, minutes
and 4.5 GB). What may fit is tokenized once per fit: each text's tokens are kept, so the fit's
search over how many messages to leave out tokenizes every message at most once.

Owns `longest_piece`, the byte bound and `PromptSizes`, the one token count of a prompt that the
generator and the context meter share (engine.context_fit.fit_prompt). Must not: render templates
(the caller's `render`, LocalModel.tokenize_prompt, does), or keep anything between fits (a
turn's texts change).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from typing import Any

from engine.commands import ChatMessage

__all__ = ["PromptSizes", "Render", "Tokenize", "least_tokens", "longest_piece", "utf8_length", "vocab_longest_piece"]

# (text, add_bos, parse_special) -> tokens: llama.cpp's tokenizer, as LocalModel calls it.
Tokenize = Callable[[str, bool, bool], list[int]]
# (messages, tokenize) -> the prompt's tokens: the chat template rendered, each part tokenized.
Render = Callable[[tuple[ChatMessage, ...], Tokenize], list[int]]


def longest_piece(piece_length: Callable[[int], int], n_vocab: int) -> int:
    """The most bytes one token of the vocabulary stands for (at least 1)."""
    return max(1, max((piece_length(t) for t in range(n_vocab)), default=1))


def vocab_longest_piece(lib: Any, vocab: Any, n_vocab: int) -> int:
    """`longest_piece` of a loaded llama.cpp vocabulary (`lib`: the llama_cpp module), about 0.1 s
    for 50,000 tokens. Control tokens count for nothing (contents never hold them), and an unknown
    character is one token of up to 4 bytes. Tokenizers that normalize text (WPM, UGM: spaces
    collapsed, accents dropped) can cover any number of bytes with one token: no bound for them."""
    if int(lib.llama_vocab_type(vocab)) not in (lib.LLAMA_VOCAB_TYPE_SPM, lib.LLAMA_VOCAB_TYPE_BPE):
        return 1 << 40
    buf = ctypes.create_string_buffer(1024)

    def length(token: int) -> int:
        return abs(int(lib.llama_token_to_piece(vocab, token, buf, len(buf), 0, False)))  # -n: needs n

    return max(4, longest_piece(length, n_vocab))


def utf8_length(text: str) -> int:
    # An ASCII string is as long in bytes as in characters: a huge one is not copied to count it.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def least_tokens(text: str, longest: int) -> int:
    """The fewest tokens `text` can take with a vocabulary whose longest piece has `longest` bytes."""
    return -(-utf8_length(text) // longest)


class PromptSizes:
    """Token counts for one fit: a prompt whose bound is past `limit` is counted by the bound
    (more than `limit`: it does not fit, and the number says at least how long it is); the
    others are rendered and tokenized, each text once.

    `longest` is asked for only when the texts are long enough for the bound to matter (more
    bytes than `limit`): finding it reads the whole vocabulary, which a short chat never needs.
    """

    def __init__(
        self, tokenize: Tokenize, longest: Callable[[], int], limit: int, extra: str = "", *, render: Render
    ) -> None:
        self._tokenize = tokenize
        self._longest = longest
        self._limit = limit
        self._extra = extra  # text the prompt always holds besides the messages (an answer being continued)
        self._render = render
        self._least: dict[str, int] = {}
        self._tokens: dict[tuple[str, bool, bool], list[int]] = {}
        # The last prompt tokenized: the whole chat is counted, then (when it fits) sent.
        self._last: tuple[tuple[ChatMessage, ...], list[int]] | None = None

    def tokenize(self, text: str, add_bos: bool, special: bool) -> list[int]:
        """The tokenizer, remembering what it tokenized (the caller must not change the list)."""
        key = (text, add_bos, special)
        if (found := self._tokens.get(key)) is None:
            found = self._tokens[key] = self._tokenize(text, add_bos, special)
        return found

    def least(self, messages: Sequence[ChatMessage]) -> int:
        """A lower bound on the prompt's tokens, from the bytes of its texts (0 while they are
        too short for the bound to say anything the tokenizer would not say quickly)."""
        texts = [m.content for m in messages] + [self._extra]
        if sum(len(t) for t in texts) * 4 <= self._limit:  # 4 bytes a character at most: no bound past limit
            return 0
        longest = self._longest()
        total = 0
        for text in texts:
            if (n := self._least.get(text)) is None:
                n = self._least[text] = least_tokens(text, longest)
            total += n
        return total

    def tokens(self, messages: tuple[ChatMessage, ...]) -> list[int]:
        """The prompt of `messages`, rendered and tokenized (the caller must not change the list)."""
        if self._last is None or self._last[0] != messages:
            self._last = (messages, self._render(messages, self.tokenize))
        return self._last[1]

    def count(self, messages: tuple[ChatMessage, ...]) -> tuple[int, bool]:
        """(the prompt's tokens, exact): the bound when it is past `limit` (not exact), else the
        length of the prompt rendered and tokenized."""
        least = self.least(messages)
        if least > self._limit:
            return least, False
        return len(self.tokens(messages)), True
