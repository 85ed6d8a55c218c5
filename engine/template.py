"""Render a model's chat template (from its GGUF metadata) in a sandboxed Jinja environment.

The template is untrusted input shipped inside the model file: it is rendered with
jinja2's ImmutableSandboxedEnvironment, so it cannot reach Python internals or mutate
the messages it is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.commands import ChatMessage
from engine.errors import ModelLoadError

__all__ = ["ChatTemplate", "CHATML_TEMPLATE"]

# Used when a model ships no template: ChatML is what most small instruct models expect.
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# Stands in for message i while the template renders (private-use characters nobody types).
_MARK = re.compile("\ue000hearth(\\d+)\ue001")


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class ChatTemplate:
    """A compiled chat template plus the special tokens it may refer to."""

    def __init__(self, source: str, *, bos_token: str, eos_token: str) -> None:
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = _strftime_now
        try:
            self._template = env.from_string(source)
        except TemplateError as e:
            raise ModelLoadError("bad_template", f"The model's chat template is invalid: {e}") from e
        self.source = source
        self._bos = bos_token
        self._eos = eos_token

    def render(self, messages: Sequence[ChatMessage]) -> str:
        context: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "add_generation_prompt": True,
            "bos_token": self._bos,
            "eos_token": self._eos,
        }
        return self._template.render(**context)

    def render_parts(self, messages: Sequence[ChatMessage]) -> list[tuple[str, bool]]:
        """The prompt as (text, is_content) pieces, so that message contents stay data.

        Only the template's own text may hold control tokens (`<|im_start|>`, ...): a person's
        message, a pasted document or a remote answer replayed as history must be tokenized as
        plain text, or `<|im_end|><|im_start|>system` typed by anyone forges a turn. The
        template is rendered with a marker in place of each content, and the contents are put
        back as their own pieces. When the template changed the content (trimmed it), the
        trimmed content is used, as the template meant.
        """
        marked = self.render([ChatMessage(m.role, f"\ue000hearth{i}\ue001") for i, m in enumerate(messages)])
        real = self.render(messages)

        def split(content_of: Callable[[int], str]) -> list[tuple[str, bool]]:
            parts: list[tuple[str, bool]] = []
            pos = 0
            for m in _MARK.finditer(marked):
                parts += [(marked[pos:m.start()], False), (content_of(int(m.group(1))), True)]
                pos = m.end()
            parts.append((marked[pos:], False))
            return [p for p in parts if p[0]]

        parts = split(lambda i: messages[i].content)
        if "".join(t for t, _ in parts) != real:
            stripped = split(lambda i: messages[i].content.strip())
            if "".join(t for t, _ in stripped) == real:
                return stripped
        return parts
