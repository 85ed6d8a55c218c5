"""The `hearth` command: the window by default, `ask` for scripts and terminals, `bench` for figures,
`doctor` to check that Hearth works on this machine.

`ask` goes through exactly the same ChatService, engine process and store as the window.
Exit codes: 0 completed, 1 the generation failed (or its save did not land), 2 bad input
(usage, model, data), 3 a provider took too long (the partial answer is saved as
cancelled(timeout)), 130 stopped with Ctrl-C (the partial answer is saved as cancelled).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.doctor_cli import add_doctor_parser, run_doctor
from app.models import CatalogError, LibraryError, ModelLibrary
from app.models_cli import add_models_parser, run_models
from app.paths import db_path, default_model_path, resolve_data_dir
from app.providers_cli import add_providers_parser, run_providers
from app.settings import LoadSettings, SettingsFile
from engine.template import KNOWN_TEMPLATES

__all__ = ["main"]


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


def _common(*, top: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after the command's name.

    argparse lets a subcommand's own defaults overwrite what was given before its name
    (`hearth --data-dir X ask` would lose X), so below the top level they default to
    SUPPRESS: an option given after the name wins, one given before it stays.
    """
    default = None if top else argparse.SUPPRESS
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=default, help="where conversations are kept (default: "
                        "$HEARTH_DATA_DIR, else the OS's per-user data folder)")
    common.add_argument("--model", default=default, help="a model id from `hearth models list`, or the path of a "
                        "GGUF file (default: the model last chosen in the window, else the bundled "
                        "SmolLM2-135M-Instruct)")
    common.add_argument("--threads", type=_positive_int, default=default,
                        help="llama.cpp threads (default: physical cores - 1, at least 1)")
    common.add_argument("--ctx", type=_positive_int, default=default,
                        help="context length in tokens (default: 4096, or the saved setting)")
    common.add_argument("--gpu-layers", type=int, metavar="N", default=default,
                        help="layers to offload to the GPU (default: as many as fit, where a GPU backend exists)")
    common.add_argument("--flash-attn", action=argparse.BooleanOptionalAction, default=default,
                        help="use flash attention (default: the saved setting, off)")
    common.add_argument("--chat-template", default=default, choices=sorted(KNOWN_TEMPLATES), metavar="NAME",
                        help="the chat template for this run: " + ", ".join(sorted(KNOWN_TEMPLATES)) +
                        " (default: the one chosen with `hearth models template`, else the model file's own)")
    return common


def _data_dir_only(*, top: bool) -> argparse.ArgumentParser:
    just_data = argparse.ArgumentParser(add_help=False)
    just_data.add_argument("--data-dir", default=None if top else argparse.SUPPRESS, help="where Hearth keeps its "
                           "data (default: $HEARTH_DATA_DIR, else the OS's per-user data folder)")
    return just_data


def _parser() -> argparse.ArgumentParser:
    common = _common(top=False)
    p = argparse.ArgumentParser(prog="hearth", parents=[_common(top=True)],
                                description="Hearth: chat with a language model on your own machine. "
                                            "With no command, opens the window.")
    sub = p.add_subparsers(dest="command")
    ask = sub.add_parser("ask", parents=[common], help="ask one question, stream the answer to stdout")
    ask.add_argument("prompt", nargs="?", help="the message to send ('-' reads it from standard input)")
    ask.add_argument("--conversation", type=int, metavar="ID", help="continue conversation ID")
    ask.add_argument("--continue", dest="continue_id", type=int, metavar="MESSAGE_ID",
                     help="resume an interrupted, stopped or failed answer (its id is in --json output "
                          "and in `hearth list --messages`)")
    ask.add_argument("--json", action="store_true", help="print one JSON object at the end instead of streaming")
    ask.add_argument("--max-tokens", type=_positive_int, default=512)
    ask.add_argument("--temperature", type=_temperature, default=0.7)
    ask.add_argument("--seed", type=int, default=0xC0FFEE)
    ask.add_argument("--force", action="store_true", help="load the model even if it does not fit in free memory")
    ask.add_argument("--provider", metavar="NAME", help="answer with a remote provider (see `hearth providers`) "
                     "instead of the local model")
    bench = sub.add_parser("bench", parents=[common], help="measure Hearth's path against plain llama-cpp-python")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    bench.add_argument("--tokens", type=int, default=256, help="tokens generated per run (default 256)")
    bench.add_argument("--runs", type=int, default=9, help="runs per variant; medians are reported (default 9)")
    bench.add_argument("--stall", type=float, default=2.0, help="seconds the stalled writer sleeps per commit")
    backup = sub.add_parser("backup", parents=[common], help="copy every conversation into one database file")
    backup.add_argument("path", help="the file to write (it must not exist yet)")
    add_models_parser(sub, common)
    add_doctor_parser(sub, common)
    add_providers_parser(sub, _data_dir_only(top=False))
    lst = sub.add_parser("list", parents=[common], help="list saved conversations, newest first")
    lst.add_argument("--messages", action="store_true", help="also list each message: id, role, state, start")
    lst.add_argument("--conversation", type=int, metavar="ID", help="only this conversation")
    return p


def _fail(message: str, code: int = 2) -> int:
    print(f"hearth: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:  # `hearth list | head`: the reader has what it wanted
        _quiet_stdout()
        return 141  # what a shell reports for a program ended by a closed pipe (128 + SIGPIPE)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def _text_arg(raw: str, where: str) -> str:
    """A prompt from argv or stdin must be UTF-8 text: say where it is not, instead of failing later."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError as e:  # Python keeps undecodable bytes as lone surrogates
        bad = raw.encode("utf-8", "surrogateescape")[: e.start + 1][-1:]
        raise _BadInput(f"the prompt {where} is not valid UTF-8 text (byte 0x{bad.hex()} at character {e.start + 1}); "
                        "save it as UTF-8 and try again") from None
    return raw


def _read_stdin() -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _BadInput(f"the prompt on standard input is not valid UTF-8 text (byte 0x{data[e.start]:02x} at byte "
                        f"{e.start + 1}); save it as UTF-8 and try again") from None


class _BadInput(Exception):
    """Input a person gave that cannot be used; the message says why (exit 2)."""


def _main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    data_dir = resolve_data_dir(args.data_dir)
    if args.command == "doctor":  # before anything that could fail: reporting failures is its job
        return _doctor(args, data_dir)
    try:
        library = ModelLibrary(data_dir, bundled_path=default_model_path())
    except CatalogError as e:
        return _fail(f"the model catalog is broken: {e}")
    if args.command == "models":
        return run_models(args, library)
    if args.command == "providers":
        from engine.wire import load_formats

        return run_providers(args, data_dir, set(load_formats()))
    settings_file = SettingsFile(data_dir)
    saved = settings_file.load()
    if settings_file.warning:
        print(f"hearth: warning: {settings_file.warning}", file=sys.stderr)
    settings = LoadSettings(
        model=args.model or saved.model,
        n_ctx=args.ctx if args.ctx is not None else saved.n_ctx,
        n_threads=args.threads if args.threads is not None else saved.n_threads,
        n_gpu_layers=args.gpu_layers if args.gpu_layers is not None else saved.n_gpu_layers,
        flash_attn=args.flash_attn if args.flash_attn is not None else saved.flash_attn)
    if settings.problems():
        return _fail(" ".join(settings.problems()))
    try:
        model = library.resolve(settings.model) if settings.model else default_model_path()
    except LibraryError as e:
        if args.model:
            return _fail(e.message)
        # The model chosen last time was removed since: still open, on the bundled model.
        print(f"hearth: warning: {e.message} Using the bundled model.", file=sys.stderr)
        model = default_model_path()
    if not args.model and settings.model and not model.exists():
        print(f"hearth: warning: the model chosen last time ({settings.model}) is gone; using the bundled model.",
              file=sys.stderr)
        model = default_model_path()
    args.settings = settings
    if args.command == "ask":
        too_big = None if args.provider else _too_big(model, settings)
        if too_big and not args.force:
            return _fail(f"{too_big} (--force loads it anyway)")
        if args.continue_id is not None:
            if args.prompt is not None or args.conversation is not None:
                return _fail("--continue resumes an answer: give it alone, without a prompt or --conversation")
            return asyncio.run(_ask(args, "", data_dir, model))
        if args.prompt is None:
            return _fail('give the message to send, e.g. hearth ask "Hello" (or --continue MESSAGE_ID)')
        try:
            prompt = _read_stdin() if args.prompt == "-" else _text_arg(args.prompt, "given")
        except _BadInput as e:
            return _fail(str(e))
        return asyncio.run(_ask(args, prompt, data_dir, model))
    if args.command == "bench":
        from app.bench import run_bench

        return run_bench(model=model, tokens=args.tokens, runs=args.runs, stall_s=args.stall,
                         as_json=args.json, n_threads=args.threads)
    if args.command == "backup":
        return _backup(data_dir, Path(args.path).expanduser())
    if args.command == "list":
        return asyncio.run(_list(data_dir, messages=args.messages, only=args.conversation))
    from app.gui import run_window

    return run_window(data_dir=data_dir, model_path=model, settings=settings, library=library,
                      settings_file=settings_file, chat_template=args.chat_template)


def _doctor(args: argparse.Namespace, data_dir: Path) -> int:
    model = None
    if args.model:
        try:
            model = ModelLibrary(data_dir, bundled_path=default_model_path()).resolve(args.model)
        except (CatalogError, LibraryError) as e:
            return _fail(getattr(e, "message", None) or str(e))
    return run_doctor(args, data_dir, model)


class _Printer:
    """The answer goes to stdout; a model's reasoning goes to stderr (dimmed on a terminal), so
    `hearth ask ... > answer.txt` saves the answer alone.

    A reader that stops early (`| head`) closes the pipe: the answer is cancelled at once,
    saved as cancelled with the text written so far, and nothing more is written.
    """

    def __init__(self, on_closed: Callable[[], None]) -> None:
        self._dim = sys.stderr.isatty()
        self._in_reasoning = False
        self._on_closed = on_closed
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            _quiet_stdout()
            self._on_closed()

    def delta(self, d: Any) -> None:
        if d.channel == "reasoning":
            if not self._in_reasoning:
                sys.stderr.write("\x1b[2m[thinking] " if self._dim else "[thinking] ")
                self._in_reasoning = True
            sys.stderr.write(d.text)
            sys.stderr.flush()
            return
        self._close_reasoning()
        if d.replace:
            self.write("\n[the provider replaced its answer with:]\n")
        self.write(d.text)

    def end(self) -> None:
        self._close_reasoning()

    def _close_reasoning(self) -> None:
        if self._in_reasoning:
            sys.stderr.write("\x1b[0m\n" if self._dim else "\n")
            self._in_reasoning = False


async def _route(args: argparse.Namespace, data_dir: Path, store: Any) -> dict[str, Any]:
    """Where the answer comes from: the local model, or `--provider NAME` with its key, filters and,
    in a continued conversation, the provider's own conversation id (Dify keeps history by it)."""
    if not args.provider:
        return {"remote": None, "filters": None}
    from app.providers import ProvidersFile, Router
    from engine.wire import load_formats

    settings: dict[str, object] = {}
    if args.conversation is not None:
        settings = dict(await store.conversation_settings(args.conversation))
    settings.update(provider=args.provider, model=None)
    route = Router(ProvidersFile(data_dir, set(load_formats()))).route(settings)
    return {"remote": route.remote, "filters": route.filters}


def _too_big(model: Path, settings: LoadSettings) -> str | None:
    """The fit's message when the model clearly will not fit in free memory, else None.

    Loading it anyway would push the machine into swap or the OOM killer. A file that
    cannot be read is left to the engine, which reports it with the file's name.
    """
    from engine.errors import ModelLoadError
    from engine.fit import Verdict, available_memory, estimate_fit
    from engine.gguf_info import read_gguf_info

    try:
        info = read_gguf_info(model)
    except ModelLoadError:
        return None
    fit = estimate_fit(info, n_ctx=settings.n_ctx, available_bytes=available_memory())
    return fit.message if fit.verdict is Verdict.TOO_BIG else None


def _open_store(data_dir: Path, *, read_only_ok: bool = False):  # noqa: ANN202 - returns store.Store
    """The store; with `read_only_ok` (listing, backing up), one on read-only media opens read-only."""
    from store import Store, StoreError

    try:
        return Store.open(db_path(data_dir))
    except StoreError as e:
        if not (read_only_ok and e.code == "read_only"):
            raise
    store = Store.open_read_only(db_path(data_dir))
    print(f"hearth: note: {db_path(data_dir)} is on a read-only disk; it is opened for reading only.", file=sys.stderr)
    return store


def _backup(data_dir: Path, dest: Path) -> int:
    from store import StoreError

    try:
        store = _open_store(data_dir, read_only_ok=True)
    except StoreError as e:
        return _fail(e.message)
    try:
        written = store.backup(dest)
    except StoreError as e:
        return _fail(e.message)
    finally:
        store.close()
    print(f"backed up {db_path(data_dir)} to {written} ({written.stat().st_size:,} bytes); "
          f"open it with: hearth --data-dir DIR after copying it to DIR/hearth.db", file=sys.stderr)
    return 0


async def _list(data_dir: Path, *, messages: bool, only: int | None) -> int:
    from store import StoreError

    try:
        store = _open_store(data_dir, read_only_ok=True)
    except StoreError as e:
        return _fail(e.message)
    try:
        conversations = await store.list_conversations()
        if only is not None and all(c.id != only for c in conversations):
            return _fail(f"there is no conversation {only}. Run `hearth list` to see saved conversations.")
        for c in conversations:
            if only is not None and c.id != only:
                continue
            print(f"{c.id}\t{c.title}")
            if messages or only is not None:
                for m in await store.messages(c.id):
                    state = m.state.value if m.state else ""
                    start = " ".join(m.content.split())[:60]
                    print(f"  {m.id}\t{m.role}\t{state}\t{start}")
    except StoreError as e:
        return _fail(e.message)
    finally:
        store.close()
    return 0


async def _ask(args: argparse.Namespace, prompt: str, data_dir: Path, model: Path) -> int:
    from app.providers import ProviderError
    from app.session import ChatService, InputError
    from engine.client import AsyncEngine
    from engine.commands import Sampling
    from engine.errors import HearthEngineError
    from engine.events import Delta
    from engine.states import GenerationState
    from store import StoreError

    if not prompt.strip() and args.continue_id is None:
        return _fail("the prompt is empty: give the message to send, e.g. hearth ask \"Hello\"")
    try:
        store = _open_store(data_dir)
    except StoreError as e:
        return _fail(e.message)
    engine = AsyncEngine()
    notes: list[str] = []  # what a person should know about this answer's model (no chat template, ...)
    library = ModelLibrary(data_dir, bundled_path=default_model_path())
    service = ChatService(store, engine, templates=library.template_for)
    loop = asyncio.get_running_loop()
    try:
        try:
            route = await _route(args, data_dir, store)
            if route["remote"] is None:
                s = args.settings
                info = await service.load(str(model), n_ctx=s.n_ctx, n_threads=s.n_threads,
                                          n_gpu_layers=s.n_gpu_layers, flash_attn=s.flash_attn,
                                          chat_template=args.chat_template)
                if info.template_note:
                    notes.append(info.template_note)
                    print(f"hearth: note: {info.template_note}", file=sys.stderr)
            sampling = Sampling(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed)
            if args.continue_id is not None:
                turn = await service.continue_message(args.continue_id, sampling=sampling, **route)
            else:
                turn = await service.start_turn(args.conversation, prompt, sampling=sampling, **route)
        except (HearthEngineError, StoreError) as e:
            hint = " Run `hearth list` to see saved conversations." if e.code == "no_such_conversation" else ""
            hint = " Run `hearth list --messages` to see answers and their states." if e.code in (
                "no_such_message", "not_continuable") else hint
            return _fail(e.message + hint)
        except (InputError, ProviderError) as e:
            return _fail(str(e))
        interrupts = 0

        def on_sigint() -> None:  # the first Ctrl-C stops the answer; a second one does not wait
            nonlocal interrupts
            interrupts += 1
            turn.cancel(force=interrupts > 1)

        loop.add_signal_handler(signal.SIGINT, on_sigint)
        show = _Printer(on_closed=turn.cancel)
        if args.continue_id is not None and not args.json:
            show.write(turn.prefix)  # the whole answer, then its continuation
        async for event in turn:
            if isinstance(event, Delta) and not args.json:
                show.delta(event)
        show.end()
        loop.remove_signal_handler(signal.SIGINT)
        lag: float | None = None
        save_error: str | None = None
        try:
            lag = await turn.saved
        except Exception as e:  # the answer was shown; say clearly that it was not saved
            save_error = f"the answer could not be saved: {getattr(e, 'message', None) or e}"
            print(f"hearth: error: {save_error}", file=sys.stderr)
        outcome = turn.outcome
        assert outcome is not None
        if show.closed:  # the reader went away: the answer is saved (cancelled); nobody to tell
            return 141 if save_error is None else 1
        if args.json:
            result = _json_result(turn, outcome, lag, service.label(route["remote"]))
            result["saved"] = save_error is None
            result["notes"] = notes
            if save_error is not None and result["error"] is None:
                result["error"] = {"code": "save_failed", "message": save_error}
            print(json.dumps(result, ensure_ascii=False))
        else:
            if not outcome.text.endswith("\n"):
                print()
            m = outcome.metrics
            print(_summary(outcome.state, m, outcome.error_message, turn.ids.conversation_id,
                           outcome.cancel_reason), file=sys.stderr)
        if save_error is not None:
            return 1  # whatever the stream said, the answer is not on disk: never report success
        if outcome.state is GenerationState.CANCELLED and outcome.cancel_reason == "timeout":
            return 3
        return {GenerationState.COMPLETED: 0, GenerationState.CANCELLED: 130}.get(outcome.state, 1)
    finally:
        engine.close()
        store.close()


def _summary(state: Any, m: dict[str, Any], error: str | None, conversation_id: int,
             cancel_reason: str | None = None) -> str:
    timed_out = getattr(state, "value", None) == "cancelled" and cancel_reason == "timeout"
    parts = ["timed out: the provider took too long; the text that arrived is kept" if timed_out else str(state.value)]
    if error:
        parts.append(error)
    if m.get("ttft_ms") is not None:
        parts.append(f"TTFT {m['ttft_ms']:.0f} ms")
    if m.get("tokens_per_s"):
        parts.append(f"{m['tokens_per_s']:.0f} tok/s")
    if m.get("completion_tokens") is not None:
        parts.append(f"{m['completion_tokens']} tokens")
    parts.append(f"conversation {conversation_id} (continue with --conversation {conversation_id})")
    return "[" + " · ".join(parts) + "]"


def _json_result(turn: Any, outcome: Any, lag: float | None, model: str) -> dict[str, Any]:
    return {
        "conversation_id": turn.ids.conversation_id,
        "user_message_id": turn.ids.user_message_id,
        "message_id": turn.ids.assistant_message_id,
        "generation_id": turn.ids.generation_id,
        "model": model,
        "state": outcome.state.value,
        "cancel_reason": outcome.cancel_reason,
        "error": {"code": outcome.error_code, "message": outcome.error_message} if outcome.error_code else None,
        "text": outcome.text,
        "reasoning": outcome.reasoning,
        "metrics": {**outcome.metrics, "finalization_lag_ms": lag},
    }


if __name__ == "__main__":
    sys.exit(main())
