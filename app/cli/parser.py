"""The `hearth` command line's parser: every command's, or the top level and one command's alone.

Building every command's parser imports every command's module (the model catalog, the tool loop,
the documents, the benchmarks): `parse` reads a command line with the parser of the command it
names alone, and only a line that parser refuses (or help asked before the command's name, or no
command) gets the whole parser, which says what is wrong with the usage a person knows.
tests/cli/test_cli_parsers.py checks that both read a command line the same way.
Must not: import a command's module before its name is seen on the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from app.cli.options import command_words, common_options, data_dir_only, positive_int

__all__ = ["build_parser", "parse"]

_Sub = Any  # argparse's _SubParsersAction, private


def _add_ask(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.ask_tools import add_tool_arguments
    from app.cli.chat_options import add_chat_options

    ask = sub.add_parser("ask", parents=[common], help="ask one question, stream the answer to stdout")
    ask.add_argument("prompt", nargs="?", help="the message to send ('-' reads it from standard input)")
    ask.add_argument("--conversation", type=int, metavar="ID", help="continue conversation ID")
    ask.add_argument(
        "--continue",
        dest="continue_id",
        type=int,
        metavar="MESSAGE_ID",
        help="resume an interrupted, stopped or failed answer (its id is in --json output "
        "and in `hearth list --messages`)",
    )
    ask.add_argument("--json", action="store_true", help="print one JSON object at the end instead of streaming")
    ask.add_argument(
        "--docs",
        action="append",
        metavar="COLLECTION",
        help="answer with passages from this collection of your documents (hearth docs add); repeat for more",
    )
    add_chat_options(ask)
    add_tool_arguments(ask)
    ask.add_argument("--seed", type=int, default=0xC0FFEE)
    ask.add_argument("--force", action="store_true", help="load the model even if it does not fit in free memory")
    ask.add_argument("--yes", action="store_true", help="download a --model hf.co/OWNER/REPO:QUANT without asking")
    ask.add_argument(
        "--no-share",
        action="store_true",
        help="load the model in an engine of its own, even when the window or `hearth serve` runs it "
        "(HEARTH_NO_SHARE=1 does the same for every command)",
    )
    ask.add_argument(
        "--provider",
        metavar="NAME",
        help="answer with a remote provider (see `hearth providers`) instead of the local model",
    )
    ask.add_argument(
        "--policy",
        choices=("local-first", "fast", "deep"),
        help="choose the route of each answer (kept with the conversation): local-first (the local model, "
        "or the first of --routes when it has no model, the prompt does not fit or the queue wait passes "
        "--queue-limit), fast (the one of --routes with the best recent TTFT and tokens/s), deep (the first "
        "of --routes)",
    )
    ask.add_argument(
        "--routes",
        metavar="A,B",
        help="the routes a --policy chooses among: 'local', a provider's NAME or NAME:MODEL, comma-separated",
    )
    ask.add_argument(
        "--queue-limit",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="local-first: how long an answer may wait behind others for the local model (default 20)",
    )


def _add_bench(sub: _Sub, common: argparse.ArgumentParser) -> None:
    bench = sub.add_parser(
        "bench",
        parents=[common],
        help="measure Hearth's path against plain llama-cpp-python "
        "(`bench scale`: the window, search and the command path on 10,000 conversations; "
        "`bench render`: drawing a 50,000-character Markdown answer)",
    )
    bench.add_argument(
        "suite",
        nargs="?",
        choices=("stream", "scale", "render", "context", "threads", "serve", "docs", "share", "tools", "overhead"),
        default="stream",
        help="stream (default): the streaming path; scale: a generated store of 10,000 conversations "
        "and 1,000,000 messages (cached under ~/.cache/hearth) beside an empty one; render: a "
        "streaming Markdown answer in the real transcript against Qt's setMarkdown; context: "
        "long conversations (TTFT at turn 50, after switching chats, with a background job) "
        "and threads; threads: decode speed with automatic threads against each fixed "
        "count, quiet and next to a busy process; serve: `hearth serve` against "
        "llama-cpp-python's own server; docs: your documents (app/cli/bench_docs.py); tools: the tool loop's "
        "overhead per step and Stop to the tool's process ended (app/cli/bench_tools.py); overhead: Hearth's "
        "decode against llama.cpp's own llama-bench, side by side (`hearth bench overhead --help`)",
    )
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.add_argument("--conversations", type=positive_int, default=10_000, help="scale: conversations generated")
    bench.add_argument("--messages", type=positive_int, default=1_000_000, help="scale: messages generated")
    bench.add_argument(
        "--tokens",
        type=int,
        default=256,
        help="tokens generated per run (default 256; serve 128, share 64, the threads comparison of "
        "context and threads 200)",
    )
    bench.add_argument(
        "--runs",
        type=int,
        help="runs per variant; medians are reported (default 9; scale: 3 window probes per store; render: 3)",
    )
    bench.add_argument(
        "--chars",
        type=positive_int,
        default=50_000,
        help="render: the streamed answer's length in characters (default 50,000, the issue's)",
    )
    bench.add_argument("--files", type=positive_int, default=200, help="docs: files generated to index")
    bench.add_argument("--mb", type=float, default=1.0, help="docs: MB of text in them (the issue: 100)")
    bench.add_argument("--passages", type=positive_int, default=100_000, help="docs: passages to search")
    bench.add_argument(
        "--books",
        type=positive_int,
        default=5,
        help="docs: how many of the five labelled public-domain books to index for recall@5, shortest first "
        "(default all 5; fewer is quicker, over fewer questions)",
    )
    bench.add_argument("--stall", type=float, default=2.0, help="seconds the stalled writer sleeps per commit")


def _add_models(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.models import add_models_parser

    add_models_parser(sub, common)


def _add_doctor(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.doctor import add_doctor_parser

    add_doctor_parser(sub, common)


def _add_providers(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.providers import add_providers_parser

    add_providers_parser(sub, data_dir_only(top=False))


def _add_presets(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.chat_options import add_presets_parser

    add_presets_parser(sub, data_dir_only(top=False))


def _add_docs(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.docs import add_docs_parser

    add_docs_parser(sub, data_dir_only(top=False))


def _add_tools(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.tools import add_tools_parser

    add_tools_parser(sub, data_dir_only(top=False))


def _add_stats(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.stats import add_stats_parser

    add_stats_parser(sub, data_dir_only(top=False))


def _add_conversations(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.conversations import add_conversation_parsers

    add_conversation_parsers(sub, common)


def _add_exchange(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.exchange import add_exchange_parsers

    add_exchange_parsers(sub, common)


def _add_serve(sub: _Sub, common: argparse.ArgumentParser) -> None:
    from app.cli.serve import add_serve_parser

    add_serve_parser(sub, common)


# Each command's names (as its module's parser adds them; tests/cli/test_cli_parsers.py checks) and
# what adds its parser, in the order `hearth --help` lists them.
COMMANDS: tuple[tuple[tuple[str, ...], Callable[[_Sub, argparse.ArgumentParser], None]], ...] = (
    (("ask",), _add_ask),
    (("bench",), _add_bench),
    (("models",), _add_models),
    (("doctor",), _add_doctor),
    (("providers",), _add_providers),
    (("presets",), _add_presets),
    (("docs",), _add_docs),
    (("tools",), _add_tools),
    (("stats",), _add_stats),
    (("list", "show", "search", "rename", "pin", "unpin", "rm", "backup"), _add_conversations),
    (("export", "import"), _add_exchange),
    (("serve",), _add_serve),
)


class _Refusing(argparse.ArgumentParser):
    """Raises instead of printing a usage line and exiting: the whole parser then reads the line."""

    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)


def build_parser(only: str | None = None, *, refusing: bool = False) -> argparse.ArgumentParser:
    """The whole parser, or (`only`: a command's name, or "" for none) the top level and that
    command's parser alone."""
    common = common_options(top=False)
    p = (_Refusing if refusing else argparse.ArgumentParser)(
        prog="hearth",
        parents=[common_options(top=True)],
        description="Hearth: chat with a language model on your own machine. With no command, opens the window.",
    )
    sub = p.add_subparsers(dest="command")
    for names, add in COMMANDS:
        if only is None or only in names:
            add(sub, common)
    return p


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The command line read as the whole parser reads it, by the parser of its command alone (the
    top level alone for the window) where that parser accepts it."""
    words = command_words(argv, 1)
    named = words[0] if words else ""
    before = list(argv)[: list(argv).index(named)] if named else list(argv)
    if not any(a in ("-h", "--help") for a in before):  # help before a name lists every command
        try:
            return build_parser(named, refusing=True).parse_args(argv)
        except argparse.ArgumentError:
            pass  # the whole parser says what is wrong, with every command in its usage
    return build_parser().parse_args(argv)
