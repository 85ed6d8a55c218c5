"""`hearth ask`'s per-chat settings flags (--system, --temperature, --top-p, --max-tokens,
--repeat-penalty, --context, --preset) and `hearth presets`.

Owns the flags and how they combine with what a conversation already has: its saved settings
(or, for a new one, the default preset), then `--preset`, then each flag given. What was
given is saved to the conversation by `hearth ask` (app/cli/ask.py) once its turn starts.
No Qt; the presets file is app.core.presets.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app.cli.support import fail, text_arg
from app.core.chat_settings import OVERFLOW_CHOICES, ChatSettings, context_note
from app.core.errors import InputError
from app.core.presets import Presets, PresetsFile

__all__ = ["add_chat_options", "add_presets_parser", "chat_settings_for", "flags_problem", "given", "run_presets"]

# flag's dest -> ChatSettings field
_FIELDS = {
    "system": "system_prompt",
    "temperature": "temperature",
    "top_p": "top_p",
    "max_tokens": "max_tokens",
    "repeat_penalty": "repeat_penalty",
    "context": "context_length",
    "overflow": "overflow",
}


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def _temperature(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 5:
        raise argparse.ArgumentTypeError(f"must be between 0 and 5, not {value}")
    return value


def add_chat_options(parser: argparse.ArgumentParser, *, for_presets: bool = False) -> None:
    """The settings flags; none has a default, so that what was given can be told from what was not."""
    what = "this preset's" if for_presets else "this conversation's (saved with it, used by its later turns)"
    group = parser.add_argument_group("chat settings", f"set {what} settings")
    group.add_argument("--system", metavar="TEXT", help="the system prompt ('' for none)")
    group.add_argument(
        "--temperature", type=_temperature, help="0 to 5; 0 always picks the likeliest word (default 0.7)"
    )
    group.add_argument("--top-p", type=float, metavar="P", help="above 0, at most 1 (default 0.95)")
    group.add_argument(
        "--max-tokens", type=_positive_int, metavar="N", help="the longest answer, in tokens (default 512)"
    )
    group.add_argument("--repeat-penalty", type=float, metavar="X", help="1.0 (off) to 2.0 (default 1.1)")
    group.add_argument(
        "--context",
        type=int,
        metavar="N",
        help="the most of the model's context this chat "
        "uses, in tokens; 0 for all of it (default). It cannot exceed the model's (--ctx)",
    )
    group.add_argument(
        "--overflow",
        choices=tuple(OVERFLOW_CHOICES),
        help="when the conversation outgrows the "
        "context: rolling leaves out the oldest turns (default), middle keeps the first exchange "
        "and the latest turns, stop refuses",
    )
    if not for_presets:
        group.add_argument(
            "--preset",
            metavar="NAME",
            help="start from preset NAME (see `hearth presets`); flags given as well change it",
        )


def given(args: argparse.Namespace) -> bool:
    """A settings flag or --preset was given."""
    return getattr(args, "preset", None) is not None or any(getattr(args, f) is not None for f in _FIELDS)


def chat_settings_for(
    args: argparse.Namespace, saved: Mapping[str, object] | None, presets: Presets, model_context: int | None
) -> ChatSettings:
    """The settings for this turn: the conversation's saved ones (`saved`: its settings, None
    for a new conversation, which starts from the default preset), then --preset, then flags.
    InputError saying everything that is wrong, before anything is saved."""
    if saved is None:
        base = presets.default
    else:
        base, bad = ChatSettings.from_settings(saved, base=presets.default)
        if bad:
            print(
                f"hearth: warning: this conversation's saved settings had unusable values ({', '.join(bad)}); "
                "the default preset's are used for those.",
                file=sys.stderr,
            )
    if getattr(args, "preset", None) is not None:
        base = presets.get(args.preset).settings
    # Only a --context given now is refused for exceeding the model's: a saved or preset one is
    # capped by the engine (a chat saved with a longer model loaded still opens).
    chat = base.replace(**_changes(args)).checked(model_context=model_context if args.context is not None else None)
    if model_context and chat.context_length > model_context:
        print(f"hearth: note: {context_note(chat.context_length, model_context)}", file=sys.stderr)
    return chat


def _changes(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the flags given set (InputError for a --system that is not text)."""
    changes: dict[str, Any] = {}
    for flag, field in _FIELDS.items():
        value = getattr(args, flag)
        if value is not None:
            changes[field] = text_arg(value, "--system") if flag == "system" else value
    return changes


def flags_problem(args: argparse.Namespace, model_context: int | None) -> str | None:
    """What `chat_settings_for` would refuse in the flags given, or None, said before the store opens
    or a model starts (a bad --top-p took 1.7 s to refuse, importing the store and the chat service).
    The settings a flag lands on (saved, a preset's, the defaults) are valid, so the flags' own
    problems are all it would find; an unknown --preset is left to it."""
    try:
        ChatSettings().replace(**_changes(args)).checked(model_context=model_context if args.context else None)
    except InputError as e:
        return e.message
    return None


def load_presets(data_dir: Path) -> Presets:
    presets_file = PresetsFile(data_dir)
    presets = presets_file.load()
    if presets_file.warning:
        print(f"hearth: warning: {presets_file.warning}", file=sys.stderr)
    return presets


# -- `hearth presets` ------------------------------------------------------------------------
def add_presets_parser(sub: Any, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "presets",
        parents=[parent],
        help="list, add, remove chat presets; choose the default",
        description="Named chat settings. New chats start from the default preset.",
    )
    p.add_argument("--json", action="store_true", help="print the presets as JSON")
    actions = p.add_subparsers(dest="presets_action")
    add = actions.add_parser("add", parents=[parent], help="save a preset of your own (replaces one of that name)")
    add.add_argument("name")
    add.add_argument("--from", dest="base", metavar="PRESET", help="start from this preset (default: Balanced)")
    add_chat_options(add, for_presets=True)
    rm = actions.add_parser("rm", parents=[parent], help="delete a preset of your own")
    rm.add_argument("name")
    default = actions.add_parser("default", parents=[parent], help="new chats start from this preset")
    default.add_argument("name")


def run_presets(args: argparse.Namespace, data_dir: Path) -> int:
    presets_file = PresetsFile(data_dir)
    try:
        action = getattr(args, "presets_action", None)
        if action == "add":
            current = load_presets(data_dir)
            base = current.get(args.base).settings if args.base else ChatSettings()
            changes = {
                field: (text_arg(getattr(args, flag), "--system") if flag == "system" else getattr(args, flag))
                for flag, field in _FIELDS.items()
                if getattr(args, flag) is not None
            }
            presets = presets_file.save_preset(
                text_arg(args.name, "the preset's name"), base.replace(**changes).checked()
            )
            print(f"Saved preset “{presets.find(args.name).name}”.")  # type: ignore[union-attr]
        elif action == "rm":
            presets_file.delete_preset(text_arg(args.name, "the preset's name"))
            print(f"Deleted preset “{args.name}”.")
        elif action == "default":
            presets = presets_file.set_default(text_arg(args.name, "the preset's name"))
            print(f"New chats start from “{presets.default_name}”.")
        else:
            return _list(load_presets(data_dir), as_json=args.json)
    except InputError as e:
        return fail(e.message)
    except OSError as e:
        return fail(f"could not write {presets_file.path}: {e.strerror or e}")
    if presets_file.warning:
        print(f"hearth: note: {presets_file.warning}", file=sys.stderr)
    return 0


def _list(presets: Presets, *, as_json: bool) -> int:
    if as_json:
        print(
            json.dumps(
                {
                    "default": presets.default_name,
                    "presets": [
                        {"name": p.name, "builtin": p.builtin, **p.settings.to_dict()} for p in presets.presets
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0
    for p in presets.presets:
        s = p.settings
        mark = "*" if p.name == presets.default_name else " "
        origin = "built in" if p.builtin else "yours"
        context = f"context {s.context_length}" if s.context_length else "whole context"
        print(
            f"{mark} {p.name:<18} temperature {s.temperature:g} · top-p {s.top_p:g} · max {s.max_tokens} tokens · "
            f"repeat penalty {s.repeat_penalty:g} · {context} ({origin})"
        )
        if s.system_prompt:
            first = s.system_prompt.splitlines()[0]
            print(f"    system: {first[:90]}{'…' if len(first) > 90 or '\n' in s.system_prompt else ''}")
    print("(* new chats start from this one: `hearth presets default NAME` changes it)")
    return 0
