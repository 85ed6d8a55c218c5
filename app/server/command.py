"""`hearth serve`: the OpenAI-compatible server (app.server) on uvicorn, in front of the local
model and every configured provider, until Ctrl-C.

Loopback by default. A bearer token is required (app.server.token: the environment, the keychain,
else a private file in the data dir; `--show-token` prints it); `--no-auth` is refused
unless the address is loopback, and any other address prints a warning. Web pages may use it
only from the origins `--allow-origin` names (app.server.guard). The local model is
loaded before the port opens, so the first request does not pay for it. The options are
app.cli.serve's; app.main hands this to the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.models import ModelLibrary
from engine.errors import HearthError

if TYPE_CHECKING:
    from app.core.engine_share import HostInfo
    from app.server.token import ServeToken

__all__ = ["run_serve"]


def fail(message: str, code: int = 2) -> int:
    print(f"hearth: error: {message}", file=sys.stderr)
    return code


def run_serve(args: argparse.Namespace, data_dir: Path, model: Path, library: ModelLibrary) -> int:
    from app.server.guard import allowed_origins, loopback
    from app.server.token import server_token

    if args.show_token:
        try:
            print(server_token(data_dir).value)
        except HearthError as e:
            return fail(e.message)
        return 0
    if not 0 < args.port < 65536:
        return fail(f"--port must be from 1 to 65535 (got {args.port})")
    if args.queue < 0:
        return fail(f"--queue must be 0 or more (got {args.queue})")
    try:
        origins = allowed_origins(args.allow_origin)
    except HearthError as e:
        return fail(e.message)
    if args.no_auth and not loopback(args.host):
        return fail(
            f"--no-auth is only allowed on a loopback address; {args.host} lets other machines in, so "
            "they must send the token"
        )
    try:
        token = None if args.no_auth else server_token(data_dir)
    except HearthError as e:
        return fail(e.message)
    if not loopback(args.host):
        print(
            f"hearth: warning: serving on {args.host}: other machines can reach this server. Requests need the "
            "token; traffic is not encrypted (put a TLS proxy in front for anything but a trusted network).",
            file=sys.stderr,
        )
    if token is None and "*" in origins:
        print(
            "hearth: warning: --no-auth with every origin allowed (*): any web page you visit can use this "
            "server and every provider.",
            file=sys.stderr,
        )
    try:
        return asyncio.run(_serve(args, data_dir, model, library, token, origins))
    except KeyboardInterrupt:
        return 130


async def _serve(
    args: argparse.Namespace,
    data_dir: Path,
    model: Path,
    library: ModelLibrary,
    token: ServeToken | None,
    origins: tuple[str, ...],
) -> int:
    from app.core.documents.embedders import chosen_embedding, open_embedder
    from app.core.documents.embedding_model import EMBEDDING_MODEL_NAME
    from app.core.engine_share import host_route
    from app.core.errors import ServeError
    from app.core.providers import KeyStore, ProvidersFile
    from app.server.embeddings import EmbeddingModel
    from app.server.gateway import Gateway, LocalModelEntry
    from app.server.http import build_app
    from app.server.local_engine import LocalEngine
    from app.server.metrics import Metrics
    from app.server.running import RunningServer
    from app.server.saving import ApiSaver
    from engine.client import AsyncEngine
    from engine.commands import LoadModel
    from engine.errors import EngineError
    from engine.wire import load_formats

    engine = AsyncEngine()
    try:
        local, keeper, attached = None, None, None
        s = args.settings
        load = LoadModel(
            str(model),
            n_ctx=s.n_ctx,
            n_threads=s.n_threads,
            n_gpu_layers=s.n_gpu_layers,
            flash_attn=s.flash_attn,
            chat_template=args.chat_template or library.template_for(model),
        )
        entry = library.by_path(model)
        model_id = entry.id if entry is not None else model.stem.lower()
        if not args.no_local:
            attached = await _attach(args, model_id)  # a window or server of yours runs this model already
        if attached is not None:
            local = LocalModelEntry(model_id, attached.n_ctx)
        elif not args.no_local:
            try:
                info = await engine.load(load)
            except EngineError as e:
                return fail(e.message)
            local = LocalModelEntry(model_id, info.n_ctx)
            keeper = LocalEngine(engine, load, say=lambda line: print(line, file=sys.stderr, flush=True))
        gateway = Gateway(
            engine,
            local,
            ProvidersFile(data_dir, set(load_formats())),
            KeyStore(),
            Metrics(),
            queue_limit=args.queue,
            keeper=keeper,
            attached=host_route(attached, model_id) if attached is not None else None,
        )
        saver = ApiSaver(data_dir)
        try:
            choice = chosen_embedding(data_dir, library)  # the documents' embedding model (embedders.py)
        except HearthError as e:
            return fail(e.message)
        embedding = EmbeddingModel(  # loaded on first use, on the server's embedding thread
            lambda: open_embedder(data_dir, library=library),
            choice.model_id or EMBEDDING_MODEL_NAME,
            query_prefix=choice.query_prefix,
        )
        app = build_app(
            gateway,
            token=token.value if token is not None else None,
            host=args.host,
            origins=origins,
            saver=saver,
            embedding=embedding,
        )
        server = RunningServer(app, args.host, args.port)
        try:
            await server.start()
        except ServeError as e:
            return fail(f"{e} Choose another one with --port.")
        served = ", ".join(i for i, _ in gateway.model_ids()) or "nothing yet (add a provider or drop --no-local)"
        auth = (
            "no token needed (--no-auth)"
            if token is None
            else f"send the token `hearth serve --show-token` prints; it is kept {token.kept}"
        )
        print(f"hearth: serving {served} at {server.url} ({auth}); Ctrl-C stops", file=sys.stderr, flush=True)
        shared = await _share(args, engine, local, model, data_dir) if attached is None else None
        watching = (
            asyncio.ensure_future(_load_when_host_gone(attached, model_id, engine, load, gateway, args, data_dir))
            if attached is not None
            else None
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            if watching is not None:
                if watching.done() and not watching.cancelled():
                    shared = watching.result()
                watching.cancel()
            if shared is not None:
                await shared.stop()
            await server.stop()
            await gateway.drain()  # the last answers' saves
            saver.close()
            embedding.close()
        return 0
    finally:
        await engine.aclose()


def _sharing_off(args: Any) -> bool:
    import os

    settings = getattr(args, "settings", None)
    off = getattr(args, "no_share", False) or (settings is not None and not settings.share_engine)
    return bool(off or os.environ.get("HEARTH_NO_SHARE"))


async def _attach(args: Any, model_id: str) -> HostInfo | None:
    """The window or `hearth serve` of this user's that runs `model_id` and shares its engine: this
    server answers the local model through it (no second copy). Not a `hearth ask` (it hosts only
    while it answers). None: load it here."""
    from app.core.engine_share import attach

    if _sharing_off(args):
        return None
    attached = await asyncio.to_thread(attach, model_id)
    if attached is None:
        return None
    attached.close()
    if attached.info.front_end == "ask":
        return None
    info = attached.info
    print(
        f"hearth: the local model answers through the engine of the Hearth {info.front_end} (pid {info.pid}) that "
        "runs it already: no second copy in memory",
        file=sys.stderr,
        flush=True,
    )
    return info


async def _load_when_host_gone(
    info: HostInfo, model_id: str, engine: Any, load: Any, gateway: Any, args: Any, data_dir: Path
) -> Any:
    """Attached: when that host goes away, load the model here, answer with it, and share it in
    turn (returns the SharedHost, or None)."""
    from app.core.engine_share import host_gone
    from app.server.local_engine import LocalEngine
    from engine.errors import EngineError

    reason = await host_gone(info, model_id)
    print(f"hearth: {reason}; loading the model here", file=sys.stderr, flush=True)
    try:
        await engine.load(load)
    except EngineError as e:
        print(f"hearth: error: {e.message}", file=sys.stderr, flush=True)
        return None
    gateway.keeper = LocalEngine(engine, load, say=lambda line: print(line, file=sys.stderr, flush=True))
    gateway.attached = None
    return await _share(args, engine, gateway.local, Path(load.path), data_dir)


async def _share(args: Any, engine: Any, local: Any, model: Path, data_dir: Path) -> Any:
    """Host the loaded model for this user's other Hearth processes (app.server.shared_host), unless
    --no-local, --no-share or HEARTH_NO_SHARE, or another process hosts already. Said on stderr."""
    from app.core.errors import ServeError
    from app.core.providers import KeyStore, ProvidersFile
    from app.server.shared_host import host_engine
    from engine.wire import load_formats

    if local is None or _sharing_off(args):
        return None
    entry = (local.id, str(model), local.n_ctx)
    try:
        shared = await host_engine(
            engine=engine,
            local=lambda: entry,
            providers=ProvidersFile(data_dir, set(load_formats())),
            keys=KeyStore(),
            front_end="serve",
        )
    except ServeError as e:
        print(f"hearth: note: not sharing the engine with other Hearth processes: {e}", file=sys.stderr, flush=True)
        return None
    if shared is not None:
        print(f"hearth: other Hearth processes of yours use this engine ({shared.socket})", file=sys.stderr, flush=True)
    return shared
