"""The grammar that makes a local model's reply a tool call (llama.cpp's GBNF), built from the tools'
JSON schemas, for a Generate whose tool_choice is "required" or a tool's name.

Owns: turning the tools into one grammar for the Hermes/Qwen format that engine.tool_text reads,
`<tool_call>\\n{"name": "<a tool>", "arguments": <its parameters>}\\n</tool_call>` (one call: the
bundled 135M model, allowed four, wrote four every time, mostly the same call again; the tool loop
asks again after each result), and refusing, with the tool's name, a schema that
llama-cpp-python's converter cannot read or that would make a grammar too big for llama.cpp's parser
(it recurses per nesting level: a `maxLength` of 20,000 crashes the process; 5,000 is refused).
Bounds are checked before anything is built, so a hostile schema costs milliseconds.

Must not: sample, hold a model, or decide when a reply is constrained beyond `tool_choice`
(engine.local does). llama_cpp is imported inside the functions: only the engine process loads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from engine.commands import ToolSpec
from engine.errors import EngineError

__all__ = ["ToolGrammarError", "tool_call_grammar"]

MAX_REPEAT = 1000  # the largest minItems/maxItems/minLength/maxLength or pattern {n,m} turned into a grammar
_MAX_PATTERN_PRODUCT = 1_000_000  # nested {n,m} in one pattern multiply
_MAX_DEPTH = 32  # schema nesting
_MAX_SCHEMA_CHARS = 64 * 1024
_MAX_GRAMMAR_CHARS = 512 * 1024
_MAX_GRAMMAR_NESTING = MAX_REPEAT + 64  # parentheses in one rule: llama.cpp's parser recurses per level
_COUNTS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_QUANTIFIER = re.compile(r"\{\s*(\d+)\s*(?:,\s*(\d*)\s*)?\}")
# llama-cpp-python 0.3's string character lets a raw line break or control character into a JSON string,
# which no JSON parser reads back; llama.cpp's own converter now leaves them out, as JSON does.
_LOOSE_CHAR = r'[^"\\] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
_JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
# GBNF's pieces: a string literal, a character class, a name, anything else (one character).
_GBNF_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[A-Za-z0-9-]+|.', re.DOTALL)


class ToolGrammarError(EngineError):
    """A tool's parameters cannot be enforced by a grammar; the message names the tool and why."""


def tool_call_grammar(
    tools: Sequence[ToolSpec], tool_choice: str, *, max_calls: int = 1, style: str = "hermes"
) -> str | None:
    """The GBNF text (root rule `root`) that a reply must match, or None when tool_choice leaves the
    reply free ("auto", "none"). `max_calls`: how many calls a reply may hold ("required"; a named
    tool is called once). `style`: the call's format, the template's (engine.template.ChatTemplate.
    tool_format): the Hermes block (also Hearth's own, "hearth"), Llama 3.x's bare object with
    "parameters", or Mistral's `[TOOL_CALLS][...]`, each with one call. Raises ToolGrammarError for a
    schema that cannot be made a grammar."""
    if tool_choice in ("auto", "none") or not tools:
        return None
    chosen = [t for t in tools if tool_choice == "required" or t.name == tool_choice]
    rules: dict[str, str] = {}
    calls: list[str] = []
    for i, tool in enumerate(chosen):
        prefix = f"t{i}-"
        own = _tool_rules(tool)
        for name, body in own.items():
            rules[prefix + name] = _renamed(body, prefix, frozenset(own))
        key = "parameters" if style == "llama3" else "arguments"
        head = _literal(f'{{"name": {json.dumps(tool.name, ensure_ascii=False)}, "{key}": ')
        rules[f"call-{i}"] = f'{head} {prefix}root "}}"'
        calls.append(f"call-{i}")
    opening, closing = {"llama3": ("", ""), "mistral": ('"[TOOL_CALLS][" ', ' "]"')}.get(
        style, ('"<tool_call>\\n" ', ' "\\n</tool_call>"')
    )
    rules["call"] = opening + "( " + " | ".join(calls) + " )" + closing
    more = max_calls - 1 if tool_choice == "required" and style not in ("llama3", "mistral") else 0
    rules["root"] = "call" + ' ( "\\n" call' * more + " )?" * more
    grammar = "\n".join(f"{name} ::= {body}" for name, body in rules.items()) + "\n"
    if len(grammar) > _MAX_GRAMMAR_CHARS:
        names = ", ".join(t.name for t in chosen)
        raise ToolGrammarError(
            "tools_unsupported",
            f"The tools' parameters ({names}) make a grammar of {len(grammar):,} characters, "
            f"past the {_MAX_GRAMMAR_CHARS:,} Hearth allows: simplify their schemas, or let the model choose (auto).",
        )
    return grammar


def _tool_rules(tool: ToolSpec) -> dict[str, str]:
    """The rules of one tool's arguments (root rule `root`), as llama-cpp-python's converter writes them."""
    if len(tool.parameters) > _MAX_SCHEMA_CHARS:
        raise _refused(tool, f"its schema has {len(tool.parameters):,} characters (at most {_MAX_SCHEMA_CHARS:,})")
    schema = json.loads(tool.parameters)  # ToolSpec checked it is a JSON object
    problem = _too_costly(schema, 0)
    if problem:
        raise _refused(tool, problem)
    from llama_cpp import llama_grammar

    converter: Any = getattr(llama_grammar, "SchemaConverter")(  # noqa: B009 - the class is untyped
        prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False
    )
    try:
        converter.visit(converter.resolve_refs(schema, "tool"), "")
    except Exception as e:  # the converter asserts, and raises anything, on what it cannot read
        raise _refused(tool, f"llama.cpp cannot turn it into a grammar ({e or type(e).__name__})") from e
    rules = dict(converter._rules)  # format_grammar's input: kept as rules, to merge the tools
    if rules.get("char") == _LOOSE_CHAR:
        rules["char"] = _JSON_CHAR
    for name, body in rules.items():
        if _nesting(body) > _MAX_GRAMMAR_NESTING:
            raise _refused(tool, f"its rule {name!r} nests deeper than llama.cpp's grammar parser can take")
    return rules


def _refused(tool: ToolSpec, why: str) -> ToolGrammarError:
    return ToolGrammarError(
        "tools_unsupported",
        f"The parameters of the tool {tool.name!r} cannot be enforced: {why}. Ask its server's author for a "
        'simpler schema, or let the model choose (tool_choice "auto").',
    )


def _too_costly(node: Any, depth: int) -> str:
    """Why this schema would make a grammar too big to build safely; "" if it would not."""
    if depth > _MAX_DEPTH:
        return f"it nests deeper than {_MAX_DEPTH} levels"
    if isinstance(node, list):
        return next((p for p in (_too_costly(v, depth + 1) for v in node) if p), "")
    if not isinstance(node, dict):
        return ""
    for key in _COUNTS:
        value = node.get(key)
        if isinstance(value, int | float) and value > MAX_REPEAT:
            return f"{key} is {value:,}; a grammar can count to {MAX_REPEAT:,}"
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        product = 1
        for low, high in _QUANTIFIER.findall(pattern):
            bound = max(int(low), int(high) if high else 0)
            if bound > MAX_REPEAT:
                return f"its pattern repeats something {bound:,} times; a grammar can count to {MAX_REPEAT:,}"
            product *= max(bound, 1)
        if product > _MAX_PATTERN_PRODUCT:
            return "its pattern's repetitions multiply past what a grammar can hold"
    return next((p for p in (_too_costly(v, depth + 1) for v in node.values()) if p), "")


def _literal(text: str) -> str:
    r"""`text` as a GBNF string literal (escapes \\ \" \n \r \t and \xHH; other UTF-8 as it is)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    escaped = escaped.replace("\t", "\\t")
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", escaped) + '"'


def _renamed(body: str, prefix: str, names: frozenset[str]) -> str:
    """A rule's body with every reference to one of `names` prefixed (text in quotes and brackets kept)."""
    return "".join(prefix + t if t in names else t for t in _GBNF_TOKEN.findall(body))


def _nesting(body: str) -> int:
    deepest = level = 0
    for token in _GBNF_TOKEN.findall(body):
        if token == "(":
            level += 1
            deepest = max(deepest, level)
        elif token == ")":
            level -= 1
    return deepest
