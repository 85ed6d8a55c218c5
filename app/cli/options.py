"""The options every `hearth` command shares, before and after the command's name (app/cli/parser.py
builds them into every parser), and `command_words`, which finds the command's name among them
before any parser is built."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["command_words", "common_options", "data_dir_only", "positive_int"]


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def command_words(argv: Sequence[str], n: int) -> list[str]:
    """The first `n` words of a command line that are neither options nor their values (the
    command's name and its first argument), read before any parser is built."""
    valued = {
        name for action in common_options(top=True)._actions if action.nargs != 0 for name in action.option_strings
    }
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in valued
        else:
            words.append(arg)
            if len(words) == n:
                break
    return words


def common_options(*, top: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command's name.

    argparse lets a subcommand's own defaults overwrite what was given before its name
    (`hearth --data-dir X ask` would lose X), so below the top level they default to
    SUPPRESS: an option given after the name wins, one given before it stays.
    """
    from engine.template_choice import KNOWN_TEMPLATES

    default = None if top else argparse.SUPPRESS
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        default=default,
        help="where conversations are kept (default: $HEARTH_DATA_DIR, else the OS's per-user data folder)",
    )
    common.add_argument(
        "--model",
        default=default,
        help="a model id from `hearth models list`, hf.co/OWNER/REPO:QUANT (pulled first), or the path of a "
        "GGUF file (default: the model last chosen in the window, else the bundled "
        "SmolLM2-135M-Instruct)",
    )
    common.add_argument(
        "--threads",
        type=positive_int,
        default=default,
        help="llama.cpp threads, fixed (default: chosen per answer from the cores other processes leave)",
    )
    common.add_argument(
        "--ctx",
        type=positive_int,
        default=default,
        help="context length in tokens (default: 4096, or the saved setting)",
    )
    common.add_argument(
        "--gpu-layers",
        type=int,
        metavar="N",
        default=default,
        help="layers to offload to the GPU (default: as many as fit, where a GPU backend exists)",
    )
    common.add_argument(
        "--flash-attn",
        action=argparse.BooleanOptionalAction,
        default=default,
        help="flash attention on or off for this run (default: the saved setting, off)",
    )
    common.add_argument(
        "--chat-template",
        default=default,
        choices=sorted(KNOWN_TEMPLATES),
        metavar="NAME",
        help="the chat template for this run: "
        + ", ".join(sorted(KNOWN_TEMPLATES))
        + " (default: the one chosen with `hearth models template`, else the model file's own)",
    )
    return common


def data_dir_only(*, top: bool) -> argparse.ArgumentParser:
    just_data = argparse.ArgumentParser(add_help=False)
    just_data.add_argument(
        "--data-dir",
        default=None if top else argparse.SUPPRESS,
        help="where Hearth keeps its data (default: $HEARTH_DATA_DIR, else the OS's per-user data folder)",
    )
    return just_data
