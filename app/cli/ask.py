"""`hearth ask`: one answer, streamed to stdout through the same ChatService, engine and store as the window.

Exit codes: 0 completed, 1 the generation failed (or its save did not land), 2 bad input
(usage, model, data), 3 a provider took too long (the partial answer is saved as
cancelled(timeout)), 130 stopped with Ctrl-C (saved as cancelled), 141 the reader closed the
pipe (saved as cancelled).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.cli.support import fail, open_store, quiet_stdout, read_stdin, text_arg
from app.cli.terminal import for_stream
from app.core.errors import InputError, describe
from app.core.models import ModelLibrary
from app.core.routes import LOCAL_ROUTE, Route, RouteChoice, Router
from app.core.settings import LoadSettings

if TYPE_CHECKING:  # imported when a command runs: `hearth --help` stays fast
    from app.cli.ask_tools import AskTools
    from app.core.chat_service import ChatService
    from app.core.chat_settings import ChatSettings
    from app.core.engine_share import HostInfo
    from app.core.tool_loop import ToolLoop, ToolStep
    from app.core.turn import Turn, TurnOutcome
    from store import Store

__all__ = ["run_ask"]


def run_ask(
    args: argparse.Namespace,
    data_dir: Path,
    model: Path,
    library: ModelLibrary,
    *,
    share_engine: Callable[..., Awaitable[Any]] | None = None,
) -> int:
    """`hearth ask`: check the request, then stream one answer (the CLI's exit code).
    `share_engine`: hosts this process's engine for other Hearth processes (app.main hands in
    app.server.shared_host.host_engine); None: it never hosts, but may still attach."""
    from app.cli.chat_options import flags_problem

    # Said before the store opens or a model starts; a --policy's route decides which context counts.
    if not args.policy and (problem := flags_problem(args, None if args.provider else args.settings.n_ctx)):
        return fail(problem)
    too_big = None if args.provider else _too_big(model, args.settings)
    if too_big and not args.force:
        return fail(f"{too_big} (--force loads it anyway)")
    if args.continue_id is not None:
        if args.prompt is not None or args.conversation is not None:
            return fail("--continue resumes an answer: give it alone, without a prompt or --conversation")
        return asyncio.run(_ask(args, "", data_dir, model, library, share_engine))
    if args.prompt is None:
        return fail('give the message to send, e.g. hearth ask "Hello" (or --continue MESSAGE_ID)')
    try:
        prompt = read_stdin() if args.prompt == "-" else text_arg(args.prompt, "the prompt given")
    except InputError as e:
        return fail(e.message)
    from store.limits import too_long_message

    if (problem := too_long_message(prompt)) is not None:  # said before a model is loaded for nothing
        return fail(problem)
    return asyncio.run(_ask(args, prompt, data_dir, model, library, share_engine))


class _Printer:
    """The answer goes to stdout; a model's reasoning goes to stderr (dimmed on a terminal), so
    `hearth ask ... > answer.txt` saves the answer alone. A model's text is untrusted: on a
    terminal its control characters are shown escaped, chunk by chunk (each is one character,
    so no escape is split); a file or a pipe gets the exact text.

    A reader that stops early (`| head`) closes the pipe: the answer is cancelled at once,
    saved as cancelled with the text written so far, and nothing more is written.
    """

    def __init__(self, on_closed: Callable[[], None]) -> None:
        self._dim = sys.stderr.isatty()
        self._out, self._err = for_stream(sys.stdout), for_stream(sys.stderr)
        self._in_reasoning = False
        self._on_closed = on_closed
        self.closed = False

    def write(self, text: str) -> None:
        if self.closed:
            return
        try:
            sys.stdout.write(self._out(text))
            sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            quiet_stdout()
            self._on_closed()

    def delta(self, d: Any) -> None:
        if d.channel == "reasoning":
            if not self._in_reasoning:
                sys.stderr.write("\x1b[2m[thinking] " if self._dim else "[thinking] ")
                self._in_reasoning = True
            sys.stderr.write(self._err(d.text))
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


async def _route(args: argparse.Namespace, data_dir: Path, store: Any) -> Route:
    """Where the answer comes from: the local model, or `--provider NAME` with its key, filters and,
    in a continued conversation, the provider's own conversation id (Dify keeps history by it), or
    the route `--policy` chooses among `--routes` (app.core.policies)."""
    from app.core.policies import Planner, make_policy
    from app.core.providers import ProvidersFile
    from engine.wire import load_formats

    policy = getattr(args, "policy", None)
    if not args.provider and not policy:
        return LOCAL_ROUTE
    router = Router(ProvidersFile(data_dir, set(load_formats())))
    if policy:
        try:
            chosen = make_policy(policy, args.routes or "", args.queue_limit)
        except ValueError as e:
            raise InputError("bad_input", f"--policy {policy} --routes: {e}") from None
        return await Planner(router, store.stats.report).route(store, args.conversation, chosen)
    return await router.for_conversation(store, args.conversation, RouteChoice.of(args.provider))


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


async def _ask(
    args: argparse.Namespace,
    prompt: str,
    data_dir: Path,
    model: Path,
    library: ModelLibrary,
    share_engine: Callable[..., Awaitable[Any]] | None = None,
) -> int:
    from app.cli.ask_share import AskHost, model_id, plan
    from app.cli.ask_tools import open_tools
    from app.core.chat_service import ChatService
    from app.core.documents.answering import AnswerMark
    from app.core.engine_share import Attach, Claimed
    from engine.client import AsyncEngine
    from store import StoreError

    if not prompt.strip() and args.continue_id is None:
        return fail('the prompt is empty: give the message to send, e.g. hearth ask "Hello"')
    try:
        store = open_store(data_dir)
    except StoreError as e:
        return fail(e.message)
    notes: list[str] = []  # what a person should know about this answer's model (no chat template, ...)

    async def search_documents() -> Any:  # the hearth/search_documents tool, when chosen
        from app.core.tools.documents_tool import documents_tool

        retriever, ids = await _retriever(args, store, data_dir, notes)
        return documents_tool(retriever, ids)

    try:
        tooling = (
            None
            if args.continue_id is not None
            else await open_tools(args, data_dir, store, args.conversation, documents=search_documents)
        )
    except (InputError, StoreError) as e:
        store.close()
        return fail(e.message)
    decided = await asyncio.to_thread(plan, args, model, library, can_host=share_engine is not None)
    host = (decided.info, model_id(model, library)) if isinstance(decided, Attach) else None
    hosting = AskHost(decided, share_engine) if isinstance(decided, Claimed) and share_engine is not None else None
    # Attached to another Hearth's engine: no engine process here (the reply is I/O), no model.
    engine = AsyncEngine(in_process=host is not None)
    service = ChatService(store, engine, templates=library.template_for)
    mark = AnswerMark(data_dir)  # indexing in any other process waits while this one answers
    try:
        mark.set(True)

        async def loaded() -> None:  # its model is loaded: others may attach, before its answer starts
            def local() -> tuple[str, str, int] | None:
                info = service.model_info
                return (model_id(model, library), info.path, info.n_ctx) if info is not None else None

            if hosting is not None:
                await hosting.start(engine=engine, local=local, data_dir=data_dir)

        said = _Steps(quiet=args.json)
        loop = _tool_loop(args, service, store, tooling, said) if tooling is not None else None
        started = await _start(args, prompt, data_dir, model, service, store, notes, host, loaded, loop)
        if isinstance(started, int):
            return started
        turn, route, chat = started
        show = await _stream(args, turn)
        if loop is not None:
            followed = await _follow(args, loop, turn, show, route, chat)
            if isinstance(followed, int):
                return followed
            turn, show = followed
        if route.remote is None and turn.answerer is not None and turn.answerer.route != "local":
            route = route.fallback or route  # local-first fell back: a provider answered
        n_ctx = service.model_info.n_ctx if route.remote is None and service.model_info is not None else None
        # Which engine answered: this process's own, the one it hosts for others, or another's.
        engine_used = (
            {"shared": "attached", "host_pid": host[0].pid}
            if host is not None and route.remote is not None and route.remote.uds
            else {"shared": "host" if hosting is not None else "own"}
            if route.remote is None
            else None
        )
        steps = said.steps if loop is not None else None
        return await _finish(args, turn, show, service.label(route.remote), notes, chat, n_ctx, engine_used, steps)
    finally:
        if tooling is not None:
            await tooling.registry.aclose()  # ends the servers' processes
        mark.set(False)
        if isinstance(decided, Attach):
            decided.attachment.close()  # the host may stop now
        if hosting is not None:
            await hosting.finish()
        await engine.aclose()
        store.close()


async def _start(
    args: argparse.Namespace,
    prompt: str,
    data_dir: Path,
    model: Path,
    service: ChatService,
    store: Store,
    notes: list[str],
    host: tuple[HostInfo, str] | None = None,
    loaded: Callable[[], Awaitable[None]] | None = None,
    tools: ToolLoop | None = None,
) -> tuple[Turn, Route, ChatSettings] | int:
    """The command path: route, the chat's settings, load the local model if it answers
    (then `loaded`), offer the tools, save the rows, start the stream. An exit code (after saying
    why) when it cannot."""
    from app.core.errors import ProviderError
    from engine.errors import EngineError, ModelLoadError
    from store import StoreError

    try:
        route = await _route(args, data_dir, store)
        if host is not None and route.remote is None:  # the model is loaded in another Hearth: use it
            from app.core.engine_share import host_route

            route = dataclasses.replace(route, remote=host_route(*host), filters=None, provider=None)
        chat = await _chat_settings(args, data_dir, store, route)
        if route.remote is None:
            s = args.settings
            try:
                info = await service.load(
                    str(model),
                    n_ctx=s.n_ctx,
                    n_threads=s.n_threads,
                    n_gpu_layers=s.n_gpu_layers,
                    flash_attn=s.flash_attn,
                    chat_template=args.chat_template,
                )
            except ModelLoadError:
                if route.fallback is None:
                    raise
                info = None  # local-first: the fallback answers, and the answer says why (ChatService)
            if info is not None and info.template_note:
                notes.append(info.template_note)
                print(for_stream(sys.stderr)(f"hearth: note: {info.template_note}"), file=sys.stderr)
            if loaded is not None:
                await loaded()
        sampling = chat.to_sampling(seed=args.seed)
        augment = await _documents(args, store, data_dir, notes) if getattr(args, "docs", None) else None
        if augment is not None and route.remote is not None and route.remote.uds is None:  # files leave: say so
            where = service.label(route.remote)
            print(
                for_stream(sys.stderr)(
                    f"hearth: note: passages from your documents are sent to {where} with the question"
                ),
                file=sys.stderr,
            )
        specs, choice = await _offer(args, tools) if tools is not None else ((), "auto")
        if args.continue_id is not None:
            turn = await service.continue_message(args.continue_id, sampling=sampling, route=route, settings=chat)
        else:
            turn = await service.start_turn(
                args.conversation,
                prompt,
                sampling=sampling,
                route=route,
                settings=chat,
                augment=augment,
                tools=specs,
                tool_choice=choice,
            )
        await _keep_chat_settings(args, store, turn, chat, tools)
        return turn, route, chat
    except (EngineError, StoreError) as e:
        hint = " Run `hearth list` to see saved conversations." if e.code == "no_such_conversation" else ""
        hint = (
            " Run `hearth list --messages` to see answers and their states."
            if e.code in ("no_such_message", "not_continuable")
            else hint
        )
        return fail(e.message + hint)
    except (InputError, ProviderError) as e:
        return fail(e.message)


async def _documents(args: argparse.Namespace, store: Store, data_dir: Path, notes: list[str]) -> Any:
    """`--docs`: the retrieval hook for the turn, over the named collections (StoreError
    no_such_collection names one that is not there), with the documents' embedding model when it loads."""
    retriever, ids = await _retriever(args, store, data_dir, notes)

    async def augment(text: str, max_chars: int) -> Any:
        return await retriever.augment(text, max_chars, ids)

    return augment


async def _retriever(args: argparse.Namespace, store: Store, data_dir: Path, notes: list[str]) -> tuple[Any, Any]:
    """The retrieval flow over `--docs`'s collections (None when not given: every collection),
    with the documents' embedding model when it loads."""
    from app.core.documents.retrieval import Retriever
    from app.core.documents.search import DocumentSearch
    from app.core.documents.vectors import VectorIndex

    names = [text_arg(n.strip(), "the collection name") for arg in args.docs or () for n in arg.split(",") if n.strip()]
    ids = [(await store.documents.collection_named(name)).id for name in names] if names else None
    embedder = _embedder(data_dir, notes)
    index, embed_query = None, None
    if embedder is not None:
        index = VectorIndex(embedder.model_name, embedder.dim)

        async def embed_query(text: str) -> Any:
            return await asyncio.to_thread(embedder.embed_query, text)

    return Retriever(DocumentSearch(store.documents, index), embed_query), ids


def _embedder(data_dir: Path, notes: list[str]) -> Any:
    """The documents' embedding model (embedders.py), or None (said once: passages are then found
    by their words)."""
    from app.core.documents.embedders import open_embedder
    from engine.errors import HearthError

    try:
        return open_embedder(data_dir)
    except HearthError as e:
        note = f"{e.message} Passages are found by their words alone."
        notes.append(note)
        print(for_stream(sys.stderr)(f"hearth: note: {note}"), file=sys.stderr)
        return None


async def _chat_settings(args: argparse.Namespace, data_dir: Path, store: Store, route: Route) -> ChatSettings:
    """The conversation's saved settings (a new one's: the default preset's), changed by the
    flags given. InputError (bad values, an unknown preset) before anything is saved."""
    from app.cli.chat_options import chat_settings_for, load_presets
    from store import StoreError

    cid = args.conversation
    if args.continue_id is not None:
        cid = await store.conversation_of(args.continue_id)
        if cid is None:
            raise StoreError("no_such_message", f"There is no message {args.continue_id}.")
    saved = await store.conversation_settings(cid) if cid is not None else None
    model_context = args.settings.n_ctx if route.remote is None else None
    return chat_settings_for(args, saved, load_presets(data_dir), model_context)


async def _keep_chat_settings(
    args: argparse.Namespace, store: Store, turn: Turn, chat: ChatSettings, tools: ToolLoop | None = None
) -> None:
    """Flags given are saved with the conversation, for its later turns; a new conversation
    keeps the settings it started with (a later change of the default preset leaves it be).
    `--provider` is kept as the conversation's route, so the window answers from it too."""
    from app.cli.chat_options import given

    changes: dict[str, object] = dict(RouteChoice.of(args.provider).settings()) if args.provider else {}
    if getattr(args, "policy", None):  # checked by _route already
        from app.core.policies import make_policy

        changes.update(make_policy(args.policy, args.routes or "", args.queue_limit).settings())
    if given(args) or (args.conversation is None and args.continue_id is None):
        changes.update(chat.to_settings())
    if tools is not None and (args.tools or args.allow_tools):  # the chat's tools from now on
        changes.update(tools.chat_tools.to_settings())
    if not changes:
        return
    try:
        await store.update_conversation_settings(turn.ids.conversation_id, changes)
    except Exception as e:  # noqa: BLE001 - the answer is running; only the settings for later turns are lost
        print(f"hearth: warning: could not save this conversation's settings: {describe(e)}", file=sys.stderr)


async def _stream(args: argparse.Namespace, turn: Turn) -> _Printer:
    """The stream path, to the terminal: the first Ctrl-C stops the answer, a second one does
    not wait; a reader that goes away cancels it."""
    from app.cli.queue_note import QueueNote
    from engine.events import Delta, Queued

    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_sigint() -> None:
        nonlocal interrupts
        interrupts += 1
        turn.cancel(force=interrupts > 1)

    loop.add_signal_handler(signal.SIGINT, on_sigint)
    show = _Printer(on_closed=turn.cancel)
    if args.continue_id is not None and not args.json:
        show.write(turn.prefix)  # the whole answer, then its continuation
    waiting = QueueNote()
    async for event in turn:
        if isinstance(event, Queued):
            waiting.place(event.ahead)
            continue
        waiting.clear()
        if isinstance(event, Delta) and not args.json:
            show.delta(event)
    waiting.clear()
    show.end()
    loop.remove_signal_handler(signal.SIGINT)
    return show


async def _finish(
    args: argparse.Namespace,
    turn: Turn,
    show: _Printer,
    label: str,
    notes: list[str],
    chat: ChatSettings,
    n_ctx: int | None,
    engine_used: dict[str, Any] | None = None,
    steps: list[ToolStep] | None = None,
) -> int:
    """Product state: wait for the save, then report the outcome and choose the exit code.
    `engine_used`: the local engine that answered (--json's "engine"; None: a provider did)."""
    from engine.states import GenerationState

    lag: float | None = None
    save_error: str | None = None
    try:
        lag = await turn.saved
    except Exception as e:  # noqa: BLE001 - whatever failed, the answer shown is not on disk: say so
        save_error = f"the answer could not be saved: {describe(e)}"
        print(f"hearth: error: {save_error}", file=sys.stderr)
    outcome = turn.outcome
    assert outcome is not None
    if show.closed:  # the reader went away: the answer is saved (cancelled); nobody to tell
        return 141 if save_error is None else 1
    if args.json:
        result = _json_result(turn, outcome, lag, turn.answerer.model if turn.answerer else label)
        result["route"] = {"name": turn.answerer.route, "reason": turn.answerer.reason} if turn.answerer else None
        result["context"] = _context(turn, chat, n_ctx)
        result["saved"] = save_error is None
        result["notes"] = notes
        result["settings"] = chat.to_dict()
        result["engine"] = engine_used
        if steps is not None:
            from app.cli.ask_tools import steps_json

            result["tool_steps"] = steps_json(steps)
        if save_error is not None and result["error"] is None:
            result["error"] = {"code": "save_failed", "message": save_error}
        print(for_stream(sys.stdout, json=True)(json.dumps(result, ensure_ascii=False)))
    else:
        if not outcome.text.endswith("\n"):
            print()
        _print_sources(turn)
        if turn.started is not None and turn.started.omitted:
            print(
                f"[the conversation outgrew the context: {len(turn.started.omitted)} earlier messages were left "
                "out of the prompt (--overflow chooses how)]",
                file=sys.stderr,
            )
        if turn.answerer is not None and turn.answerer.reason not in (None, "fixed"):
            print(for_stream(sys.stderr)(f"[route: {turn.answerer.route} · {turn.answerer.reason}]"), file=sys.stderr)
        summary = _summary(outcome, turn.ids.conversation_id, turn.ids.assistant_message_id)  # quotes errors
        print(for_stream(sys.stderr)(summary), file=sys.stderr)
    if save_error is not None:
        return 1  # whatever the stream said, the answer is not on disk: never report success
    if outcome.state is GenerationState.CANCELLED and outcome.cancel_reason == "timeout":
        return 3
    return {GenerationState.COMPLETED: 0, GenerationState.CANCELLED: 130}.get(outcome.state, 1)


class _Steps:
    """Each tool call as it ends, said on stderr (unless --json), kept for --json's "tool_steps"."""

    def __init__(self, quiet: bool) -> None:
        self.steps: list[ToolStep] = []
        self._quiet = quiet

    def __call__(self, step: ToolStep) -> None:
        from app.cli.ask_tools import step_line

        if step.run.status != "not_run" or step.text:
            self.steps.append(step)
        line = step_line(step)
        if line is not None and not self._quiet:
            print(for_stream(sys.stderr)(line), file=sys.stderr, flush=True)


def _tool_loop(
    args: argparse.Namespace, service: ChatService, store: Store, tooling: AskTools, said: _Steps
) -> ToolLoop:
    """The answer's tool loop: consent on the terminal, "always" kept with the conversation."""
    from app.cli.ask_tools import TerminalConsent
    from app.core.tool_loop import ToolLoop

    async def remember(conversation_id: int, chat: Any) -> None:
        await store.update_conversation_settings(conversation_id, chat.to_settings())

    return ToolLoop(
        service,
        tooling.registry,
        tooling.chat,
        TerminalConsent(tooling.allowed),
        max_steps=max(0, args.max_tool_steps if args.max_tool_steps is not None else args.settings.max_tool_steps),
        remember=remember,
        on_step=said,
    )


async def _offer(args: argparse.Namespace, loop: ToolLoop) -> tuple[tuple[Any, ...], str]:
    """The tools offered and --tool-choice, as the model names them; InputError for a choice
    that names no tool offered."""
    from app.cli.ask_tools import say_problems

    specs = await loop.offer()
    say_problems(loop.problems)
    choice = args.tool_choice
    if choice not in ("auto", "none", "required"):
        named = loop.name_for(choice)
        if named is None:
            raise InputError("bad_input", f"--tool-choice {choice!r} names no tool offered to this answer.")
        choice = named
    if choice != "auto" and not specs:
        raise InputError("bad_input", f"--tool-choice {choice} needs a tool, and none is available.")
    return specs, choice


async def _follow(
    args: argparse.Namespace, loop: ToolLoop, turn: Turn, show: _Printer, route: Route, chat: ChatSettings
) -> tuple[Turn, _Printer] | int:
    """The tool loop after the first answer: each step's calls, then its next answer streamed,
    until an answer calls nothing. Ctrl-C during a call ends it and the command (130)."""
    from engine.errors import EngineError
    from store import StoreError

    sampling = chat.to_sampling(seed=args.seed)
    while not show.closed:
        try:
            following = await _follow_one(loop, turn, sampling, route, chat)
        except asyncio.CancelledError:
            print("hearth: stopped during a tool call; what ran is saved", file=sys.stderr)
            return 130
        except (EngineError, StoreError, InputError) as e:
            return fail(e.message)
        if following is None:
            break
        turn = following
        show = await _stream(args, turn)
    return turn, show


async def _follow_one(loop: ToolLoop, turn: Turn, sampling: Any, route: Route, chat: ChatSettings) -> Turn | None:
    from app.cli.ask_tools import follow_steps

    return await follow_steps(loop, turn, sampling=sampling, route=route, settings=chat)


def _print_sources(turn: Turn) -> None:
    """Under the answer, on stderr: the passages it was given, numbered as the answer cites them."""
    augmented = turn.augmented
    if augmented is None:
        return
    from app.core.documents.retrieval import source_label  # NumPy: only for an answer with passages

    out = for_stream(sys.stderr)
    if augmented.sources:
        print("Sources:", file=sys.stderr)
        for n, found in enumerate(augmented.sources, 1):
            print(out(f"  [{n}] {source_label(found)} ({found.path})"), file=sys.stderr)
    else:
        print("Sources: no passage of your documents matched.", file=sys.stderr)
    if augmented.note:
        print(out(f"hearth: note: {augmented.note}"), file=sys.stderr)


def _retrieval_json(turn: Any) -> dict[str, Any] | None:
    augmented = turn.augmented
    if augmented is None:
        return None
    return {
        "retrieval_ms": round(augmented.retrieval_ms, 2),
        "note": augmented.note,
        "sources": [
            {
                "n": n,
                "path": f.path,
                "page": f.page,
                "heading": f.heading,
                "start": f.start,
                "end": f.end,
                "score": f.score,
                "text": f.text,
            }
            for n, f in enumerate(augmented.sources, 1)
        ],
    }


def _summary(outcome: TurnOutcome, conversation_id: int, message_id: int) -> str:
    state, m, error = outcome.state, outcome.metrics, outcome.error_message
    timed_out = state.value == "cancelled" and outcome.cancel_reason == "timeout"
    parts = ["timed out: the provider took too long; the text that arrived is kept" if timed_out else str(state.value)]
    if error:
        parts.append(error)
    if state.value == "completed" and outcome.stop_reason == "length":
        parts.append(
            f"cut off at the {m.get('completion_tokens') or ''}-token limit: resume with "
            f"`hearth ask --continue {message_id}` (or raise --max-tokens)".replace("the -token", "the token")
        )
    if m.get("ttft_ms") is not None:
        parts.append(f"TTFT {m['ttft_ms']:.0f} ms")
    if m.get("tokens_per_s"):
        threads = m.get("threads")
        on = f" on {threads} thread{'s' * (threads > 1)}" if threads else ""
        parts.append(f"{m['tokens_per_s']:.0f} tok/s{on}")
    if m.get("completion_tokens") is not None:
        parts.append(f"{m['completion_tokens']} tokens")
    parts.append(f"conversation {conversation_id} (continue with --conversation {conversation_id})")
    return "[" + " · ".join(parts) + "]"


def _context(turn: Turn, chat: ChatSettings, n_ctx: int | None) -> dict[str, Any] | None:
    """How much of the context the prompt took and what it left out (None for a remote route)."""
    started = turn.started
    if started is None or n_ctx is None or not started.prompt_tokens:
        return None
    limit = chat.context_length if 0 < chat.context_length < n_ctx else n_ctx
    return {
        "prompt_tokens": started.prompt_tokens,
        "n_ctx": limit,
        "cached_tokens": started.cached_tokens,
        "left_out": len(started.omitted),
        "left_out_message_places": sorted(turn.out_of_view(started)),
    }


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
        "stop_reason": outcome.stop_reason,
        "metrics": {**outcome.metrics, "finalization_lag_ms": lag, **_retrieval_metric(turn)},
        "documents": _retrieval_json(turn),
    }


def _retrieval_metric(turn: Any) -> dict[str, float]:
    augmented = getattr(turn, "augmented", None)
    return {} if augmented is None else {"retrieval_ms": round(augmented.retrieval_ms, 2)}
