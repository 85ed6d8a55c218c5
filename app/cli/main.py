"""The `hearth` command: the window by default, `ask` for scripts and terminals, `bench` for figures,
`doctor` to check that Hearth works on this machine.

Owns settings and model resolution, and the dispatch; the command line is read by
app/cli/parser.py (every common option counts before and after the command's name: app/cli/options.py),
`ask` lives in app/cli/ask.py (its exit codes are listed there), what commands share at the terminal
in app/cli/support.py. The window and
the benchmark need Qt: app.main hands them in (`FrontEnds`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.options import command_words
from app.cli.parser import parse
from app.cli.store_commands import runner_for

if TYPE_CHECKING:
    from app.core.models import ModelLibrary
    from app.core.settings import SettingsFile

# Every command's module is imported when that command runs (or its parser is built), not with this
# one: `hearth stats` must not pay for the model catalog, jinja2, the tool loop and the rest.
__all__ = ["main"]


@dataclass(frozen=True)
class FrontEnds:
    """The commands that need Qt, handed in by app.main so that the CLI never imports app.ui."""

    window: Callable[..., int]  # the window: run_window(data_dir=, model_path=, settings=, ...)
    bench: Callable[..., int]  # `hearth bench`: the window's streaming path, measured
    bench_scale: Callable[..., int] | None = None  # `hearth bench scale`: the window and search on a big store
    bench_render: Callable[..., int] | None = None  # `hearth bench render`: drawing streamed Markdown
    serve: Callable[..., int] | None = None  # `hearth serve`: app.server.command.run_serve
    # `hearth ask` hosting its engine for other Hearth processes: app.server.shared_host.host_engine
    share_engine: Callable[..., Awaitable[Any]] | None = None


def main(argv: list[str] | None = None, *, front_ends: FrontEnds) -> int:
    _ctrl_c_stops()
    line = sys.argv[1:] if argv is None else argv
    try:
        if command_words(line, 2) == ["bench", "overhead"]:  # its --threads takes a list: its own options
            from app.cli.bench_overhead import run_overhead_command

            return run_overhead_command(line)
        args = parse(line)
        if (run := runner_for(args.command)) is not None:  # the store or a settings file only: no model, no catalog
            from app.core.paths import resolve_data_dir

            return run(args, resolve_data_dir(args.data_dir))
        return _main(args, front_ends)
    except BrokenPipeError:  # `hearth list | head`: the reader has what it wanted
        from app.cli.support import quiet_stdout

        quiet_stdout()
        return 141  # what a shell reports for a program ended by a closed pipe (128 + SIGPIPE)


def _ctrl_c_stops() -> None:
    """Ctrl-C stops every command the same way, also in a process started with SIGINT ignored (a
    shell's background job, a test suite run from one): Python then installs no handler, so a
    pull ran to its end while `hearth ask`, which handles SIGINT on its loop, stopped."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _main(args: argparse.Namespace, front_ends: FrontEnds) -> int:
    from app.cli.support import fail
    from app.cli.terminal import for_stream
    from app.core.errors import CatalogError, LibraryError
    from app.core.models import ModelLibrary
    from app.core.paths import default_model_path, resolve_data_dir
    from app.core.settings import LoadSettings, SettingsFile

    data_dir = resolve_data_dir(args.data_dir)
    if args.command == "doctor":  # before anything that could fail: reporting failures is its job
        return _doctor(args, data_dir)
    if (measured := _bench_without_model(args, front_ends)) is not None:  # a generated store or answer
        return measured
    try:
        library = ModelLibrary(data_dir, bundled_path=default_model_path())
    except CatalogError as e:
        return fail(f"the model catalog is broken: {e}")
    if args.command == "models":
        from app.cli.models import run_models

        return run_models(args, library)
    if args.command == "providers":
        from app.cli.providers import run_providers
        from engine.wire import load_formats

        return run_providers(args, data_dir, set(load_formats()))
    warned = for_stream(sys.stderr)  # they quote files and names: no escapes reach a terminal
    settings_file = SettingsFile(data_dir)
    saved = settings_file.load()
    if settings_file.warning:
        print(warned(f"hearth: warning: {settings_file.warning}"), file=sys.stderr)
    from app.cli.models_hub import is_hub_ref, pull_for_model

    if is_hub_ref(args.model) and (pulled := pull_for_model(args, library)) is not None:  # hf.co/...: pull first
        return pulled
    settings = LoadSettings(
        model=args.model or saved.model,
        n_ctx=args.ctx if args.ctx is not None else saved.n_ctx,
        n_threads=args.threads if args.threads is not None else saved.n_threads,
        n_gpu_layers=args.gpu_layers if args.gpu_layers is not None else saved.n_gpu_layers,
        flash_attn=args.flash_attn if args.flash_attn is not None else saved.flash_attn,
        share_engine=saved.share_engine,
    )
    if settings.problems():
        return fail(" ".join(settings.problems()))
    try:
        model = library.resolve(settings.model) if settings.model else default_model_path()
    except LibraryError as e:
        if args.model:
            return fail(e.message)
        # The model chosen last time was removed since: still open, on the bundled model.
        print(warned(f"hearth: warning: {e.message} Using the bundled model."), file=sys.stderr)
        model = default_model_path()
    if not args.model and settings.model and not model.exists():
        print(
            warned(f"hearth: warning: the model chosen last time ({settings.model}) is gone; using the bundled model."),
            file=sys.stderr,
        )
        model = default_model_path()
    args.settings = settings
    return _run_with_model(args, front_ends, data_dir, model, library, settings_file)


def _run_with_model(
    args: argparse.Namespace,
    front_ends: FrontEnds,
    data_dir: Path,
    model: Path,
    library: ModelLibrary,
    settings_file: SettingsFile,
) -> int:
    """The commands that load a model: ask, serve, bench, and the window."""
    if args.command in ("ask", "serve"):
        from app.cli.ask import run_ask
        from app.cli.support import fail

        if args.command == "ask":
            return run_ask(args, data_dir, model, library, share_engine=front_ends.share_engine)
        if front_ends.serve is None:
            return fail("`hearth serve` is not available in this build")
        return front_ends.serve(args, data_dir, model, library)
    if args.command == "bench":
        return _bench_with_model(args, front_ends, model)
    return front_ends.window(
        data_dir=data_dir,
        model_path=model,
        settings=args.settings,
        library=library,
        settings_file=settings_file,
        chat_template=args.chat_template,
    )


def _bench_with_model(args: argparse.Namespace, front_ends: FrontEnds, model: Path) -> int:
    """`hearth bench` (the streaming path, through the window's view-model) or `bench context`."""
    if args.suite == "serve":
        from app.cli.bench_serve import run_serve_bench

        return run_serve_bench(
            model=model,
            runs=args.runs or 5,
            tokens=args.tokens if args.tokens != 256 else 128,
            threads=args.threads,
            as_json=args.json,
        )
    if args.suite == "share":
        from app.cli.bench_share import run_share_bench

        return run_share_bench(
            model=model, runs=args.runs or 5, tokens=args.tokens if args.tokens != 256 else 64,
            threads=args.threads, as_json=args.json,
        )  # fmt: skip
    if args.suite == "tools":
        from app.cli.bench_tools import run_tools_bench

        return run_tools_bench(model=model, runs=args.runs or 9, as_json=args.json)
    if args.suite == "docs":
        from app.cli.bench_docs import run_docs_bench

        return run_docs_bench(model=model, files=args.files, mb=args.mb, passages=args.passages, books=args.books,
                              runs=args.runs or 3, tokens=args.tokens, as_json=args.json)  # fmt: skip
    if args.suite in ("context", "threads"):
        from app.cli.bench_context import run_context_bench

        parts = ("context", "threads") if args.suite == "context" else ("threads",)
        return run_context_bench(
            model=model,
            runs=args.runs or 5,
            as_json=args.json,
            n_threads=args.threads,
            parts=parts,
            tokens=args.tokens if args.tokens != 256 else 200,  # the threads comparison's answers
        )
    return front_ends.bench(
        model=model,
        tokens=args.tokens,
        runs=args.runs or 9,
        stall_s=args.stall,
        as_json=args.json,
        n_threads=args.threads,
    )


def _bench_without_model(args: argparse.Namespace, front_ends: FrontEnds) -> int | None:
    """`hearth bench scale` or `hearth bench render`, or None for any other command."""
    if args.command != "bench" or args.suite not in ("scale", "render"):
        return None
    run = front_ends.bench_scale if args.suite == "scale" else front_ends.bench_render
    if run is None:
        from app.cli.support import fail

        return fail(f"`hearth bench {args.suite}` is not available in this build")
    if args.suite == "render":
        return run(as_json=args.json, runs=args.runs or 3, chars=args.chars)
    return run(as_json=args.json, conversations=args.conversations, messages=args.messages, runs=args.runs or 3)


def _doctor(args: argparse.Namespace, data_dir: Path) -> int:
    from app.cli.doctor import run_doctor
    from app.cli.support import fail
    from app.core.errors import CatalogError, LibraryError
    from app.core.models import ModelLibrary
    from app.core.paths import default_model_path

    model = None
    if args.model:
        try:
            model = ModelLibrary(data_dir, bundled_path=default_model_path()).resolve(args.model)
        except (CatalogError, LibraryError) as e:
            return fail(e.message)
    return run_doctor(args, data_dir, model)
