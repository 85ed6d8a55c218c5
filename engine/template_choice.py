"""Which chat template a model gets: the person's choice, the file's own, or one of the built-in
templates that llama.cpp would use for the model's architecture, and what a person should be told.

Owns the built-in templates (their Jinja text and names). Rendering is engine.template's; this module
imports no Jinja, so that the CLI can list the names (`--chat-template`) without loading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CHATML_TEMPLATE",
    "KNOWN_TEMPLATES",
    "TEMPLATE_NAMES",
    "TemplateChoice",
    "choose_template",
    "looks_like_base_model",
]

# Used when a model ships no template: ChatML is what most small instruct models expect.
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# Templates a person can choose for a model whose file has none (or the wrong one), and the
# ones llama.cpp uses for architectures that tell which they need. Jinja, rendered like a
# model's own template (sandboxed); named as llama.cpp names its built-in templates.
KNOWN_TEMPLATES: dict[str, str] = {
    "chatml": CHATML_TEMPLATE,
    "gemma": (
        "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' "
        "else 'user' }}\n{{ m['content'] | trim }}<end_of_turn>\n{% endfor %}"
        "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
    ),
    "llama3": (
        "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
        "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
        "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
    ),
    "phi3": (
        "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    ),
    "mistral": (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}{{ m['content'] }}"
        "{{ eos_token }}{% else %}[INST] {{ m['content'] }} [/INST]{% endif %}{% endfor %}"
    ),
}
TEMPLATE_NAMES = {"chatml": "ChatML", "gemma": "Gemma", "llama3": "Llama 3", "phi3": "Phi-3", "mistral": "Mistral"}
_BY_ARCHITECTURE = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
    "phi3": "phi3",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "qwen2moe": "chatml",
    "qwen3moe": "chatml",
}
# Words in an instruction-tuned model's name; a model with none of them is probably a base model.
_CHAT_WORDS = re.compile(r"instruct|chat|assistant|(^|[^a-z])(it|sft|dpo|rlhf)([^a-z]|$)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TemplateChoice:
    source: str  # the template's Jinja text
    name: str  # "model" (the file's own), or a KNOWN_TEMPLATES name
    note: str  # what a person should know about it; "" when the file's own template is used


def looks_like_base_model(*names: str) -> bool:
    """No 'instruct', 'chat', '-it', 'sft'... in any of the model's names: trained to continue text."""
    return not any(_CHAT_WORDS.search(n) for n in names if n)


def choose_template(
    file_template: str | None, *, architecture: str, chosen: str | None, file_name: str, model_name: str = ""
) -> TemplateChoice:
    """The chat template to use: the person's choice, else the file's, else llama.cpp's for its architecture."""
    if chosen:
        if chosen not in KNOWN_TEMPLATES:
            raise ValueError(f"unknown chat template {chosen!r}; known: {', '.join(KNOWN_TEMPLATES)}")
        return TemplateChoice(
            KNOWN_TEMPLATES[chosen], chosen, f"Chat template: {TEMPLATE_NAMES[chosen]}, chosen for {file_name}."
        )
    if file_template:
        return TemplateChoice(file_template, "model", "")
    name = _BY_ARCHITECTURE.get(architecture)
    if name is not None:
        note = (
            f"{file_name} has no chat template; Hearth uses {TEMPLATE_NAMES[name]}'s, the usual one for "
            f"{architecture} models."
        )
    else:
        name = "chatml"
        note = (
            f"{file_name} has no chat template, and its architecture ({architecture}) does not tell which one it "
            "needs: Hearth uses ChatML, a guess. If answers look wrong, choose one: "
            "`hearth models template MODEL NAME`."
        )
    if looks_like_base_model(model_name, file_name):
        note += (
            " It also looks like a base model (no 'instruct' or 'chat' in its name): it continues text rather "
            "than answering, so replies may ramble or repeat the question."
        )
    return TemplateChoice(KNOWN_TEMPLATES[name], name, note)
