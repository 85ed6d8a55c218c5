"""Keep llama-cpp-python from compiling a model file's chat templates.

`llama_cpp.Llama()` compiles every `tokenizer.chat_template*` in the file's metadata, for its
own `create_chat_completion`, in Jinja's plain sandbox with constant folding on: a template
holding `{{ 'A' * 10000000000 }}` anywhere, even in a branch no chat reaches, took the engine
to 24 GB while loading, outside every limit of engine.template_limits. Hearth renders
templates itself (engine.template) and never calls `create_chat_completion`, so the formatter
llama-cpp-python builds them with is replaced by one that compiles nothing.

Owns: that replacement. Must not: be called outside a process that loads models (it changes
llama-cpp-python for the whole process).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["disable_llama_cpp_templates"]


class _NoTemplate:
    """Stands in for llama_cpp.llama_chat_format.Jinja2ChatFormatter: takes the template, compiles nothing."""

    hearth_stand_in = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def to_chat_handler(self) -> Any:
        return _refuse


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("Hearth renders chat templates itself (engine.template); create_chat_completion is unused")


def disable_llama_cpp_templates(llama_cpp: ModuleType) -> None:
    """Before the first `llama_cpp.Llama()` of this process (idempotent)."""
    chat_format = importlib.import_module(f"{llama_cpp.__name__}.llama_chat_format")
    setattr(chat_format, "Jinja2ChatFormatter", _NoTemplate)  # noqa: B010 - a module typed as ModuleType
