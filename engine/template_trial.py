"""A model's chat template, compiled and tried before llama.cpp loads the file.

Owns `compile_template` (the load-time check) and `blocked_message`, the words for a template
that tried to leave the sandbox (at load or, for one that misbehaves only on some
conversations, when a prompt is rendered: engine.local). Must not: load native code; the
trial runs before llama.cpp sees the file.
"""

from __future__ import annotations

from pathlib import Path

from jinja2.exceptions import SecurityError

from engine.commands import ChatMessage
from engine.errors import ModelLoadError
from engine.template import ChatTemplate, too_costly_message
from engine.template_limits import TemplateTooCostly, render_budget

__all__ = ["blocked_message", "compile_template"]


def blocked_message(name: str, error: Exception) -> str:
    return (
        f"The chat template in {name} was blocked by Hearth's sandbox: it tried to do something a chat "
        f"template may not ({error}). The model file may be hostile; choose another model."
    )


def compile_template(
    path: str, source: str, *, bos: str, eos: str, trial: bool = False, limit_memory: bool = True
) -> ChatTemplate:
    """Compile the model's chat template; with `trial`, also render a one-message chat.

    The trial render runs before llama.cpp loads the file, so a template that tries to leave
    the sandbox, or goes past the limits on time, size and memory, at once is refused at
    load time. One that only misbehaves on some conversations is caught at render time
    (`generate`), within the same limits. Other trial failures are ignored: a template may
    legitimately reject a conversation shape.
    """
    name = Path(path).name
    try:
        template = ChatTemplate(source, bos_token=bos, eos_token=eos, limit_memory=limit_memory)
    except ModelLoadError as e:
        raise ModelLoadError("bad_template", f"The chat template in {name} is invalid: {e.__cause__ or e}") from e
    except TemplateTooCostly as e:
        raise ModelLoadError("bad_template", too_costly_message(path, e)) from None
    if trial:
        try:
            with render_budget():
                template.render([ChatMessage("user", "Hello")])
        except SecurityError as e:
            raise ModelLoadError("unsafe_template", blocked_message(name, e)) from e
        except TemplateTooCostly as e:
            raise ModelLoadError("bad_template", too_costly_message(path, e)) from None
        except Exception:  # noqa: BLE001, S110 - untrusted template code; judged per conversation, at render time
            pass
    return template
